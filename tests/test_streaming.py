"""The streaming engine over real loopback sockets: producers, framing, back-pressure,
disconnects, the connection registry, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import threading
import time

import aiohttp
import h11
import pytest
from _served import (
    dechunk,
    errors,
    get,
    read_to_eof,
    read_until,
    request,
    split_response,
    sse_hub_app,
)
from conftest import RawClient, header, wait_for

from catzilla import Broadcast, Catzilla, Response, StreamingResponse
from catzilla.testing import TestClient


def read_stream_events(c: RawClient, method="GET"):
    """h11 events of one response until EndOfMessage or the connection ends."""
    if c.conn.our_state is h11.DONE and c.conn.their_state is h11.DONE:
        c.conn.start_next_cycle()
    c.conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
    c.conn.send(h11.EndOfMessage())
    events = []
    while True:
        try:
            ev = c.conn.next_event()
        except h11.RemoteProtocolError as exc:
            events.append(exc)
            return events
        if ev is h11.NEED_DATA:
            c.conn.receive_data(c.sock.recv(65536))
            continue
        events.append(ev)
        if isinstance(ev, (h11.EndOfMessage, h11.ConnectionClosed)):
            return events


# -- producers and framing ------------------------------------------------------------------

def test_every_kind_of_producer_and_chunk():
    app = Catzilla()

    def gen():
        yield "str-é,"
        yield b"bytes,"
        yield bytearray(b"bytearray,")
        yield memoryview(b"memoryview")

    async def agen():
        for i in range(3):
            await asyncio.sleep(0)
            yield "a%d" % i

    class AsyncIter:
        def __init__(self):
            self.i = 0

        def __aiter__(self):
            return self

        async def __anext__(self):
            self.i += 1
            if self.i > 2:
                raise StopAsyncIteration
            return b"i%d" % self.i

    routes = {
        "/gen": lambda r: StreamingResponse(gen()),
        "/iter": lambda r: StreamingResponse(iter([b"x", b"y"])),
        "/list": lambda r: StreamingResponse(["l1", "l2"]),
        "/callable": lambda r: StreamingResponse(gen),
        "/agen": lambda r: StreamingResponse(agen()),
        "/aiter": lambda r: StreamingResponse(AsyncIter()),
        "/media": lambda r: StreamingResponse(["{}"], media_type="application/x-ndjson"),
    }
    for path, handler in routes.items():
        app.add_route(path, handler)

    with TestClient(app) as client:
        expected = {
            "/gen": "str-é,bytes,bytearray,memoryview",
            "/iter": "xy",
            "/list": "l1l2",
            "/callable": "str-é,bytes,bytearray,memoryview",
            "/agen": "a0a1a2",
            "/aiter": "i1i2",
            "/media": "{}",
        }
        for path, body in expected.items():
            r = client.get(path)
            assert r.status == 200, path
            assert r.text == body, path
            assert r.headers["Transfer-Encoding"] == "chunked", path
        assert client.get("/gen").headers["Content-Type"] == "text/plain; charset=utf-8"
        assert client.get("/media").headers["Content-Type"] == "application/x-ndjson"


def test_chunked_framing_keep_alive_and_user_headers():
    app = Catzilla()

    @app.get("/s")
    def s(request):
        return StreamingResponse((b"%d," % i for i in range(50)), content_type="text/plain",
                                 headers={"X-A": "1", "Cache-Control": "no-cache"})

    @app.get("/te")
    def te(request):
        # the guide's large-dataset example sets this header itself
        return StreamingResponse(iter(["a", "b"]), headers={"Transfer-Encoding": "chunked"})

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert body == b"".join(b"%d," % i for i in range(50))
        assert header(resp, "x-a") == "1" and header(resp, "cache-control") == "no-cache"
        # same connection, next response: keep-alive survives a stream
        c.send(b"GET /te HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert body == b"ab"
        assert [k for k, _ in resp.headers].count(b"transfer-encoding") == 1


def test_content_length_stream_sends_exact_bytes_without_chunking():
    app = Catzilla()

    @app.get("/exact")
    def exact(request):
        return StreamingResponse(iter([b"abc", b"def"]), headers={"Content-Length": "6"})

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /exact HTTP/1.1\r\nHost: t\r\n\r\nGET /exact HTTP/1.1\r\nHost: t\r\n\r\n")
        for _ in range(2):
            resp, body = c.response()
            assert body == b"abcdef" and header(resp, "transfer-encoding") is None


@pytest.mark.parametrize("chunks", [[b"abc"], [b"abc", b"defg"]], ids=["fewer", "more"])
def test_content_length_mismatch_aborts_the_connection(chunks, caplog):
    app = Catzilla()

    @app.get("/bad")
    def bad(request):
        return StreamingResponse(iter(chunks), headers={"Content-Length": "6"})

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /bad HTTP/1.1\r\nHost: t\r\n\r\n")
        events = read_stream_events(c)
        assert not any(isinstance(e, h11.EndOfMessage) for e in events)
        data = b"".join(bytes(e.data) for e in events if isinstance(e, h11.Data))
        assert len(data) <= 6
    assert any("Content-Length" in r.getMessage() or "Content-Length" in str(r.exc_info)
               for r in caplog.records)


def test_http10_client_gets_a_close_delimited_body():
    app = Catzilla()

    @app.get("/s")
    def s(request):
        return StreamingResponse(iter(["one,", "two"]), headers={"Transfer-Encoding": "chunked"})

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /s HTTP/1.0\r\n\r\n")
        data = c.read_until_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"transfer-encoding" not in head.lower()
    assert b"Connection: close" in head
    assert body == b"one,two"


def test_exception_mid_stream_truncates_and_never_writes_a_second_status(caplog):
    app = Catzilla()

    def broken():
        yield "first,"
        raise RuntimeError("producer broke")

    async def abroken():
        yield "first,"
        raise RuntimeError("async producer broke")

    app.add_route("/sync", lambda r: StreamingResponse(broken()))
    app.add_route("/async", lambda r: StreamingResponse(abroken()))
    app.add_route("/ok", lambda r: Response("ok"))

    with TestClient(app) as client:
        for path in ("/sync", "/async"):
            with RawClient(client.port) as c:
                c.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
                raw = b""
                while True:
                    chunk = c.sock.recv(65536)
                    if not chunk:
                        break
                    raw += chunk
            assert raw.count(b"HTTP/1.1") == 1, raw
            assert b"first," in raw
            assert not raw.endswith(b"0\r\n\r\n"), "a truncated stream must not be terminated"
        # the server keeps serving
        assert client.get("/ok").text == "ok"
    messages = " ".join(str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert "producer broke" in messages and "async producer broke" in messages


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_bad_stream_header_gets_a_clean_500_and_the_producer_never_runs(kind, caplog):
    """The head is checked before the producer starts: nothing of the body may follow the 500
    (it used to, from a producer thread that was already running)."""
    app = Catzilla()
    started = []

    def gen():
        started.append(kind)
        yield b"body"

    async def agen():
        started.append(kind)
        yield b"body"

    app.add_route("/s", lambda r: StreamingResponse(
        gen() if kind == "sync" else agen(), headers={"X-Bad": "a\r\nb"}))
    app.add_route("/ok", lambda r: Response("ok"))
    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert resp.status_code == 500
        assert body == b'{"detail":"Internal Server Error"}'
        c.send(b"GET /ok HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response()[1] == b"ok"
        assert app.connections.stats()["streams_active"] == 0
    assert started == []
    assert any("CR, LF or NUL" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)


def test_head_on_a_streaming_route_closes_the_producer_without_iterating():
    app = Catzilla()
    state = {"started": False, "closed": threading.Event()}

    def gen():
        state["started"] = True
        try:
            yield "body"
        finally:
            state["closed"].set()

    @app.get("/s")
    def s(request):
        return StreamingResponse(gen())

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"HEAD /s HTTP/1.1\r\nHost: t\r\n\r\nGET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response("HEAD")
        assert resp.status_code == 200 and body == b""
        assert c.response()[1] == b"body"


# -- the loop never waits for a producer -----------------------------------------------------

def test_plain_request_is_answered_while_200_sync_streams_block():
    app = Catzilla()
    release = threading.Event()
    first_chunks = threading.Semaphore(0)
    second_chunks = []

    def gen(i):
        yield "first %d\n" % i
        first_chunks.release()
        release.wait(30)        # blocks its worker thread, as time.sleep would
        second_chunks.append(i)
        yield "second %d\n" % i

    @app.get("/stream/{i:int}")
    def stream(request):
        return StreamingResponse(gen(request.path_params["i"]))

    @app.get("/plain")
    def plain(request):
        return Response("plain")

    with TestClient(app) as client:

        async def scenario():
            responses = [await client.session.get(client.url("/stream/%d" % i))
                         for i in range(200)]
            for r in responses:
                assert (await r.content.readline()).startswith(b"first")
            t0 = time.monotonic()
            plain = await client.arequest("GET", "/plain")
            latency = time.monotonic() - t0
            produced_second = len(second_chunks)
            release.set()
            rest = [await r.content.read() for r in responses]
            for r in responses:
                r.release()
            return plain, latency, produced_second, rest

        plain, latency, produced_second, rest = client.run(scenario())
        assert plain.text == "plain"
        assert produced_second == 0, "the plain request waited for a stream"
        assert latency < 1.0
        assert all(body.startswith(b"second") for body in rest)
        assert client.server.stream_pool.busy <= 200


def test_stream_thread_cap_answers_503_with_retry_after():
    app = Catzilla(max_stream_threads=2)
    release = threading.Event()
    started = threading.Semaphore(0)

    def gen():
        yield "x"
        started.release()
        release.wait(30)

    app.add_route("/s", lambda r: StreamingResponse(gen()))

    with TestClient(app) as client:

        async def scenario():
            held = [await client.session.get(client.url("/s")) for _ in range(2)]
            for _ in range(2):
                await asyncio.get_running_loop().run_in_executor(None, started.acquire)
            third = await client.arequest("GET", "/s")
            release.set()
            for r in held:
                await r.read()
                r.release()
            after = await client.arequest("GET", "/s")
            return third, after

        try:
            third, after = client.run(scenario())
        finally:
            release.set()
        assert third.status == 503 and third.headers["Retry-After"] == "1"
        assert after.status == 200 and after.text == "x"


# -- disconnects -------------------------------------------------------------------------

def broadcast_app():
    """The guide's broadcast pattern: a per-connection queue polled with a 1 s time-out,
    removed in the generator's finally."""
    app = Catzilla()
    queues: dict[str, queue.Queue] = {}
    finalized = threading.Event()
    lock = threading.Lock()

    def stream_broadcasts(cid):
        q: queue.Queue = queue.Queue(maxsize=100)
        with lock:
            queues[cid] = q
        try:
            while True:
                try:
                    yield "data: %s\n\n" % q.get(timeout=1.0)
                except queue.Empty:
                    yield 'data: {"type": "heartbeat"}\n\n'
        finally:
            with lock:
                queues.pop(cid, None)
            finalized.set()

    @app.get("/broadcast-stream")
    def join(request):
        return StreamingResponse(stream_broadcasts(str(request.connection_id)),
                                 content_type="text/event-stream")

    return app, queues, finalized


def test_disconnect_runs_finally_before_next_heartbeat_and_leaves_registry():
    app, queues, finalized = broadcast_app()
    with TestClient(app) as client:
        s = socket.create_connection(("127.0.0.1", client.port))
        s.sendall(b"GET /broadcast-stream HTTP/1.1\r\nHost: t\r\n\r\n")
        assert wait_for(lambda: len(queues) == 1)
        next(iter(queues.values())).put("hello")
        data = b""
        while b"hello" not in data:
            data += s.recv(4096)
        assert len(app.connections) == 1
        conn = next(iter(app.connections))
        assert conn.stream_kind == "sync" and conn.path == "/broadcast-stream"
        t0 = time.monotonic()
        s.close()
        # the registry forgets it at once (read EOF), not at the next heartbeat
        assert wait_for(lambda: len(app.connections) == 0, timeout=0.5)
        # the generator is closed at its next yield: within the 1 s heartbeat time-out
        assert finalized.wait(1.5)
        assert time.monotonic() - t0 < 1.5
        assert queues == {}
        assert conn.closed


def test_async_producer_and_async_handler_are_cancelled_on_disconnect():
    app = Catzilla()
    events = {"agen_closed": threading.Event(), "handler_cancelled": threading.Event()}

    async def agen():
        try:
            yield "tick\n"
            await asyncio.sleep(60)
            yield "never"
        finally:
            events["agen_closed"].set()

    @app.get("/agen")
    def a(request):
        return StreamingResponse(agen())

    @app.get("/slow")
    async def slow(request):
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            events["handler_cancelled"].set()
            raise
        return "never"

    with TestClient(app) as client:
        for path, key in (("/agen", "agen_closed"), ("/slow", "handler_cancelled")):
            s = socket.create_connection(("127.0.0.1", client.port))
            s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
            if path == "/agen":
                data = b""
                while b"tick" not in data:
                    data += s.recv(4096)
            else:
                assert wait_for(lambda: len(app.connections) == 1)
            s.close()
            assert events[key].wait(2), key


def test_is_disconnected_and_connection_close_from_the_registry():
    app = Catzilla()
    seen = {}
    finished = threading.Event()

    def gen(request):
        try:
            i = 0
            while not request.is_disconnected():
                yield "%d\n" % i
                i += 1
                time.sleep(0.01)
            seen["noticed"] = True
        finally:
            finished.set()

    @app.get("/poll")
    def poll(request):
        seen["id"] = request.connection_id
        return StreamingResponse(gen(request))

    with TestClient(app) as client:

        async def scenario():
            r = await client.session.get(client.url("/poll"))
            await r.content.readline()
            conn = app.connections[seen["id"]]
            assert conn.client.host == "127.0.0.1" and conn.bytes_sent > 0
            assert conn.connected_at <= time.time()
            stats = app.connections.stats()
            assert stats["streams_active"] == 1 and stats["active"] == 1
            client.call_in_server(conn.close)
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.content.read()
            r.release()

        client.run(scenario())
        assert finished.wait(2)
        assert seen["id"] not in app.connections
        assert app.connections.stats()["streams_active"] == 0


def test_thousands_of_abandoned_streams_leave_nothing_behind():
    """10,000 streams opened and abandoned, 500 at a time: threads, fds and registry
    entries return to their baseline."""
    app = Catzilla(stream_thread_idle_timeout=0.2)
    closed = []

    def gen():
        try:
            while True:
                yield "data: x\n\n"
                time.sleep(0.05)
        finally:
            closed.append(1)

    app.add_route("/s", lambda r: StreamingResponse(gen(), content_type="text/event-stream"))
    import os

    def fd_count():
        return len(os.listdir("/proc/self/fd"))

    with TestClient(app) as client:
        base_threads = threading.active_count()
        base_fds = fd_count()

        async def wave(n):
            conns = []
            for _ in range(n):
                reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
                writer.write(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                conns.append((reader, writer))
            for reader, _ in conns:
                assert b"data: x" in await reader.readuntil(b"data: x")
            for _, writer in conns:
                writer.transport.abort()

        for _ in range(20):
            client.run(wave(500))
        assert wait_for(lambda: len(closed) == 10_000, timeout=30)
        assert wait_for(lambda: len(app.connections) == 0, timeout=10)
        assert wait_for(lambda: threading.active_count() <= base_threads, timeout=10)
        assert wait_for(lambda: fd_count() <= base_fds, timeout=10)
        assert app.connections.stats()["total_streams"] == 10_000
        assert app.connections.stats()["streams_active"] == 0


# -- back-pressure -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["sync", "async"])
def test_producer_waits_while_the_client_does_not_read(kind):
    app = Catzilla(write_high_water=256 * 1024, write_low_water=64 * 1024)
    produced = [0]
    chunk = b"z" * 65536
    total = 64 * 1024 * 1024

    def gen():
        for _ in range(total // len(chunk)):
            produced[0] += len(chunk)
            yield chunk

    async def agen():
        for _ in range(total // len(chunk)):
            produced[0] += len(chunk)
            yield chunk

    app.add_route("/s", lambda r: StreamingResponse(gen() if kind == "sync" else agen()))

    with TestClient(app) as client:
        s = socket.create_connection(("127.0.0.1", client.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.sendall(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        s.recv(1024)
        # not reading: production must stop at about high water + kernel socket buffers
        last = -1
        while last != produced[0]:
            last = produced[0]
            wait_for(lambda last=last: produced[0] != last, timeout=0.3)
        assert produced[0] < 16 * 1024 * 1024, produced[0]
        stalled_at = produced[0]
        received = 0
        s.settimeout(10)
        while True:
            data = s.recv(1 << 20)
            if not data:
                break
            received += len(data)
            if data.endswith(b"0\r\n\r\n"):
                break
        s.close()
        assert produced[0] == total > stalled_at
        assert received > total


# -- graceful stop -----------------------------------------------------------------------

def test_graceful_stop_closes_producers_and_connections():
    app = Catzilla(shutdown_timeout=3)
    finalized = threading.Semaphore(0)

    def gen():
        try:
            while True:
                yield "tick\n"
                time.sleep(0.02)
        finally:
            finalized.release()

    async def agen():
        try:
            while True:
                yield "atick\n"
                await asyncio.sleep(0.02)
        finally:
            finalized.release()

    app.add_route("/s", lambda r: StreamingResponse(gen(), stop_on_shutdown=True))
    app.add_route("/a", lambda r: StreamingResponse(agen(), stop_on_shutdown=True))

    client = TestClient(app).__enter__()
    try:
        socks = []
        for path in (b"/s", b"/a", b"/s"):
            s = socket.create_connection(("127.0.0.1", client.port))
            s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n\r\n")
            data = b""
            while b"tick" not in data:
                data += s.recv(4096)
            socks.append(s)
        t0 = time.monotonic()
    finally:
        client.close()  # app.shutdown(): stop accepting, close producers, close connections
    assert time.monotonic() - t0 < 3
    for _ in range(3):
        assert finalized.acquire(timeout=0)
    for s in socks:
        s.settimeout(5)
        while s.recv(65536):
            pass
        s.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", client.port), timeout=2)


@pytest.mark.parametrize("framing", ["chunked", "length"])
def test_many_distinct_large_chunks_arrive_intact_under_back_pressure(framing):
    """Every chunk is a new object that the producer drops at once: the writer must keep
    each alive until the kernel has it (a use-after-free would corrupt the body)."""
    import hashlib
    import os as _os

    app = Catzilla()
    count, size = 600, 70_000
    expected = hashlib.sha256()
    seeds = [_os.urandom(32) for _ in range(count)]
    for seed in seeds:
        expected.update(hashlib.sha256(seed).digest() * (size // 32))

    def gen():
        for seed in seeds:
            yield hashlib.sha256(seed).digest() * (size // 32)

    headers = {"Content-Length": str(count * (size // 32) * 32)} if framing == "length" else {}
    app.add_route("/s", lambda r: StreamingResponse(gen(), headers=headers))
    with TestClient(app) as client:

        async def scenario():
            digest = hashlib.sha256()
            async with client.session.get(client.url("/s")) as r:
                first = await r.content.read(1000)       # then stall, so chunks pile up
                digest.update(first)
                await asyncio.sleep(0.3)
                async for block in r.content.iter_chunked(1 << 16):
                    digest.update(block)
            return digest.hexdigest()

        assert client.run(scenario()) == expected.hexdigest()


# -- str chunks and their charset -------------------------------------------------------------

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


# -- Content-Length overrun -------------------------------------------------------------------

@pytest.mark.parametrize("kind,first,over", [
    ("sync", b"abcd", b"efgh"),
    ("sync", b"a" * 40_000, b"b" * 40_000),     # written by the producer thread itself
    ("async", b"abcd", b"efgh"),
], ids=["sync-small", "sync-direct", "async"])
def test_an_overrun_stops_the_producer_at_the_chunk_that_overflows(kind, first, over, caplog):
    length = len(first) + len(over) // 2
    extra = []
    done = threading.Event()

    def gen():
        try:
            yield first
            yield over
            while True:
                extra.append(1)
                yield b"z"
        finally:
            done.set()

    async def agen():
        try:
            yield first
            yield over
            while True:
                extra.append(1)
                yield b"z"
        finally:
            done.set()

    app = Catzilla()
    app.add_route("/s", lambda r: StreamingResponse(
        gen() if kind == "sync" else agen(), headers={"Content-Length": str(length)}))
    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        head, _, body = c.read_until_closed().partition(b"\r\n\r\n")
        assert b"Content-Length: %d" % length in head
        # the chunks that fit whole, then the cut: the client sees a body cut short
        assert body == first
        assert done.wait(5)
        assert not extra, "the producer ran %d items past its overrun" % len(extra)
        assert wait_for(lambda: app.connections.stats()["streams_active"] == 0)
    assert any(r.exc_info and "Content-Length" in str(r.exc_info[1]) for r in caplog.records)


def test_an_overrun_producer_whose_clean_up_is_slow_is_cut_off_at_once(caplog):
    """The connection is cut (and the error logged) when the overflowing item is made, not
    after the producer's finally:, however long that takes."""
    release = threading.Event()
    done = threading.Event()

    def gen():
        try:
            yield b"abcd"
            yield b"efgh"
        finally:
            release.wait(10)
            done.set()

    app = Catzilla()
    app.add_route("/s", lambda r: StreamingResponse(gen(), headers={"Content-Length": "6"}))
    with caplog.at_level(logging.ERROR, logger="catzilla"), TestClient(app) as client:
        try:
            with RawClient(client.port, timeout=5) as c:
                c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
                head, _, body = c.read_until_closed().partition(b"\r\n\r\n")
                assert body == b"abcd"
                assert not done.is_set()
                assert any(r.exc_info and "Content-Length" in str(r.exc_info[1])
                           for r in caplog.records)
        finally:
            release.set()
        assert done.wait(5)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_an_error_closing_an_overrun_producer_is_logged(kind, caplog):
    def gen():
        try:
            yield b"abcd"
            yield b"efgh"
        finally:
            raise RuntimeError("clean-up failed")

    async def agen():
        try:
            yield b"abcd"
            yield b"efgh"
        finally:
            raise RuntimeError("clean-up failed")

    app = Catzilla()
    app.add_route("/s", lambda r: StreamingResponse(gen() if kind == "sync" else agen(),
                                                    headers={"Content-Length": "6"}))
    with caplog.at_level(logging.ERROR, logger="catzilla"), TestClient(app) as client:
        with RawClient(client.port, timeout=5) as c:
            c.send(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
            assert c.read_until_closed().endswith(b"\r\n\r\nabcd")
        assert wait_for(lambda: any(r.exc_info and "clean-up failed" in str(r.exc_info[1])
                                    for r in caplog.records))
    assert any(r.exc_info and "Content-Length" in str(r.exc_info[1]) for r in caplog.records)


# -- an exception once the head is out --------------------------------------------------------

class FailingReplayHub(Broadcast):
    def _replay(self, ch, last_event_id, upto):
        raise RuntimeError("replay failed")


@pytest.mark.parametrize("ping", [None, 30.0])
def test_an_exception_after_the_head_is_not_a_second_response(ping, caplog):
    """Whatever fails once the 200 head is out (here the hub's replay, inside the stream's
    start) cuts that response off like a failed producer: no 500 inside the body, no
    terminating chunk, the connection closes, the subscriber is not counted, no handle (the
    ping timer) is left behind; the server goes on serving."""
    hub = FailingReplayHub()
    hub.publish("news", "one")
    app = sse_hub_app(hub, ping=ping)
    with caplog.at_level(logging.ERROR, logger="catzilla"), TestClient(app) as client:
        s = request(client.port, "/sub/news", b"Last-Event-ID: 1\r\n")
        try:
            raw = read_to_eof(s, timeout=5)
        finally:
            s.close()
        head, body = split_response(raw)
        assert head.startswith(b"HTTP/1.1 200 ") and b"text/event-stream" in head
        assert raw.count(b"HTTP/1.1 ") == 1 and b"Internal Server Error" not in raw
        assert dechunk(body) == (b"", False)                  # cut off: no terminating chunk
        assert hub.subscribers("news") == 0
        assert wait_for(lambda: app.connections.stats()["streams_active"] == 0)
        assert wait_for(lambda: len(app.connections) == 0)
        assert client.get("/ok").text == "ok"
        # a subscriber without a Last-Event-ID (no replay) is served as usual
        s = request(client.port, "/sub/news")
        try:
            raw = read_until(s, b"\r\n\r\n")
            assert wait_for(lambda: hub.subscribers("news") == 1)
            hub.publish("news", "two")
            read_until(s, b"data: two", raw)
        finally:
            s.close()
        assert wait_for(lambda: hub.subscribers("news") == 0)
    assert any("Exception starting the stream of GET /sub/news" in r.getMessage()
               and r.exc_info and isinstance(r.exc_info[1], RuntimeError)
               for r in caplog.records)
