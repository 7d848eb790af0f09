"""Graceful shutdown of a server run as its own process (SIGTERM, SIGINT), over real loopback
sockets: downloads in flight (file, Content-Length, chunked) run to their end, or to the
deadline, which cuts them with a reset; SSE, hub and stop_on_shutdown streams are closed at
once, also one that starts while the server drains; bytes libuv still queues for a finished
response reach the client; an async producer's ``finally:`` may await (within the deadline; a
second signal stops waiting)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import threading
import time

import pytest
from _served import (
    assert_clean_exit,
    dechunk,
    read_response,
    read_to_close,
    read_to_eof,
    read_until,
    request,
    served,
    split_response,
)
from conftest import wait_for

# -- an async producer's finally: -------------------------------------------------------------

ASYNC_FINALLY = """
    import asyncio, sys
    from catzilla import Catzilla, EventSourceResponse
    app = Catzilla(shutdown_timeout=float(sys.argv[1]))

    @app.get("/a")
    def a(request):
        cleanup = float(request.query_params["cleanup"])

        async def gen():
            try:
                while True:
                    yield {"data": "tick"}
                    await asyncio.sleep(0.05)
            finally:
                print("finally started", flush=True)
                await asyncio.sleep(cleanup)                  # e.g. an async database call
                await app.broadcast.apublish("left", "x")
                await asyncio.sleep(0)
                print("finally DONE", flush=True)
        return EventSourceResponse(gen(), ping=None)

    app.listen(port=0, host="127.0.0.1")
    print("exited cleanly", flush=True)
"""


def test_shutdown_awaits_an_async_producers_finally():
    with served(ASYNC_FINALLY, "5") as server, contextlib.closing(
            request(server.port, "/a?cleanup=0.3")) as s:
        read_until(s, b"data: tick")
        t0 = server.signal(signal.SIGTERM)
        out, err = server.finish()
        elapsed = time.monotonic() - t0
        read_to_eof(s)
    assert "finally started" in out and "finally DONE" in out and "exited cleanly" in out
    assert_clean_exit(err)
    assert 0.3 <= elapsed < 3.0


def test_the_deadline_bounds_an_async_producers_finally():
    with served(ASYNC_FINALLY, "1") as server, contextlib.closing(
            request(server.port, "/a?cleanup=60")) as s:
        read_until(s, b"data: tick")
        t0 = server.signal(signal.SIGTERM)
        out, err = server.finish()
        elapsed = time.monotonic() - t0
    assert "finally started" in out and "finally DONE" not in out and "exited cleanly" in out
    assert "did not finish their clean-up within 1.0 s" in err
    assert_clean_exit(err)
    assert 0.9 <= elapsed < 3.0


def test_a_second_signal_stops_waiting_for_an_async_producers_finally():
    with served(ASYNC_FINALLY, "30") as server, contextlib.closing(
            request(server.port, "/a?cleanup=60")) as s:
        read_until(s, b"data: tick")
        server.signal(signal.SIGINT)
        server.wait_line("finally started")
        read_to_eof(s)                     # the stream was closed: the shutdown has begun
        t0 = server.signal(signal.SIGINT)  # the second: stop waiting for the clean-up
        out, err = server.finish()
        elapsed = time.monotonic() - t0
    assert "finally DONE" not in out and "exited cleanly" in out
    assert_clean_exit(err)
    assert elapsed < 2.5


# -- finite downloads finish, endless streams close at once -----------------------------------

SIZE = 12 << 20


MIXED = """
    import asyncio, sys, time
    from catzilla import Catzilla, EventSourceResponse, FileResponse, StreamingResponse
    app = Catzilla(shutdown_timeout=10.0)
    PATH, SIZE = sys.argv[1], int(sys.argv[2])

    @app.get("/file")
    def file(request):
        return FileResponse(PATH)

    @app.get("/gen")
    def gen(request):
        block = b"g" * 65536
        def blocks():
            try:
                for _ in range(SIZE // 65536):
                    yield block
            finally:
                print("gen finally", flush=True)
        return StreamingResponse(blocks(), headers={"Content-Length": str(SIZE)})

    @app.get("/cgen")
    def cgen(request):
        block = b"c" * 65536
        def blocks():
            for _ in range(SIZE // 65536):
                yield block
        return StreamingResponse(blocks())       # chunked: a finite download all the same

    @app.get("/agen")
    def agen(request):
        block = b"a" * 65536
        async def blocks():
            for _ in range(SIZE // 65536):
                yield block
        return StreamingResponse(blocks(), headers={"Content-Length": str(SIZE)})

    @app.get("/sse")
    def sse(request):
        async def events():
            try:
                while True:
                    yield {"data": "tick"}
                    await asyncio.sleep(0.05)
            finally:
                await asyncio.sleep(0.01)
                print("sse finally", flush=True)
        return EventSourceResponse(events(), ping=None)

    @app.get("/chunked")
    def chunked(request):
        def lines():
            try:
                while True:
                    yield "tick\\n"
                    time.sleep(0.05)
            finally:
                print("chunked finally", flush=True)
        return StreamingResponse(lines(), stop_on_shutdown=True)

    @app.get("/hub")
    def hub(request):
        return EventSourceResponse(app.broadcast.subscribe("news"), retry=1000, ping=None)

    app.listen(port=0, host="127.0.0.1")
    print("exited cleanly", flush=True)
"""


class SlowReader(threading.Thread):
    """Reads a download at a few MB/s until the server closes; keeps what it got."""

    def __init__(self, port: int, path: str) -> None:
        super().__init__(daemon=True)
        self.sock = request(port, path, rcvbuf=65536)
        self.data = b""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while True:
                self.sock.settimeout(20)
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self.data += chunk
                time.sleep(0.01)
        except BaseException as exc:   # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            self.sock.close()

    def body_size(self) -> int:
        return len(self.data.partition(b"\r\n\r\n")[2])


def test_shutdown_lets_finite_downloads_finish_and_closes_endless_streams_at_once(tmp_path):
    payload = os.urandom(SIZE)
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    downloads: dict[str, SlowReader] = {}
    endless: dict[str, socket.socket] = {}
    try:
        with served(MIXED, str(path), str(SIZE)) as server:
            downloads.update((p, SlowReader(server.port, p))
                             for p in ("/file", "/gen", "/cgen", "/agen"))
            for reader in downloads.values():
                reader.start()
            endless.update((p, request(server.port, p)) for p in ("/sse", "/chunked", "/hub"))
            got = {p: read_until(s, b"tick" if p != "/hub" else b"retry: 1000")
                   for p, s in endless.items()}
            assert wait_for(lambda: all(r.body_size() > 256 * 1024
                                        for r in downloads.values()))
            t0 = server.signal(signal.SIGTERM)
            at_signal = {p: r.body_size() for p, r in downloads.items()}
            for p, s in endless.items():
                got[p] = read_to_eof(s, got[p], timeout=5)
                closed_after = time.monotonic() - t0
                assert closed_after < 2.0, (p, closed_after)     # not at the 10 s deadline
                head, body = split_response(got[p])
                assert head.startswith(b"HTTP/1.1 200 ")
                assert dechunk(body)[1] is False                 # cut off: no terminating chunk
            for reader in downloads.values():
                reader.join(20)
            out, err = server.finish()
            elapsed = time.monotonic() - t0
    finally:
        for s in endless.values():
            s.close()
        for reader in downloads.values():
            reader.join(10)       # the server is gone: its socket is at EOF
    for p, reader in downloads.items():
        assert reader.error is None, (p, reader.error)
        assert at_signal[p] < SIZE // 2, (p, at_signal[p])  # it was in flight at SIGTERM
        head, body = split_response(reader.data)
        if p == "/cgen":
            assert b"Transfer-Encoding: chunked" in head, head
            body, complete = dechunk(body)
            assert complete, (p, len(body))           # its terminating chunk came too
        else:
            assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: %d" % SIZE in head
        assert len(body) == SIZE, (p, len(body))
        expected = {"/file": payload, "/gen": b"g" * SIZE, "/cgen": b"c" * SIZE,
                    "/agen": b"a" * SIZE}[p]
        assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest(), p
    assert "sse finally" in out and "chunked finally" in out and "gen finally" in out
    assert "exited cleanly" in out
    assert_clean_exit(err)
    assert elapsed < 9.0          # done when the downloads were, well before the deadline


# -- bytes libuv still queues -----------------------------------------------------------------

QUEUED = """
    import json, sys
    from catzilla import Catzilla, Response, StreamingResponse
    SIZE = int(sys.argv[1])
    app = Catzilla(shutdown_timeout=10.0, write_high_water=SIZE)   # produced without a wait

    @app.get("/download/{framing}")
    def download(request):
        def blocks():
            try:
                for _ in range(SIZE // 4096):
                    yield b"q" * 4096      # small chunks: the loop writes them, through libuv
            finally:
                print("produced", flush=True)
        if request.path_params["framing"] == "length":
            return StreamingResponse(blocks(), headers={"Content-Length": str(SIZE)})
        return StreamingResponse(blocks())

    @app.get("/state")
    def state(request):
        return Response(json.dumps(request.app.servers[0].debug_state()["conns"]))

    app.listen(port=0, host="127.0.0.1")
    print("exited cleanly", flush=True)
"""


@pytest.mark.parametrize("framing", ["length", "chunked"])
@pytest.mark.parametrize("connection", ["close", "keep-alive"])
def test_a_graceful_stop_sends_what_libuv_still_queues_for_a_finished_stream(framing,
                                                                              connection):
    # The stream is over (its producer is done; with Connection: close, the connection is in
    # its graceful close) but part of the body waits in libuv's write queue, behind a client
    # that reads nothing for now: the stop must let it out, not close the handle (uv_close
    # drops the queue: a clean FIN after a short body), and must not wait for the keep-alive
    # timeout either. Deterministic: the client starts reading once the shutdown has begun.
    size = 4 << 20      # more than the kernel takes for a client that does not read
    with served(QUEUED, str(size)) as server, contextlib.closing(
            request(server.port, "/download/" + framing, rcvbuf=4096,
                    headers=b"Connection: %s\r\n" % connection.encode())) as s:
        server.wait_line("produced")
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as probe:
            def queued() -> list[dict]:
                probe.sendall(b"GET /state HTTP/1.1\r\nHost: x\r\n\r\n")
                return [c for c in json.loads(read_response(probe))
                        if not c["busy"] and c["stream"] is None]   # (the probe's is busy)
            assert wait_for(lambda: queued()), "the download's response never ended"
            rows = queued()
        assert len(rows) == 1 and rows[0]["queued"] > 0 and not rows[0]["fin_sent"], rows
        assert rows[0]["lingering"] == (connection == "close")
        t0 = server.signal(signal.SIGTERM)
        raw, reset = read_to_close(s, timeout=10)
        out, err = server.finish()
        elapsed = time.monotonic() - t0
    head, body = split_response(raw)
    assert not reset
    if framing == "chunked":
        body, complete = dechunk(body)
        assert complete
    assert body == b"q" * size, len(body)
    assert elapsed < 4.0    # once the client had read it: not the 5 s keep-alive timeout
    assert "exited cleanly" in out
    assert_clean_exit(err)


# -- the deadline -----------------------------------------------------------------------------

SLOW_LENGTH = """
    import time
    from catzilla import Catzilla, StreamingResponse
    app = Catzilla(shutdown_timeout=1.0)

    @app.get("/slow")
    def slow(request):
        def blocks():
            for _ in range(100):
                yield b"x" * 1024
                time.sleep(0.05)               # 5 s in all: longer than the deadline
        return StreamingResponse(blocks(), headers={"Content-Length": str(100 * 1024)})

    @app.get("/endless")
    def endless(request):
        def blocks():
            while True:
                yield b"x" * 1024
                time.sleep(0.05)
        return StreamingResponse(blocks())    # chunked, and not stop_on_shutdown

    app.listen(port=0, host="127.0.0.1")
    print("exited cleanly", flush=True)
"""


@pytest.mark.parametrize("path", ["/slow", "/endless"])
def test_the_deadline_cuts_a_download_with_a_reset(path):
    with served(SLOW_LENGTH) as server, contextlib.closing(request(server.port, path)) as s:
        raw = read_until(s, b"x" * 1024)
        t0 = server.signal(signal.SIGTERM)
        raw, reset = read_to_close(s, raw, timeout=10)
        cut_after = time.monotonic() - t0
        out, err = server.finish()
        elapsed = time.monotonic() - t0
    head, body = split_response(raw)
    if path == "/slow":
        assert b"Content-Length: 102400" in head
        assert 1024 < len(body) < 100 * 1024              # it ran on, then it was cut off
    else:
        assert b"Transfer-Encoding: chunked" in head
        assert len(body) > 2 * 1024                       # it ran on after the signal
    assert reset          # not a FIN, after which a short body could pass for a whole one
    assert 0.8 <= cut_after < 2.5 and elapsed < 3.0
    assert "exited cleanly" in out
    assert_clean_exit(err)


# -- a stream that starts while the server drains ---------------------------------------------

LATE = """
    import asyncio, sys, time
    from catzilla import Catzilla, EventSourceResponse, StreamingResponse
    app = Catzilla(shutdown_timeout=10.0)
    SIZE = 1 << 20

    @app.get("/late/{kind}")
    async def late(request):
        kind = request.path_params["kind"]
        print("entered", kind, flush=True)
        await asyncio.sleep(1.0)                    # in flight when the SIGTERM comes
        if kind == "sse":
            async def events():
                while True:
                    yield {"data": "tick"}
                    await asyncio.sleep(0.05)
            return EventSourceResponse(events(), retry=500, ping=None)
        if kind == "hub":
            return EventSourceResponse(app.broadcast.subscribe("news"), retry=500, ping=None)
        if kind == "chunked":
            def lines():
                while True:
                    yield "tick\\n"
                    time.sleep(0.05)
            return StreamingResponse(lines(), stop_on_shutdown=True)
        if kind == "export":                        # a finite chunked download
            def rows():
                for i in range(16):
                    yield b"E" * (SIZE // 16)
                    time.sleep(0.05)
            return StreamingResponse(rows())
        def blocks():
            try:
                for _ in range(16):
                    yield b"L" * (SIZE // 16)
                    time.sleep(0.05)
            finally:
                print("length finally", flush=True)
        return StreamingResponse(blocks(), headers={"Content-Length": str(SIZE)})

    app.listen(port=0, host="127.0.0.1")
    print("exited cleanly", flush=True)
"""


def test_a_stream_that_starts_while_the_server_drains_gets_the_same_policy():
    kinds = ("sse", "hub", "chunked", "length", "export")
    socks: dict[str, socket.socket] = {}
    try:
        with served(LATE) as server:
            socks.update((k, request(server.port, "/late/" + k)) for k in kinds)
            for _ in kinds:
                server.wait_line("entered")
            t0 = server.signal(signal.SIGTERM)
            got = {}
            for k in ("sse", "hub", "chunked"):
                got[k] = read_to_eof(socks[k], timeout=8)
                closed_after = time.monotonic() - t0
                assert closed_after < 3.0, (k, closed_after)   # right after its start, not at 10 s
                head, body = split_response(got[k])
                assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in head, head
                assert dechunk(body)[1] is False               # cut off: no terminating chunk
            got["length"] = read_to_eof(socks["length"], timeout=8)
            got["export"] = read_to_eof(socks["export"], timeout=8)
            out, err = server.finish()
            elapsed = time.monotonic() - t0
    finally:
        for s in socks.values():
            s.close()
    head, body = split_response(got["length"])
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"L" * (1 << 20)
    head, body = split_response(got["export"])
    assert head.startswith(b"HTTP/1.1 200 ") and b"Transfer-Encoding: chunked" in head
    assert dechunk(body) == (b"E" * (1 << 20), True)
    assert b"retry: 500" in got["sse"] and b"retry: 500" in got["hub"]
    assert "length finally" in out and "exited cleanly" in out
    assert_clean_exit(err)
    assert elapsed < 5.0
