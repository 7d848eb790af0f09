"""Fixes from the application-layer review: FileResponse reuse and ranges, Content-Disposition,
redirect URLs, charsets, 1xx and invalid statuses, control bytes in header values, client
errors in request bodies, form decoding, and the int/float path converters."""

from __future__ import annotations

import json
import logging
import pickle
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import RawClient, header

from catzilla import (
    Catzilla,
    FileResponse,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
    _core,
    content_disposition,
)
from catzilla.datastructures import Headers, QueryParams
from catzilla.exceptions import RequestBodyError, RequestJSONError
from catzilla.testing import TestClient

DATA = b"0123456789"


def get(c: RawClient, path: str, extra: bytes = b"", method: str = "GET"):
    c.send(method.encode() + b" " + path.encode() + b" HTTP/1.1\r\nHost: t\r\n" + extra + b"\r\n")
    return c.response(method)


def headers_named(resp, name: str) -> list[str]:
    name_b = name.lower().encode()
    return [v.decode("latin-1") for k, v in resp.headers if k == name_b]


def errors(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "catzilla" and r.levelno >= logging.ERROR]


class FakeRequest:
    def __init__(self, **headers: str) -> None:
        self.headers = Headers([(k.replace("_", "-").encode(), v.encode())
                                for k, v in headers.items()])


# -- 1. one FileResponse object, many requests -------------------------------------------------


@pytest.fixture
def icon(tmp_path):
    path = tmp_path / "favicon.ico"
    path.write_bytes(DATA)
    return FileResponse(path, filename="favicon.ico", headers={"X-Static": "1"})


def test_a_reused_file_response_answers_each_request_afresh(icon):
    app = Catzilla()
    app.add_route("/icon", lambda r: icon)
    before_headers = list(icon.raw_headers)
    etag = None
    with TestClient(app) as client, RawClient(client.port) as c:
        for _ in range(3):
            for extra, status, body in (
                (b"", 200, DATA),
                (b"", 200, DATA),
                (b"Range: bytes=0-1\r\n", 206, b"01"),
                (b"", 200, DATA),
                (b"Range: bytes=8-\r\n", 206, b"89"),
                (b"Range: bytes=10-\r\n", 416, None),
                (b"", 200, DATA),
            ):
                resp, got = get(c, "/icon", extra)
                assert resp.status_code == status
                assert len(headers_named(resp, "content-length")) == 1
                if body is not None:
                    assert got == body
                    assert headers_named(resp, "x-static") == ["1"]
                    assert len(headers_named(resp, "etag")) == 1
                    assert len(headers_named(resp, "content-disposition")) == 1
                    assert len(headers_named(resp, "content-range")) == (status == 206)
                    etag = header(resp, "etag")
            resp, got = get(c, "/icon", b"If-None-Match: %s\r\n" % etag.encode())
            assert resp.status_code == 304 and got == b""
            resp, got = get(c, "/icon", b"Range: bytes=2-3\r\n", method="HEAD")
            assert resp.status_code == 206 and header(resp, "content-length") == "2"
    # the object itself is as it was built
    assert icon.status_code == 200
    assert icon.raw_headers == before_headers
    assert icon.file_range is None
    assert list(icon.headers.keys()) == ["X-Static", "Content-Type", "Content-Disposition"]


def _lengths(response):
    return [v for k, v in response.raw_headers if k == b"Content-Length"]


def test_prepare_returns_a_response_for_that_request_alone(icon):
    ranged = icon.prepare(FakeRequest(range="bytes=2-4"))
    plain = icon.prepare(FakeRequest())
    assert ranged is not icon and plain is not icon
    assert (ranged.status_code, ranged.file_range, _lengths(ranged)) == \
        (206, (icon.path, 2, 3), [b"3"])
    assert (plain.status_code, plain.file_range, _lengths(plain)) == \
        (200, (icon.path, 0, 10), [b"10"])
    # the object itself is as it was built
    assert icon.status_code == 200 and icon.file_range is None and _lengths(icon) == []


def test_a_shared_file_response_served_by_two_servers_at_once(icon):
    """Two apps (two loop threads) serve the same object to concurrent clients."""
    apps = [Catzilla(), Catzilla()]
    for app in apps:
        app.add_route("/icon", lambda r: icon)
    cases = [(b"", 200, DATA), (b"Range: bytes=3-5\r\n", 206, b"345"),
             (b"Range: bytes=-1\r\n", 206, b"9"), (b"Range: bytes=50-\r\n", 416, None)]

    def hammer(port, offset):
        out = []
        with RawClient(port) as c:
            for i in range(150):
                extra, status, body = cases[(i + offset) % len(cases)]
                resp, got = get(c, "/icon", extra)
                out.append(resp.status_code == status and (body is None or got == body)
                           and len(headers_named(resp, "content-length")) == 1)
        return out

    with TestClient(apps[0]) as c1, TestClient(apps[1]) as c2:
        with ThreadPoolExecutor(6) as pool:
            futures = [pool.submit(hammer, port, k)
                       for k, port in enumerate([c1.port, c2.port] * 3)]
            results = [f.result(60) for f in futures]
    assert all(all(r) for r in results)


def test_headers_and_cookies_set_on_the_object_go_to_every_later_request(icon):
    icon.headers["Cache-Control"] = "max-age=60"
    icon.set_cookie("a", "1")
    for request in (FakeRequest(range="bytes=0-0"), FakeRequest()):
        names = [k for k, _ in icon.prepare(request).raw_headers]
        assert b"Cache-Control" in names and b"Set-Cookie" in names
        assert names.count(b"Content-Length") == 1


# -- 2. Range: bytes=N- with N >= size --------------------------------------------------------


@pytest.mark.parametrize("spec,status,body,content_range", [
    ("bytes=10-", 416, None, "bytes */10"),
    ("bytes=11-", 416, None, "bytes */10"),
    ("bytes=20-30", 416, None, "bytes */10"),
    ("bytes=9-", 206, b"9", "bytes 9-9/10"),
    ("bytes=0-", 206, DATA, "bytes 0-9/10"),
    ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
    ("bytes=-3", 206, b"789", "bytes 7-9/10"),
    ("bytes=-0", 416, None, "bytes */10"),
    ("bytes=5-2", 200, DATA, None),            # an invalid range-spec: ignored
    ("bytes=20-10", 200, DATA, None),
    ("bytes=0-1,3-4", 200, DATA, None),        # several ranges: the whole file
    ("items=0-1", 200, DATA, None),
])
def test_range_requests(icon, spec, status, body, content_range):
    app = Catzilla()
    app.add_route("/icon", lambda r: icon)
    with TestClient(app) as client, RawClient(client.port) as c:
        resp, got = get(c, "/icon", b"Range: %s\r\n" % spec.encode())
    assert resp.status_code == status
    assert header(resp, "content-range") == content_range
    if body is not None:
        assert got == body


def test_any_range_of_an_empty_file_is_unsatisfiable(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    response = FileResponse(tmp_path / "empty")
    for spec in ("bytes=0-", "bytes=0-0", "bytes=-1"):
        out = response.prepare(FakeRequest(range=spec))
        assert out.status_code == 416
        assert (b"Content-Range", b"bytes */0") in out.raw_headers


# -- 3. Content-Disposition --------------------------------------------------------------------


@pytest.mark.parametrize("name,expected", [
    ("plain.txt", 'attachment; filename="plain.txt"'),
    ("a b;c/d.txt", 'attachment; filename="a b;c/d.txt"'),
    ("a\\b.txt", "attachment; filename=\"a\\\\b.txt\"; filename*=utf-8''a%5Cb.txt"),
    ('say "hi".txt', "attachment; filename=\"say \\\"hi\\\".txt\"; filename*=utf-8''"
                     "say%20%22hi%22.txt"),
    ("café/ü.txt", "attachment; filename=\"caf?/?.txt\"; filename*=utf-8''"
                   "caf%C3%A9%2F%C3%BC.txt"),
    ("x\r\ny\x7f.txt", "attachment; filename=\"x__y_.txt\"; filename*=utf-8''x%0D%0Ay%7F.txt"),
    ("a!#$&+-.^_`|~z", 'attachment; filename="a!#$&+-.^_`|~z"'),
    ("é!#$&+^`|~", "attachment; filename=\"?!#$&+^`|~\"; filename*=utf-8''%C3%A9!#$&+^`|~"),
])
def test_content_disposition_quoting(tmp_path, name, expected):
    response = FileResponse(tmp_path / "f", filename=name)
    value = response.headers["Content-Disposition"]
    assert value == expected
    _core.serialise_head(200, response.raw_headers, 0)     # a valid header on the wire
    assert content_disposition(name) == expected           # the same for any response


# -- 4. redirects to non-ASCII URLs ------------------------------------------------------------


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


# -- 5. the charset in content_type ------------------------------------------------------------


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


def test_streamed_str_chunks_use_the_charset_of_the_content_type():
    from catzilla import EventSourceResponse

    async def agen():
        yield "café "
        yield b"\xe9"

    app = Catzilla()
    latin = "text/plain; charset=iso-8859-1"
    app.add_route("/sync", lambda r: StreamingResponse(iter(["café ", "€"]),
                                                       content_type="text/plain; charset=cp1252"))
    app.add_route("/async", lambda r: StreamingResponse(agen(), content_type=latin))
    app.add_route("/whole", lambda r: StreamingResponse("café", content_type=latin))
    app.add_route("/default", lambda r: StreamingResponse(iter(["café"])))
    app.add_route("/sse", lambda r: EventSourceResponse(iter(["data: café\n\n"]), ping=None,
                                                        headers={"Content-Type": latin}))
    with TestClient(app) as client:
        assert client.get("/sync").content == b"caf\xe9 \x80"
        assert client.get("/async").content == b"caf\xe9 \xe9"
        assert client.get("/whole").content == b"caf\xe9"
        assert client.get("/default").content == "café".encode()
        assert client.get("/sse").content == "data: café\n\n".encode()   # SSE is UTF-8


def test_a_stream_is_encoded_as_one_text_not_chunk_by_chunk():
    chunks = ["ab", "日本", "cd", "語"]
    app = Catzilla()
    for codec in ("utf-16", "utf-8-sig", "iso2022_jp"):
        app.add_route("/" + codec, lambda r, codec=codec: StreamingResponse(
            iter(chunks), content_type="text/plain; charset=" + codec))

    async def agen():
        for chunk in chunks:
            yield chunk

    app.add_route("/async", lambda r: StreamingResponse(
        agen(), content_type="text/plain; charset=iso2022_jp"))
    with TestClient(app) as client:
        for codec in ("utf-16", "utf-8-sig", "iso2022_jp"):
            # one BOM at the start (UTF-16, UTF-8-SIG); ISO-2022-JP's closing escape at the end
            assert client.get("/" + codec).content == "".join(chunks).encode(codec), codec
        assert client.get("/async").content == "".join(chunks).encode("iso2022_jp")


def test_a_streamed_str_chunk_the_charset_cannot_encode_breaks_only_its_stream(caplog):
    app = Catzilla()
    app.add_route("/bad", lambda r: StreamingResponse(iter(["ok ", "日本"]),
                                                      content_type="text/plain; charset=latin-1"))
    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /bad HTTP/1.1\r\nHost: t\r\n\r\n")
        data = c.read_until_closed()
    assert b"ok " in data and not data.endswith(b"0\r\n\r\n")   # truncated, no last chunk
    assert any("UnicodeEncodeError" in (r.exc_text or r.getMessage()) for r in errors(caplog))


def test_a_stream_with_framing_headers_that_disagree_is_a_500(caplog):
    app = Catzilla()
    app.add_route("/both", lambda r: StreamingResponse(
        iter([b"hello"]), headers={"Content-Length": "5", "Transfer-Encoding": "chunked"}))
    app.add_route("/gzip", lambda r: StreamingResponse(
        iter([b"hello"]), headers={"Transfer-Encoding": "gzip"}))
    with TestClient(app) as client, RawClient(client.port) as c:
        for path in ("/both", "/gzip"):
            resp, body = get(c, path)
            assert resp.status_code == 500, path   # before any of the body, and logged
            assert b"hello" not in body
    assert len(errors(caplog)) == 2


# -- 6. and 7. statuses ------------------------------------------------------------------------


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


# -- 8. control characters in header values ----------------------------------------------------


def test_header_values_refuse_every_control_but_htab():
    bad = [c for c in range(32) if c != 9] + [127]
    for c in range(256):
        for value in (bytes([c]), b"abcdefghij" + bytes([c]) + b"k", b"x" * 17 + bytes([c])):
            if c in bad:
                with pytest.raises(ValueError, match="response header b'X'"):
                    _core.serialise_head(200, [(b"X", value)], 0)
            else:
                assert b"\r\nX: " + value + b"\r\n" in _core.serialise_head(200, [(b"X", value)], 0)
    with pytest.raises(ValueError, match="control character 0x1b"):
        _core.serialise_head(200, [(b"X", b"\ta\x1b")], 0)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        _core.serialise_head(200, [(b"X", b"a\tb" * 10 + b"\n")], 0)


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


# -- 9. request.json() / request.text() on a client's bad body -------------------------------


def body_app():
    app = Catzilla()

    @app.post("/json")
    def as_json(request):
        return {"received": request.json()}

    @app.post("/ajson")
    async def as_json_async(request):            # the README's /items handler shape
        return {"received": request.json()}

    @app.post("/text")
    def as_text(request):
        return {"text": request.text()}

    @app.post("/caught")
    def caught(request):
        kinds = []
        for kind in (ValueError, json.JSONDecodeError, HTTPException, RequestBodyError):
            try:
                request.json()
            except kind as exc:
                kinds.append(type(exc).__name__)
        return {"caught": kinds}

    @app.post("/server-bug")
    def server_bug(request):
        return request.text(encoding="no-such-codec")       # the handler's own mistake

    return app


@pytest.mark.parametrize("body,fragment", [
    (b"{not json", "Expecting property name"),
    (b"", "the body is empty"),
    (b'"\xff"', "can't decode byte 0xff"),
    (b"[" * 100000 + b"]" * 100000, "Nesting too deep"),
    (b"1" * 5000, "Exceeds the limit"),
    (b'{"a": 1} x', "Extra data"),
], ids=["invalid", "empty", "not-utf8", "deep", "huge-int", "extra-data"])
def test_bad_json_bodies_are_400_and_not_logged(caplog, body, fragment):
    with caplog.at_level(logging.WARNING, logger="catzilla"), TestClient(body_app()) as client:
        for path in ("/json", "/ajson"):
            r = client.post(path, data=body, headers={"Content-Type": "application/json"})
            assert r.status == 400
            assert r.json()["detail"].startswith("Invalid JSON in the request body: ")
            assert fragment in r.json()["detail"]
        assert client.post("/json", data=b'{"a": [1]}').json() == {"received": {"a": [1]}}
    assert errors(caplog) == []


def test_bad_json_is_still_catchable_as_value_error_and_json_decode_error():
    with TestClient(body_app()) as client:
        r = client.post("/caught", data=b"{oops")
        assert r.json() == {"caught": ["RequestJSONError"] * 4}


def test_request_json_error_is_a_json_decode_error():
    exc = RequestJSONError("Expecting value", '{"a":\n  x}', 9)
    assert isinstance(exc, json.JSONDecodeError) and isinstance(exc, ValueError)
    assert isinstance(exc, HTTPException) and exc.status_code == 400
    assert (exc.msg, exc.pos, exc.lineno, exc.colno) == ("Expecting value", 9, 2, 4)
    assert exc.detail == ("Invalid JSON in the request body: "
                          "Expecting value: line 2 column 4 (char 9)")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is RequestJSONError and again.detail == exc.detail
    assert pickle.loads(pickle.dumps(RequestBodyError("x"))).detail == "x"


@pytest.mark.parametrize("content_type", [
    "text/plain; charset=no-such-charset", "text/plain; charset=base64", "text/plain; charset=",
])
def test_text_with_a_charset_python_lacks_is_400(caplog, content_type):
    with caplog.at_level(logging.WARNING, logger="catzilla"), TestClient(body_app()) as client:
        r = client.post("/text", data=b"hi", headers={"Content-Type": content_type})
        if content_type.endswith("="):              # no charset at all: UTF-8
            assert r.status == 200 and r.json() == {"text": "hi"}
        else:
            assert r.status == 400 and "Unsupported charset" in r.json()["detail"]
    assert errors(caplog) == []


def test_text_decodes_known_charsets_and_replaces_bad_bytes(caplog):
    with TestClient(body_app()) as client:
        r = client.post("/text", data="café".encode("latin-1"),
                        headers={"Content-Type": "text/plain; charset=latin-1"})
        assert r.json() == {"text": "café"}
        r = client.post("/text", data=b"caf\xff", headers={"Content-Type": "text/plain"})
        assert r.json() == {"text": "caf\ufffd"}
        with caplog.at_level(logging.ERROR, logger="catzilla"):
            assert client.post("/server-bug", data=b"x").status == 500
    assert len(errors(caplog)) == 1


# -- 10. request.form() ------------------------------------------------------------------------


def test_form_decodes_raw_utf8_and_escapes_alike():
    app = Catzilla()
    app.add_route("/form", lambda r: dict(r.form().multi_items()), ["POST"])
    with TestClient(app) as client:
        r = client.post("/form", data="name=café&city=Zürich%20Nord&x=%C3%A9+%E2%82%AC&b=\xff"
                        .encode("utf-8")[:-2] + b"\xff",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.json() == {"name": "café", "city": "Zürich Nord", "x": "é €", "b": "\ufffd"}
    assert QueryParams("a=é".encode())["a"] == "é"


# -- 11. and 12. path converters ---------------------------------------------------------------


def converter_app():
    app = Catzilla()
    app.add_route("/n/{n:int}", lambda r: {"n": str(r.path_params["n"])[:8]})
    app.add_route("/price/{p:float}", lambda r: {"p": r.path_params["p"]})
    return app


def test_int_with_more_digits_than_python_converts_is_404(caplog):
    with caplog.at_level(logging.WARNING, logger="catzilla"), TestClient(converter_app()) as c:
        assert c.get("/n/" + "9" * 4300).status == 200
        for digits in (4301, 5000):
            r = c.get("/n/" + "9" * digits)
            assert r.status == 404 and r.json() == {"detail": "Not Found"}
        assert c.get("/n/-" + "1" * 30).json() == {"n": "-1111111"}
    assert errors(caplog) == []


@pytest.mark.parametrize("raw,value", [
    ("1.5", 1.5), ("-2", -2.0), ("+2", 2.0), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0),
    ("-1.5E-2", -0.015), ("007", 7.0),
    ("1_000", None), ("%D9%A1%D9%A2", None), ("%EF%BC%91", None), ("nan", None),
    ("inf", None), ("-Infinity", None), ("1e400", None), ("%201", None), ("1%20", None),
    ("0x10", None), ("1e", None), ("1.2.3", None), ("-", None), ("e5", None),
])
def test_float_accepts_only_ascii_decimal_forms(raw, value):
    with TestClient(converter_app()) as c:
        r = c.get("/price/" + raw)
        if value is None:
            assert r.status == 404
        else:
            assert r.status == 200 and r.json() == {"p": value}


def test_int_and_float_agree_on_odd_forms():
    with TestClient(converter_app()) as c:
        for raw in ("1_000", "%D9%A1%D9%A2", "%EF%BC%91%EF%BC%92"):
            assert c.get("/n/" + raw).status == 404
            assert c.get("/price/" + raw).status == 404


def test_json_response_unaffected():
    assert JSONResponse({"a": "é"}).body == '{"a":"é"}'.encode()
