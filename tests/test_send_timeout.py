"""Catzilla(send_timeout=...): a client that stops reading is let go; a slow one is not."""

from __future__ import annotations

import socket
import time

from conftest import wait_for

from catzilla import Catzilla, FileResponse, Request, Response
from catzilla.testing import TestClient

BIG = b"x" * (8 * 1024 * 1024)


def make_app(tmp_path, **options) -> Catzilla:
    app = Catzilla(**options)
    (tmp_path / "big.bin").write_bytes(BIG * 4)

    @app.get("/big")
    def big(request: Request) -> Response:
        return Response(BIG, content_type="application/octet-stream")

    @app.get("/file")
    def file(request: Request) -> Response:
        return FileResponse(tmp_path / "big.bin")

    return app


def stalled_client(port: int, path: str) -> socket.socket:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    return s          # and never reads


def test_a_client_that_stops_reading_is_let_go_after_send_timeout(tmp_path):
    app = make_app(tmp_path, send_timeout=1.0)
    with TestClient(app) as client:
        for path in ("/big", "/file"):
            s = stalled_client(client.port, path)
            try:
                assert wait_for(lambda: len(app.connections) == 1, 5)
                t0 = time.monotonic()
                assert wait_for(lambda: len(app.connections) == 0, 6), path
                # send_timeout (1 s) plus at most one tick of the 1 s timer
                assert time.monotonic() - t0 < 3.5, path
            finally:
                s.close()
        stats = app.connections.stats()
        assert stats["streams_active"] == 0


def read_slowly(port: int, path: str, pause: float, pause_for: float = 1e9) -> tuple[int, float]:
    """GET path with Connection: close through a 64 KiB receive buffer, sleeping pause after
    each read during the first pause_for seconds; returns (bytes received, seconds taken)."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path.encode())
        got = 0
        t0 = time.monotonic()
        while True:
            data = s.recv(65536)
            if not data:
                break
            got += len(data)
            if time.monotonic() - t0 < pause_for:
                time.sleep(pause)        # the client's own pace
        return got, time.monotonic() - t0
    finally:
        s.close()


def test_a_slow_reader_that_keeps_reading_gets_everything(tmp_path):
    app = make_app(tmp_path, send_timeout=1.0)
    with TestClient(app) as client:
        # reads well under send_timeout apart
        got, took = read_slowly(client.port, "/file", 0.01, pause_for=2.5)
    assert 0 < got - len(BIG) * 4 < 1024     # the whole 32 MiB body and its head
    assert took > 1.0                        # slower than send_timeout overall


def test_a_reader_taking_one_big_write_slowly_is_not_cut(tmp_path):
    # an 8 MiB Response body is one write: what the kernel does not take at once waits in
    # libuv's queue as one request that completes only at its end, seconds later for this
    # client; every byte the client takes from it is progress
    app = make_app(tmp_path, send_timeout=2.0)
    with TestClient(app) as client:
        got, took = read_slowly(client.port, "/big", 0.06)    # about 1.1 MB/s
    assert 0 < got - len(BIG) < 1024           # the whole body and its head
    assert took > 3.5                          # longer than send_timeout + a tick
