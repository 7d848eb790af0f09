"""Big chunks that a sync producer thread writes to the socket itself (no hand-off to the loop
while nothing else is queued): order and framing when the kernel takes only part of a chunk,
disconnects and closes while a thread is writing, pings beside direct writes."""

from __future__ import annotations

import logging
import random
import socket
import struct
import sys
import threading
import time

import aiohttp
import h11
import pytest
from conftest import UNDER_WRITE_FAULTS, RawClient, wait_for

from catzilla import Catzilla, EventSourceResponse, Response, StreamingResponse
from catzilla.testing import TestClient


def _big_chunks(seed: int, count: int) -> list[bytes]:
    """Distinct chunks, every one big enough to be written by the producer thread."""
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(32768, 300_000)) for _ in range(count)]


@pytest.mark.parametrize("framing", ["chunked", "length", "http10"])
def test_chunks_the_kernel_takes_in_part_arrive_whole_and_in_order(framing):
    """The client does not read until the server reports a send the kernel took only in part;
    the rest of that chunk (framing included) then goes through the loop, and the body must
    still be exactly the chunks in order."""
    app = Catzilla()
    state = {}

    def route(request):
        chunks = state["chunks"]
        headers = {"Content-Length": str(sum(map(len, chunks)))} if framing == "length" else {}
        return StreamingResponse(iter(chunks), headers=headers)

    app.add_route("/s", route)
    with TestClient(app) as client:
        srv = client.server
        for attempt in range(5):
            state["chunks"] = _big_chunks(attempt, 60)
            before = srv.direct_partial
            with RawClient(client.port, rcvbuf=16384) as c:
                if framing == "http10":
                    c.send(b"GET /s HTTP/1.0\r\n\r\n")
                else:
                    c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                wait_for(lambda before=before: srv.direct_partial > before, timeout=5)
                if framing == "http10":
                    head, _, body = c.read_until_closed().partition(b"\r\n\r\n")
                    assert b"transfer-encoding" not in head.lower()
                else:
                    resp, body = c.response()
                    te = dict(resp.headers).get(b"transfer-encoding")
                    assert te == (b"chunked" if framing == "chunked" else None)
            assert body == b"".join(state["chunks"])
            if srv.direct_partial > before:
                break
        assert srv.direct_writes > 0
        assert srv.direct_partial > 0, "no send was ever taken in part"


def test_small_and_big_chunks_mixed_keep_their_order_with_a_slow_reader():
    """Small chunks go through the loop, big ones may be written by the thread: whichever
    way each goes, they leave in the order they were made."""
    rng = random.Random(11)
    chunks = []
    for _ in range(400):
        kind = rng.random()
        if kind < 0.5:
            chunks.append(rng.randbytes(rng.randint(1, 4000)))
        elif kind < 0.6:
            chunks.append(rng.randbytes(rng.choice([32767, 32768, 32769])))
        else:
            chunks.append(rng.randbytes(rng.randint(20_000, 200_000)))
    app = Catzilla()
    app.add_route("/s", lambda r: StreamingResponse(iter(chunks)))
    with TestClient(app) as client:
        for _ in range(3):
            with RawClient(client.port, rcvbuf=16384) as c:
                c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                c.conn.send(h11.Request(method="GET", target="/", headers=[("Host", "t")]))
                c.conn.send(h11.EndOfMessage())
                got = []
                while True:
                    ev = c.conn.next_event()
                    if ev is h11.NEED_DATA:
                        c.conn.receive_data(c.sock.recv(4096))   # small reads: a slow client
                    elif isinstance(ev, h11.Data):
                        got.append(bytes(ev.data))
                    elif isinstance(ev, h11.EndOfMessage):
                        break
            assert b"".join(got) == b"".join(chunks)
        assert client.server.direct_writes > 0


def _endless(block: bytes, finished: list):
    """A producer that never ends by itself; each one appends an Event set by its finally:."""
    done = threading.Event()
    finished.append(done)
    try:
        while True:
            yield block
    finally:
        done.set()


@pytest.mark.parametrize("how", ["close", "reset"])
def test_client_leaving_while_the_thread_writes_closes_the_producer(how, caplog):
    """A client that goes away mid-download: the producer's finally: runs, nothing is logged
    as an error, and no socket, thread or registry entry is left."""
    app = Catzilla()
    finished = []
    block = b"d" * (256 * 1024)
    app.add_route("/s", lambda r: StreamingResponse(_endless(block, finished)))
    with caplog.at_level(logging.WARNING, logger="catzilla"), TestClient(app) as client:
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", client.port))
            s.sendall(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
            received = 0
            while received < 2 << 20:
                received += len(s.recv(1 << 20))
            if how == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
            assert finished[-1].wait(5)
        assert wait_for(lambda: len(app.connections) == 0)
        assert wait_for(lambda: client.server.debug_state()["fd_holders"] == 0)
        assert app.connections.stats()["streams_active"] == 0
        assert client.server.direct_writes > 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_closing_from_the_registry_while_the_thread_writes():
    """connection.close() on the loop while a producer thread may be inside its send: the
    socket is closed only once the thread has let go of it."""
    app = Catzilla()
    finished = []
    ids = []
    block = b"r" * (128 * 1024)
    app.add_route("/ok", lambda r: Response("still serving"))

    @app.get("/s")
    def s(request):
        ids.append(request.connection_id)
        return StreamingResponse(_endless(block, finished))

    with TestClient(app) as client:

        async def scenario():
            for _ in range(20):
                r = await client.session.get(client.url("/s"))
                await r.content.readexactly(1 << 20)
                client.call_in_server(app.connections[ids[-1]].close)
                with pytest.raises(aiohttp.ClientPayloadError):
                    await r.content.read()
                r.release()
                assert finished[-1].wait(5)

        client.run(scenario())
        assert wait_for(lambda: client.server.debug_state()["fd_holders"] == 0)
        assert wait_for(lambda: len(app.connections) == 0)
        assert client.server.direct_writes > 0
        assert client.get("/ok").content == b"still serving"


@pytest.mark.parametrize("retry", [None, 2000], ids=["no-retry", "retry"])
def test_pings_never_land_inside_an_event_written_by_the_thread(retry):
    """Big SSE events go out from the producer thread while the ping timer fires on the loop:
    a ping is written only between events, never inside one. A retry line queued before the
    producer starts does not keep the thread from writing."""
    from test_sse import parse_events

    app = Catzilla()
    events = [{"data": ("%d:" % i) + "x" * 40_000} for i in range(200)]

    def gen():
        for i, ev in enumerate(events):
            yield ev
            if i % 50 == 49:
                time.sleep(0.02)   # the producer falls silent: the 5 ms ping fires

    app.add_route("/s", lambda r: EventSourceResponse(gen(), ping=0.005, retry=retry))
    with TestClient(app) as client:
        body = client.get("/s").content
        assert body.startswith(b"retry: 2000\n\n") == (retry is not None)
        assert b": ping\n\n" in body
        parsed = parse_events(body)
        if retry is not None:   # the retry line parses as an event of its own, without data
            assert parsed[0]["retry"] == retry and parsed[0]["data"] == ""
            parsed = parsed[1:]
        assert [e["data"] for e in parsed] == [e["data"] for e in events]
        assert client.server.direct_writes > 0


def test_graceful_stop_while_threads_write():
    """app shutdown while producer threads write big chunks to clients that keep reading: every
    producer's finally: runs, each client sees its connection end, and the stop is prompt."""
    app = Catzilla(shutdown_timeout=3)
    finished = []
    block = b"g" * (192 * 1024)
    app.add_route("/s", lambda r: StreamingResponse(_endless(block, finished),
                                                    stop_on_shutdown=True))
    client = TestClient(app).__enter__()
    socks, readers, ended = [], [], []
    try:
        for _ in range(3):
            s = socket.create_connection(("127.0.0.1", client.port))
            s.sendall(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
            s.recv(65536)
            socks.append(s)

        def drain(sock):
            sock.settimeout(10)
            try:
                while sock.recv(1 << 20):
                    pass
                ended.append("eof")
            except OSError as exc:
                ended.append(type(exc).__name__)

        readers = [threading.Thread(target=drain, args=(s,)) for s in socks]
        for t in readers:
            t.start()
        assert wait_for(lambda: client.server.direct_writes >= 30)
        t0 = time.monotonic()
    finally:
        client.close()
    assert time.monotonic() - t0 < 3
    for t in readers:
        t.join(10)
    for s in socks:
        s.close()
    assert len(finished) == 3 and all(done.is_set() for done in finished)
    assert len(ended) == 3 and "timeout" not in ended


@pytest.mark.parametrize("count", [1, 2], ids=["fewer", "more"])
def test_content_length_mismatch_with_big_chunks_aborts_the_connection(count, caplog):
    """Chunks the thread writes itself count toward Content-Length like any other: a producer
    that yields fewer or more bytes than announced has its connection cut after the bytes that
    fit, and the error is logged."""
    app = Catzilla()
    block = b"m" * 40_000
    app.add_route("/s", lambda r: StreamingResponse(iter([block] * count),
                                                    headers={"Content-Length": "60000"}))
    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        head, _, body = c.read_until_closed().partition(b"\r\n\r\n")
        assert b"Content-Length: 60000" in head
        assert body == block    # the second block would overrun: it is never sent
        # (under write faults a head the kernel took in part leaves the block to the loop)
        assert UNDER_WRITE_FAULTS or client.server.direct_writes > 0
    assert any("Content-Length" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_endless_producer_that_overruns_content_length_is_stopped(kind, caplog):
    """The loop, not the producer, ends a stream that overruns its Content-Length: the
    producer (which would go on for ever) is stopped, and its finally: runs."""
    app = Catzilla()
    block = b"o" * 40_000
    done = threading.Event()

    def endless():
        try:
            while True:
                yield block
        finally:
            done.set()

    async def aendless():
        try:
            while True:
                yield block
        finally:
            done.set()

    app.add_route("/s", lambda r: StreamingResponse(
        endless() if kind == "sync" else aendless(), headers={"Content-Length": "60000"}))
    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        head, _, body = c.read_until_closed().partition(b"\r\n\r\n")
        assert body == block
        assert done.wait(5), "the producer still runs after its response was cut off"
        assert wait_for(lambda: app.connections.stats()["streams_active"] == 0)
    assert any("Content-Length" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_a_closed_connection_closes_its_socket_while_the_producer_cleans_up():
    """connection.close() while the producer thread may be inside its send: the client sees
    the connection end at once, not after the producer's finally: (which here waits until the
    client has seen the end). Repeated, so that some closes land inside a send."""
    app = Catzilla()
    block = b"c" * (1 << 20)
    ids, cleanups = [], []

    @app.get("/s")
    def s(request):
        ids.append(request.connection_id)
        in_finally, release = threading.Event(), threading.Event()
        cleanups.append((in_finally, release))

        def gen():
            try:
                while True:
                    yield block
            finally:
                in_finally.set()
                release.wait(10)    # a clean-up that takes as long as the client waits

        return StreamingResponse(gen())

    with TestClient(app) as client:
        for attempt in range(100):
            with socket.create_connection(("127.0.0.1", client.port)) as sock:
                sock.sendall(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                got = 0
                while got < 4 << 20:
                    got += len(sock.recv(1 << 20))
                client.call_in_server(app.connections[ids[-1]].close)
                in_finally, release = cleanups[-1]
                try:
                    sock.settimeout(5)
                    try:
                        while sock.recv(1 << 20):
                            pass
                    except ConnectionResetError:
                        pass
                    except TimeoutError:
                        pytest.fail("attempt %d: the connection was closed on the server, but "
                                    "its socket stayed open while the producer cleaned up"
                                    % attempt)
                    assert in_finally.wait(5)
                finally:
                    release.set()
        assert wait_for(lambda: client.server.debug_state()["fd_holders"] == 0)
        assert wait_for(lambda: len(app.connections) == 0)


def test_an_overrun_never_lets_a_later_chunk_out_in_place_of_the_dropped_one(caplog):
    """The loop drops a chunk that overruns Content-Length. While it deals with that, the
    producer's next chunk (which would fit what is left) must not reach the socket: the body
    is always a prefix of what was produced. The producer yields it the moment the loop has
    taken the dropped chunk; a tiny switch interval lets the threads interleave there."""
    A, X, Y = b"a" * 10, b"x" * 50_000, b"y" * 40_000
    produced = A + X + Y
    app = Catzilla()

    @app.get("/s")
    def s(request):
        conn = request.connection

        def gen():
            yield A
            stream = conn.stream
            yield X
            while stream.backlog:   # until the loop has taken X off the deque
                pass
            yield Y

        return StreamingResponse(gen(), headers={"Content-Length": str(len(A) + len(Y))})

    old = sys.getswitchinterval()
    with caplog.at_level(logging.CRITICAL, logger="catzilla"), TestClient(app) as client:
        sys.setswitchinterval(1e-6)
        try:
            for attempt in range(3000):
                with RawClient(client.port) as c:
                    c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                    head, _, body = c.read_until_closed().partition(b"\r\n\r\n")
                assert produced.startswith(body), (
                    "attempt %d: %d bytes: %d a, %d x, %d y" % (
                        attempt, len(body), body.count(b"a"), body.count(b"x"),
                        body.count(b"y")))
        finally:
            sys.setswitchinterval(old)
        assert wait_for(lambda: client.server.debug_state()["fd_holders"] == 0)
