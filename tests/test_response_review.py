"""Findings of a review of response framing: framing headers on a 204, a body that is not
bytes, and a close-delimited (HTTP/1.0) stream cut short. Real loopback sockets, raw bytes."""

from __future__ import annotations

import socket

import pytest
from conftest import RawClient

from catzilla import Catzilla, FileResponse, Response, StreamingResponse
from catzilla.testing import TestClient


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "f.bin"
    path.write_bytes(b"x" * 1000)
    app = Catzilla()

    @app.get("/204/length")
    def length_204(request):
        return Response(status_code=204, headers={"Content-Length": "5"})

    @app.get("/204/chunked")
    def chunked_204(request):
        return Response(status_code=204, headers={"Transfer-Encoding": "chunked"})

    @app.get("/204/file")
    def file_204(request):
        return FileResponse(str(path), status_code=204)

    @app.get("/304/length")
    def length_304(request):
        return Response(status_code=304, headers={"Content-Length": "1000", "ETag": '"a"'})

    @app.get("/int-body")
    def int_body(request):
        r = Response(b"")
        r.body = 12   # bytes(12) would be twelve NULs
        return r

    @app.get("/none-header")
    def none_header(request):
        return Response(b"x", headers={"X-Maybe": None})

    @app.get("/ok")
    def ok(request):
        return Response(b"fine")

    def parts(fail):
        yield b"part1;"
        if fail:
            raise RuntimeError("the producer fails")
        yield b"part2;"

    @app.get("/stream/{how}")
    def stream(request):
        return StreamingResponse(parts(request.path_params["how"] == "fail"))

    with TestClient(app) as c:
        yield c


@pytest.fixture(autouse=True)
def no_leaks():
    yield   # a module-scoped server


def head_of(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[0].lower()


@pytest.mark.parametrize("path", ["/204/length", "/204/chunked", "/204/file"])
def test_a_204_carries_no_framing_header_and_the_connection_goes_on(client, path):
    # RFC 9110 8.6 and RFC 9112 6.1: no Content-Length, no Transfer-Encoding on a 204
    with socket.create_connection(("127.0.0.1", client.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n"
                     "Connection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    first, _, rest = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 204 ")
    assert b"content-length" not in first.lower() and b"transfer-encoding" not in first.lower()
    assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b"\r\n\r\nfine")


def test_a_304_keeps_its_content_length(client):
    with RawClient(client.port) as c:
        c.send(b"GET /304/length HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert resp.status_code == 304 and body == b""
        assert (b"content-length", b"1000") in resp.headers


@pytest.mark.parametrize("path", ["/int-body", "/none-header"])
def test_a_bad_body_or_header_value_is_a_500(client, path, caplog):
    with RawClient(client.port) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        resp, body = c.response()
        assert resp.status_code == 500 and b"\x00" not in body
    assert any(r.levelname == "ERROR" for r in caplog.records)


def read_until_end(sock: socket.socket) -> tuple[bytes, str]:
    raw = b""
    try:
        while chunk := sock.recv(65536):
            raw += chunk
    except ConnectionResetError:
        return raw, "reset"
    return raw, "fin"


def test_an_http10_stream_cut_short_ends_with_a_reset(client):
    # a close-delimited body has no other way to say it is incomplete (RFC 9112 8)
    for how, end, body in (("ok", "fin", b"part1;part2;"), ("fail", "reset", b"part1;")):
        with socket.create_connection(("127.0.0.1", client.port), timeout=10) as sock:
            sock.sendall(f"GET /stream/{how} HTTP/1.0\r\nHost: t\r\n\r\n".encode())
            raw, how_it_ended = read_until_end(sock)
        assert how_it_ended == end, (how, raw)
        assert b"transfer-encoding" not in head_of(raw)
        if end == "fin":
            assert raw.endswith(b"\r\n\r\n" + body)


def test_an_http11_stream_cut_short_still_ends_with_a_fin(client):
    # (chunked framing says it: no last chunk)
    with socket.create_connection(("127.0.0.1", client.port), timeout=10) as sock:
        sock.sendall(b"GET /stream/fail HTTP/1.1\r\nHost: t\r\n\r\n")
        raw, how_it_ended = read_until_end(sock)
    assert how_it_ended == "fin"
    assert raw.endswith(b"6\r\npart1;\r\n") and not raw.endswith(b"0\r\n\r\n")


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
