"""Request validation over real sockets: trailers, Transfer-Encoding, Host, versions, targets."""

from __future__ import annotations

import json
import socket

import pytest

from catzilla import Catzilla, JSONResponse
from catzilla.testing import TestClient


def make_app() -> Catzilla:
    app = Catzilla()

    @app.route("/{rest:path}", methods=["GET", "HEAD", "POST", "OPTIONS"])
    def echo(request):
        return JSONResponse({
            "path": request.raw_path.decode("latin-1"),
            "query": request.query_string.decode("latin-1"),
            "version": request.http_version,
            "user": request.headers.get("x-user"),
            "hosts": request.headers.getlist("host"),
            "url": request.url,
            "trailers": list(getattr(request, "trailers", {}).items()),
            "body": request.body.decode("latin-1"),
        })

    return app


@pytest.fixture(scope="module")
def port():
    with TestClient(make_app()) as client:
        yield client.port


@pytest.fixture(autouse=True)
def no_leaks():
    yield   # module-scoped server; TestClient checks its own shutdown


def exchange(port: int, data: bytes) -> bytes:
    """Send data, half-close, and return everything the server sends until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                return out
            out += chunk
    return out


def status_of(out: bytes) -> int:
    assert out.startswith(b"HTTP/1.1 "), out[:80]
    return int(out[9:12])


def body_of(out: bytes) -> dict:
    return json.loads(out.split(b"\r\n\r\n", 1)[1])


# -- trailers ---------------------------------------------------------------------------------

def test_trailer_fields_are_not_merged_into_the_headers(port):
    out = exchange(port, b"POST /who HTTP/1.1\r\nHost: good.example\r\nX-User: alice\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n0\r\nX-User: admin\r\nHost: evil.example\r\n\r\n")
    assert status_of(out) == 200
    got = body_of(out)
    assert got["user"] == "alice"
    assert got["hosts"] == ["good.example"]
    assert got["url"] == "http://good.example/who"
    assert got["body"] == "abc"
    assert got["trailers"] == [["x-user", "admin"], ["host", "evil.example"]]


def test_a_trailer_expect_field_does_not_turn_the_request_into_417(port):
    out = exchange(port, b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"1\r\na\r\n0\r\nExpect: foo\r\n\r\n")
    assert status_of(out) == 200
