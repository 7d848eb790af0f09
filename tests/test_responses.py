"""The Response classes and what a handler's response becomes on the wire: a Content-Length the
handler sets, statuses (no 1xx, nothing outside 200-599), no default Content-Type on a 204 or
304, the charset of a str body, redirect URLs, control characters in header values.
(Framing on one shared server: tests/test_http.py; streamed bodies: tests/test_streaming.py;
files: tests/test_files.py.)"""

from __future__ import annotations

import logging

import pytest
from _served import errors, get
from conftest import RawClient, header

from catzilla import (
    Catzilla,
    HTMLResponse,
    HTTPException,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
    StreamingResponse,
)
from catzilla.testing import TestClient

# -- a Content-Length the handler sets --------------------------------------------------------

def test_a_plain_response_with_its_own_framing_header_is_framed_as_it_says(caplog):
    app = Catzilla()

    @app.route("/short", methods=["GET", "HEAD"])
    def short(request: Request) -> Response:
        return Response(b"0123456789", headers={"Content-Length": "3"})

    @app.get("/long")
    def long(request: Request) -> Response:
        return Response(b"0123", headers={"Content-Length": "10"})

    @app.get("/exact")
    def exact(request: Request) -> Response:
        return Response(b"0123", headers={"Content-Length": "4"})

    @app.get("/te")
    def te(request: Request) -> Response:
        return Response(b"abcdef", headers={"Transfer-Encoding": "chunked"})

    @app.get("/next")
    def next_(request: Request) -> Response:
        return Response("next")

    @app.route("/head", methods=["HEAD"])
    def head(request: Request) -> Response:
        return Response(b"", headers={"Content-Length": "1234"})

    with TestClient(app) as client, RawClient(client.port) as c:
        for path, status, body in (("/short", 500, None), ("/long", 500, None),
                                   ("/exact", 200, b"0123"), ("/te", 200, b"abcdef")):
            c.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n"
                   % path.encode())
            resp, got = c.response()
            assert resp.status_code == status, path
            assert body is None or got == body
            resp, got = c.response()       # the connection is still in step
            assert (resp.status_code, got) == (200, b"next"), path
        # HEAD answered without a body: the header describes the GET body
        c.send(b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, got = c.response("HEAD")
        assert resp.status_code == 200 and header(resp, "content-length") == "1234"
        assert c.response()[1] == b"next"
    errors = [r.getMessage() + str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("says 3 bytes but its body has 10" in e for e in errors)
    assert any("says 10 bytes but its body has 4" in e for e in errors)


def test_head_and_get_agree_on_a_wrong_content_length():
    app = Catzilla()

    @app.route("/short", methods=["GET", "HEAD"])
    def short(request: Request) -> Response:
        return Response(b"0123456789", headers={"Content-Length": "3"})

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"HEAD /short HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response("HEAD")[0].status_code == 500
        c.send(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response()[0].status_code == 500


# -- statuses ---------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [100, 101, 102, 103, 199, 0, 99, 600, "200", 200.0])
def test_response_refuses_interim_and_invalid_statuses(status):
    with pytest.raises(ValueError, match="200 to 599"):
        Response("x", status_code=status)
    with pytest.raises(ValueError, match="200 to 599"):
        HTTPException(status)


def test_valid_statuses_still_work():
    from http import HTTPStatus
    assert Response(status_code=200).status_code == 200
    assert Response(status_code=599).status_code == 599
    assert HTTPException(HTTPStatus.NOT_FOUND).detail == "Not Found"
    assert HTTPException(304).status_code == 304
    assert HTTPException(599).detail == ""


def test_a_1xx_or_invalid_http_exception_is_a_500_from_the_handler(caplog):
    app = Catzilla()
    app.add_route("/processing", lambda r: Response("queued", status_code=102))
    app.add_route("/switch", lambda r: PlainTextResponse("x", status_code=101))

    def bad_exc(r):
        raise HTTPException(600)

    app.add_route("/http600", bad_exc)
    app.add_route("/ok", lambda r: "ok")
    with caplog.at_level(logging.ERROR, logger="catzilla"), TestClient(app) as client, \
            RawClient(client.port, timeout=5) as c:
        for path in ("/processing", "/switch", "/http600"):
            resp, body = get(c, path)
            assert resp.status_code == 500 and body == b'{"detail":"Internal Server Error"}'
        assert get(c, "/ok")[1] == b"ok"          # the same connection goes on
    messages = [r.getMessage() for r in errors(caplog)]
    assert len(messages) == 3 and all(m.startswith("Exception in handler") for m in messages)
    assert not any("server core" in m for m in messages)


def test_a_status_set_to_1xx_after_the_response_was_built_gets_a_500():
    app = Catzilla()

    @app.get("/")
    def index(request: Request) -> Response:
        response = Response("queued")
        response.status_code = 102           # bypasses the constructor's check
        return response

    with TestClient(app) as client, RawClient(client.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, _ = c.response()
        assert resp.status_code == 500


# -- 204 and 304: no default Content-Type -----------------------------------------------------

def test_204_and_304_get_no_default_content_type():
    # RFC 9110 15.4.5: a 304 SHOULD NOT carry representation metadata; a 204 has no content
    from catzilla import JSONResponse
    for status in (204, 304):
        assert Response(status_code=status).headers.get("content-type") is None
        assert JSONResponse(None, status_code=status).headers.get("content-type") is None
        # one the handler asks for is kept
        assert Response(b"", status, content_type="text/html").headers["content-type"] == \
            "text/html; charset=utf-8"
    assert Response(b"x").headers["content-type"] == "text/plain; charset=utf-8"


def test_an_http_exception_304_on_the_wire_has_no_content_type():
    from catzilla import HTTPException
    app = Catzilla()

    @app.get("/nm")
    def not_modified(request):
        raise HTTPException(304, headers={"ETag": '"v1"'})

    with TestClient(app) as c, RawClient(c.port) as raw:
        raw.send(b"GET /nm HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = raw.response()
        names = [k for k, _ in resp.headers]
        assert resp.status_code == 304 and body == b"" and b"content-type" not in names
        assert (b"etag", b'"v1"') in resp.headers


# -- the charset of a str body ----------------------------------------------------------------

@pytest.mark.parametrize("content_type,text,body", [
    ("text/plain; charset=iso-8859-1", "café", b"caf\xe9"),
    ("text/html; charset=windows-1252", "café €", b"caf\xe9 \x80"),
    ('text/plain; Charset="UTF-16LE"', "café €", "café €".encode("utf-16-le")),
    ("text/plain; charset=utf-8", "café €", "café €".encode()),
    ("application/xml; charset=latin-1", "café", b"caf\xe9"),
])
def test_str_content_is_encoded_with_the_charset_of_its_content_type(content_type, text, body):
    response = Response(text, content_type=content_type)
    assert response.body == body
    assert response.headers["Content-Type"] == content_type
    # the same through a Content-Type header
    assert Response(text, headers={"Content-Type": content_type}).body == body


def test_charset_defaults_and_errors():
    assert Response("é").body == "é".encode()
    assert Response("é").headers["Content-Type"] == "text/plain; charset=utf-8"
    assert Response("é", content_type="text/plain").body == "é".encode()
    assert HTMLResponse("é").body == "é".encode()
    for bad in ("text/plain; charset=no-such-thing", "text/plain; charset=base64"):
        with pytest.raises(ValueError, match="unknown charset"):
            Response("x", content_type=bad)
        with pytest.raises(ValueError, match="unknown charset"):
            Response("x", headers={"content-type": bad})
    with pytest.raises(UnicodeEncodeError):                 # not representable in it
        Response("日本", content_type="text/plain; charset=iso-8859-1")
    with pytest.raises(ValueError, match="unknown charset"):
        StreamingResponse([b"x"], content_type="text/plain; charset=nope")


def test_charset_body_over_the_wire():
    app = Catzilla()
    app.add_route("/legacy",
                  lambda r: Response("café", content_type="text/plain; charset=iso-8859-1"))
    with TestClient(app) as client:
        r = client.get("/legacy")
        assert r.content == b"caf\xe9"
        assert r.content.decode(r.headers["Content-Type"].split("charset=")[1]) == "café"


# -- redirects to non-ASCII URLs --------------------------------------------------------------

@pytest.mark.parametrize("url,location", [
    ("/articles/café", "/articles/caf%C3%A9"),
    ("/日本?q=日本", "/%E6%97%A5%E6%9C%AC?q=%E6%97%A5%E6%9C%AC"),
    ("/a%20b/%C3%A9?x=1&y=a+b#frag", "/a%20b/%C3%A9?x=1&y=a+b#frag"),     # kept as it is
    ("https://user@ex.com:8080/p;x=1/[v]?a=(1)*,!$'", "https://user@ex.com:8080/p;x=1/[v]?a=(1)*,!$'"),
    ("/100%/%zz/%4", "/100%25/%25zz/%254"),
    ('/a b"<>\\^`{|}', "/a%20b%22%3C%3E%5C%5E%60%7B%7C%7D"),
    ("/x\r\nSet-Cookie: a=1", "/x%0D%0ASet-Cookie:%20a=1"),
    ("/caf\udce9", "/caf%E9"),                                # os.fsdecode() of a raw byte
])
def test_redirect_locations_are_uri_references(url, location):
    response = RedirectResponse(url)
    assert response.headers["Location"] == location


def test_redirect_with_a_non_ascii_target_over_the_wire():
    app = Catzilla()
    app.add_route("/go/{slug}", lambda r: RedirectResponse("/articles/" + r.path_params["slug"]))
    with TestClient(app) as client, RawClient(client.port) as c:
        for raw, expected in (("caf%C3%A9", "/articles/caf%C3%A9"),
                              ("%E6%97%A5%E6%9C%AC", "/articles/%E6%97%A5%E6%9C%AC")):
            resp, _ = get(c, "/go/" + raw)
            assert resp.status_code == 307 and header(resp, "location") == expected


# -- control characters in header values ------------------------------------------------------

def test_a_control_character_in_a_header_is_a_500(caplog):
    app = Catzilla()
    app.add_route("/ctl", lambda r: Response("x", headers={"X-Ctl": "a\x01b\x1bc\x7fd"}))
    app.add_route("/tab", lambda r: Response("x", headers={"X-Tab": "a\tb"}))
    with caplog.at_level(logging.ERROR, logger="catzilla"), TestClient(app) as client, \
            RawClient(client.port) as c:
        resp, _ = get(c, "/ctl")
        assert resp.status_code == 500 and header(resp, "x-ctl") is None
        resp, _ = get(c, "/tab")
        assert resp.status_code == 200 and header(resp, "x-tab") == "a\tb"
    assert any("control character 0x01" in str(r.exc_info[1]) for r in caplog.records
               if r.exc_info)
