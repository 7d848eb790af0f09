"""The transport over real loopback sockets: a client that leaves (FIN, half-close or close) is
noticed at once, also after its stream backed up past write_high_water and while reading is held
off behind a stream; behind a running stream, requests are read on and wait their turn, uploads
are not read on."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
from conftest import RawClient, wait_for

from catzilla import Catzilla, EventSourceResponse, FileResponse, Response, StreamingResponse
from catzilla.testing import TestClient

HIGH, LOW = 64 * 1024, 16 * 1024


MARK = b"<end of the burst>"


def _read_through(sock: socket.socket, end: bytes) -> bytearray:
    """Read until the data received ends with ``end`` (nothing more is on its way)."""
    data = bytearray()
    while not data.endswith(end):
        chunk = sock.recv(1 << 20)
        assert chunk, "closed before %r" % end
        data += chunk
    return data


def _backed_up(app: Catzilla) -> bool:
    """The client is behind: more of a stream's bytes wait than write_low_water, which a
    producer held back at write_high_water waits for (and a burst went past the high mark)."""
    return any(conn.stream is not None and conn.stream.backlog > LOW
               for conn in app.connections)


def _leave(sock: socket.socket, how: str) -> None:
    if how == "half-close":
        sock.shutdown(socket.SHUT_WR)
        # the client gets no more of the response: the server closes at once
        assert sock.recv(1 << 20) == b""
    else:
        sock.close()


class _Burst:
    """A producer that writes until the test has seen its socket back up, then a marker, then
    goes quiet (a sync one blocks, an async one sleeps): the stream runs on and writes nothing
    more, so only reading can tell that the client has gone."""

    def __init__(self, size: int) -> None:
        self.chunk = b"x" * size
        self.quiet = threading.Event()
        self.release = threading.Event()
        self.done = threading.Event()
        self.resumed = 0   # items asked for after the quiet spell

    def sync(self):
        try:
            while not self.quiet.is_set():
                yield self.chunk
            yield MARK
            self.release.wait(10)
            yield self.chunk
            self.resumed += 1
        finally:
            self.done.set()

    async def aio(self):
        try:
            while not self.quiet.is_set():
                yield self.chunk
            yield MARK
            await asyncio.sleep(10)
            yield self.chunk
            self.resumed += 1
        finally:
            self.done.set()


# -- a client leaving after its writes backed up ----------------------------------------------

@pytest.mark.parametrize("how", ["close", "half-close"])
@pytest.mark.parametrize("kind,size", [
    ("sync", 1000),           # the loop writes its chunks
    ("sync", 256 * 1024),     # the producer thread writes them itself, until the socket is full
    ("async", 256 * 1024),
], ids=["sync-loop-writes", "sync-direct-writes", "async"])
def test_a_client_leaving_after_its_stream_backed_up_is_noticed(kind, size, how):
    app = Catzilla(write_high_water=HIGH, write_low_water=LOW)
    burst = _Burst(size)
    app.add_route("/s", lambda r: StreamingResponse(burst.sync() if kind == "sync"
                                                    else burst.aio()))
    with TestClient(app) as client:
        try:
            with RawClient(client.port, rcvbuf=8192) as c:
                c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                assert wait_for(lambda: _backed_up(app)), "the stream never backed up"
                burst.quiet.set()
                _read_through(c.sock, MARK + b"\r\n")   # everything sent: no reset on close
                _leave(c.sock, how)
                assert wait_for(lambda: len(app.connections) == 0, 3), (
                    "the client left, but its connection is still registered: %r"
                    % client.server.debug_state())
                assert wait_for(lambda: app.connections.stats()["streams_active"] == 0)
        finally:
            burst.release.set()
        assert burst.done.wait(5)
        assert burst.resumed == 0   # closed before its next item


def test_a_hub_subscriber_leaving_after_a_burst_is_noticed():
    app = Catzilla(write_high_water=HIGH, write_low_water=LOW)
    hub = app.broadcast
    app.add_route("/sub", lambda r: EventSourceResponse(hub.subscribe("burst"), ping=None))
    with TestClient(app) as client, RawClient(client.port, rcvbuf=8192) as c:
        c.send(b"GET /sub HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: hub.subscribers("burst") == 1)
        for _ in range(600):   # ~10 MB the client does not read yet
            hub.publish("burst", "y" * 16000)
        assert wait_for(lambda: _backed_up(app))
        hub.publish("burst", "end")
        _read_through(c.sock, b"data: end\n\n\r\n")
        c.sock.close()
        assert wait_for(lambda: hub.subscribers("burst") == 0 and len(app.connections) == 0, 3)


def test_a_stream_that_starts_behind_a_backed_up_response_notices_its_client_leaving():
    """A big response pauses reading; the stream pipelined behind it starts while libuv's
    queue is still long, and must read on."""
    app = Catzilla(write_high_water=HIGH, write_low_water=LOW)
    burst = _Burst(1000)
    big = b"b" * (16 << 20)   # more than the kernel's buffers take
    app.add_route("/big", lambda r: Response(big))
    app.add_route("/s", lambda r: StreamingResponse(burst.sync()))
    burst.quiet.set()   # only the marker, then quiet
    with TestClient(app) as client:
        try:
            with RawClient(client.port, rcvbuf=8192) as c:
                c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\nGET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                assert wait_for(lambda: any(conn.stream is not None
                                            for conn in app.connections))
                data = _read_through(c.sock, MARK + b"\r\n")
                assert b"Content-Length: %d\r\n" % len(big) in data
                assert data.count(b"b" * 65536) >= len(big) // 65536
                c.sock.close()
                assert wait_for(lambda: len(app.connections) == 0, 3), (
                    client.server.debug_state())
        finally:
            burst.release.set()
        assert burst.done.wait(5)


@pytest.mark.parametrize("how", ["close", "half-close"])
def test_a_file_download_notices_its_client_leaving(tmp_path, how):
    path = tmp_path / "big.bin"
    path.write_bytes(b"f" * (64 << 20))
    app = Catzilla(write_high_water=HIGH, write_low_water=LOW)
    app.add_route("/f", lambda r: FileResponse(path))
    with TestClient(app) as client, RawClient(client.port, rcvbuf=8192) as c:
        c.send(b"GET /f HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: any(conn.stream is not None and conn.stream.sent > 0
                                    for conn in app.connections))
        if how == "half-close":
            c.sock.shutdown(socket.SHUT_WR)   # unread bytes stay unread: no reset
        else:
            c.sock.close()
        assert wait_for(lambda: len(app.connections) == 0, 3), client.server.debug_state()
        assert wait_for(lambda: client.server.debug_state()["fd_holders"] == 0)


# -- reading behind a stream ------------------------------------------------------------------

def test_requests_sent_while_a_stream_runs_are_answered_after_it():
    """Reading goes on while a backed-up stream answers; what arrives waits its turn."""
    app = Catzilla(write_high_water=HIGH, write_low_water=LOW)
    burst = _Burst(1000)
    app.add_route("/s", lambda r: StreamingResponse(burst.sync()))
    app.add_route("/n/{i}", lambda r: Response(r.path_params["i"]))
    with TestClient(app) as client:
        try:
            with RawClient(client.port, rcvbuf=8192) as c:
                c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                assert wait_for(lambda: _backed_up(app))
                burst.quiet.set()
                c.send(b"".join(b"GET /n/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(3)))
                assert wait_for(lambda: client.server.debug_state()["conns"][0]["pending"]
                                == 3), client.server.debug_state()
                burst.release.set()
                resp, body = c.response()
                assert body.endswith(MARK + b"x" * 1000)
                assert [c.response()[1] for _ in range(3)] == [b"0", b"1", b"2"]
        finally:
            burst.release.set()
        assert burst.done.wait(5)


def test_requests_with_bodies_behind_a_stream_are_not_read_on():
    # A client that never reads its endless stream and pipelines uploads behind it: the
    # server holds at most the first one (and one read), not 16 bodies of max_body_size.
    body = 2 * 1024 * 1024
    app = Catzilla(max_body_size=body)
    app.add_route("/s", lambda r: StreamingResponse(iter(lambda: b"x" * 65536, None)))
    app.add_route("/up", lambda r: Response(b"%d" % len(r.body)), ["POST"])
    with TestClient(app) as client, RawClient(client.port, timeout=2, rcvbuf=4096) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: any(conn.stream is not None and conn.stream.backlog > 0
                                    for conn in app.connections))
        upload = b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % body
        upload += b"y" * body
        sent = 0
        try:
            for _ in range(20):
                view = memoryview(upload)
                while view:
                    k = c.sock.send(view[:262144])
                    sent += k
                    view = view[k:]
        except TimeoutError:
            pass   # the server stopped reading: our sends stall
        assert sent < 6 * body, "%d bytes of uploads taken behind an unread stream" % sent
        assert client.server.debug_state()["conns"][0]["pending"] <= 1


def test_a_client_leaving_with_requests_queued_behind_its_stream_is_noticed():
    # Reading is held off behind a stream, so the FIN waits unread: the ticker sees it.
    app = Catzilla()
    app.add_route("/sse", lambda r: EventSourceResponse(app.broadcast.subscribe("q"), ping=None))
    app.add_route("/n", lambda r: Response(b"n"))
    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /sse HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: app.broadcast.subscribers("q") == 1)
        c.send(b"GET /n HTTP/1.1\r\nHost: t\r\n\r\n" * 16)
        assert wait_for(lambda: client.server.debug_state()["conns"][0]["pending"] >= 1)
        c.sock.close()
        assert wait_for(lambda: len(app.connections) == 0, 3), client.server.debug_state()
        assert app.broadcast.subscribers("q") == 0
