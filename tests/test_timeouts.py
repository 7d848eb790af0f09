"""Connection timers over real loopback sockets: keep-alive idle time, request (head and body)
time, and the lingering close. Timeouts are short; waiting them out is what is under test."""

from __future__ import annotations

import asyncio
import socket
import time

from conftest import RawClient, wait_for

from catzilla import Catzilla, Response, StreamingResponse
from catzilla.testing import TestClient

BIG = 8 * 1024 * 1024   # more than the kernel buffers of both ends hold


def make_app(**kw) -> Catzilla:
    app = Catzilla(**kw)

    @app.get("/")
    def home(request):
        return Response(b"hello")

    @app.post("/echo")
    def echo(request):
        return Response(request.body)

    @app.get("/slow")
    async def slow(request):
        await asyncio.sleep(float(request.query_params.get("s", "0")))
        return Response(b"slow-done")

    @app.get("/big")
    def big(request):
        return Response(b"x" * BIG)

    @app.get("/pausing-stream")
    def pausing_stream(request):
        async def gen():
            yield b"first;"
            await asyncio.sleep(1.6)
            yield b"second"
        return StreamingResponse(gen())

    return app


def closed_within(sock: socket.socket, seconds: float, send: bytes | None = None,
                  every: float = 0.2) -> float | None:
    """Seconds until the server closed or reset the connection (while we keep sending
    ``send`` every ``every`` s, if given), or None if it was still open after ``seconds``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        try:
            if send is not None:
                sock.sendall(send)
            sock.settimeout(every)
            if sock.recv(65536) == b"" and send is None:
                return time.monotonic() - t0
        except socket.timeout:
            pass
        except OSError:   # reset, broken pipe
            return time.monotonic() - t0
    return None


def test_keep_alive_idle_time_counts_from_the_end_of_the_response():
    # The response takes as long as the keep-alive timeout; the client reuses the connection
    # well within keep_alive_timeout after it.
    with TestClient(make_app(keep_alive_timeout=2.0)) as client, RawClient(client.port) as c:
        c.send(b"GET /slow?s=2.0 HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert body == b"slow-done"
        time.sleep(1.2)
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert (resp.status_code, body) == (200, b"hello")


def test_crlf_trickle_does_not_keep_an_idle_connection_open():
    with TestClient(make_app(keep_alive_timeout=1.0, request_timeout=3.0)) as client, \
            RawClient(client.port) as c:
        c.send(b"\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")   # empty lines before a request are fine
        resp, body = c.response()
        assert (resp.status_code, body) == (200, b"hello")
        # Empty lines are not a request: the idle connection still times out.
        took = closed_within(c.sock, 6.0, send=b"\r\n", every=0.25)
        assert took is not None, "a CRLF every 0.25 s kept the connection open for 6 s"
        assert took < 2.8   # keep_alive_timeout + one tick of the 1 s ticker + slack


def test_lingering_close_is_bounded_while_the_client_keeps_sending():
    with TestClient(make_app()) as client, RawClient(client.port) as c:
        c.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        data = c.read_until_closed()    # the 400, then our FIN
        assert data.startswith(b"HTTP/1.1 400 ")
        took = closed_within(c.sock, 10.0, send=b"x" * 100, every=0.2)
        assert took is not None, "the lingering connection outlived 10 s of client data"
        assert took < 7.5   # the absolute linger bound (5 s) + one tick + slack


def test_lingering_time_is_an_option():
    app = make_app(lingering_timeout=0.3, lingering_time=1.5)
    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        assert c.read_until_closed().startswith(b"HTTP/1.1 400 ")
        # data every 0.1 s: never quiet for lingering_timeout, so lingering_time ends it
        took = closed_within(c.sock, 10.0, send=b"x" * 100, every=0.1)
        assert took is not None, "the lingering connection outlived 10 s of client data"
        assert 1.0 < took < 3.3   # lingering_time + one tick of the 1 s ticker + slack


def test_lingering_timeout_is_an_option():
    app = make_app(lingering_timeout=0.3, lingering_time=30.0)

    def lingering() -> int:
        return sum(row["lingering"] for s in app._servers for row in s.debug_state()["conns"])

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        assert c.read_until_closed().startswith(b"HTTP/1.1 400 ")
        t0 = time.monotonic()
        assert client.call_in_server(lingering) == 1
        # a quiet client: closed after lingering_timeout, long before lingering_time
        assert wait_for(lambda: client.call_in_server(lingering) == 0, timeout=10.0)
        assert time.monotonic() - t0 < 2.5   # lingering_timeout + one tick + slack


def test_slow_reader_of_a_closing_response_gets_all_of_it():
    # The linger timer starts once the response and our FIN are out, not while it drains.
    with TestClient(make_app()) as client, RawClient(client.port, rcvbuf=65536) as c:
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        time.sleep(3.2)   # longer than the linger's 2 s without reads from the client
        data = bytearray()
        while chunk := c.sock.recv(1 << 20):
            data += chunk
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ")
        assert len(body) == BIG


def test_slow_body_gets_408_after_request_timeout():
    with TestClient(make_app(request_timeout=1.0)) as client, RawClient(client.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n")
        got = b""
        t0 = time.monotonic()
        while b"\r\n\r\n" not in got and time.monotonic() - t0 < 6.0:
            c.send(b"a")   # 5 B/s, far below min_body_rate
            c.sock.settimeout(0.2)
            try:
                got += c.sock.recv(65536)
            except socket.timeout:
                pass
        assert got.startswith(b"HTTP/1.1 408 "), got
        assert time.monotonic() - t0 < 3.5   # request_timeout + one tick + slack
        c.sock.settimeout(5)
        c.read_until_closed()   # then a clean close


def test_an_upload_longer_than_request_timeout_at_a_fair_rate_is_served():
    with TestClient(make_app(request_timeout=1.0)) as client, RawClient(client.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 65536\r\n\r\n")
        for _ in range(16):   # 40 KiB/s for 1.6 s
            c.send(b"a" * 4096)
            time.sleep(0.1)
        resp, body = c.response("POST")
        assert (resp.status_code, len(body)) == (200, 65536)


def test_chunk_extension_flood_is_refused_by_time_or_size():
    # Chunk extensions are no body: a client sending only them makes no progress (408 after
    # request_timeout), and reads without body bytes count against max_header_size (431),
    # whichever comes first; at 20 KB/s here the two fall within a second of each other.
    with TestClient(make_app(request_timeout=1.0)) as client, RawClient(client.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n1;e=")
        got = b""
        t0 = time.monotonic()
        try:
            while b"\r\n\r\n" not in got and time.monotonic() - t0 < 6.0:
                c.send(b"a" * 1024)
                c.sock.settimeout(0.05)
                try:
                    got += c.sock.recv(65536)
                except socket.timeout:
                    pass
        except ConnectionResetError:
            pass
        assert got.startswith((b"HTTP/1.1 408 ", b"HTTP/1.1 431 ")), got
        assert time.monotonic() - t0 < 3.5


def test_a_pausing_stream_outlives_the_connection_timers():
    # Not idle while a response is in progress, whatever the client sends or does not send.
    with TestClient(make_app(keep_alive_timeout=0.5, request_timeout=0.5)) as client, \
            RawClient(client.port) as c:
        c.send(b"GET /pausing-stream HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert (resp.status_code, body) == (200, b"first;second")
