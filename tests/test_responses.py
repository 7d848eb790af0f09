"""What a handler's response becomes on the wire: a Content-Length the handler sets, a status set
to 1xx after the response was built, and no default Content-Type on a 204 or 304."""

from __future__ import annotations

from conftest import RawClient, header

from catzilla import Catzilla, Request, Response
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
