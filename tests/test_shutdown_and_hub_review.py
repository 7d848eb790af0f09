"""Findings of the SSE/hub/shutdown review, over real loopback sockets.

- A Last-Event-ID that ``str.isdigit()`` accepts but ``int()`` refuses is an unknown id, and
  an exception raised once a stream's head is out never becomes a second response.
- A publish the encoder refuses uses up no id.
- ``app.connections`` may be read from a worker thread; ``close()`` from one is handed to
  the loop.
- Graceful shutdown (SIGTERM, SIGINT, ``app.stop()``): file and Content-Length responses in
  flight finish within the deadline, other streams (hub, SSE, chunked) are closed at once, also
  one that starts while the server drains, and an async producer's ``finally:`` may await
  (within the deadline; a second Ctrl+C stops waiting).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from conftest import wait_for

from catzilla import Broadcast, Catzilla, EventSourceResponse, StreamingResponse
from catzilla.testing import TestClient

REPO = Path(__file__).resolve().parent.parent


# -- helpers ----------------------------------------------------------------------------------

def request(port: int, path: str, headers: bytes = b"", rcvbuf: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)   # before connecting
    s.settimeout(10)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path.encode(), headers))
    return s


def read_until(s: socket.socket, needle: bytes, data: bytes = b"", timeout: float = 5.0) -> bytes:
    """Read until ``needle`` is in what was received; AssertionError at EOF or time-out."""
    deadline = time.monotonic() + timeout
    while needle not in data:
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError("no %r within %.1f s; got %r"
                                 % (needle, timeout, data[-300:])) from None
        if not chunk:
            raise AssertionError("the connection closed before %r; got %r" % (needle, data[-300:]))
        data += chunk
    return data


def read_to_eof(s: socket.socket, data: bytes = b"", timeout: float = 10.0) -> bytes:
    deadline = time.monotonic() + timeout
    while True:
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError("the connection was not closed within %.1f s" % timeout) from None
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def read_to_close(s: socket.socket, data: bytes = b"", timeout: float = 10.0
                  ) -> tuple[bytes, bool]:
    """Everything until the server closes, and whether it closed with a reset (not a FIN)."""
    deadline = time.monotonic() + timeout
    while True:
        s.settimeout(max(deadline - time.monotonic(), 0.01))
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            raise AssertionError("the connection was not closed within %.1f s" % timeout) from None
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, False
        data += chunk


def read_response(s: socket.socket) -> bytes:
    """The body of one Content-Length response on a keep-alive connection."""
    data = read_until(s, b"\r\n\r\n")
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        chunk = s.recv(65536)
        assert chunk, "the connection closed inside a response"
        body += chunk
    assert len(body) == length
    return body


def split_response(raw: bytes) -> tuple[bytes, bytes]:
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, raw[:300]
    return head, body


def dechunk(body: bytes) -> tuple[bytes, bool]:
    """The payload of the complete chunks of a chunked body, and whether it was terminated."""
    out = b""
    pos = 0
    while True:
        eol = body.find(b"\r\n", pos)
        if eol < 0:
            return out, False
        size = int(body[pos:eol], 16)
        if size == 0:
            return out, body[eol + 2:eol + 4] == b"\r\n"
        if len(body) < eol + 2 + size + 2:
            return out, False
        out += body[eol + 2:eol + 2 + size]
        assert body[eol + 2 + size:eol + 4 + size] == b"\r\n"
        pos = eol + 4 + size


def sse_events(payload: bytes) -> list[dict]:
    events = []
    for block in payload.decode("utf-8").split("\n\n"):
        fields: dict = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            fields[name] = fields[name] + "\n" + value if name in fields else value
        if fields:
            events.append(fields)
    return events


class Served:
    """A script that ends in ``app.listen(port=0, host="127.0.0.1")``, run as a process."""

    def __init__(self, script: str, *args: str) -> None:
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # the repository's catzilla, unless the caller's PYTHONPATH says otherwise
        env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(script), *args], stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("Catzilla listening on http://127.0.0.1:"):
            err = self.kill()
            raise AssertionError("the server did not start: %r\n%s" % (line, err))
        self.port = int(line.split(":")[2].split()[0])
        self.lines: list[str] = []

    def wait_line(self, text: str) -> None:
        """Read the server's output lines until one contains ``text`` (it must come)."""
        while True:
            line = self.proc.stdout.readline()
            assert line, "the server's output ended before %r: %r" % (text, self.lines)
            self.lines.append(line)
            if text in line:
                return

    def signal(self, sig: int = signal.SIGTERM) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def finish(self, timeout: float = 20.0) -> tuple[str, str]:
        """Wait for the exit (code 0); returns its stdout (all of it) and stderr."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("the server did not exit within %.0f s" % timeout) from None
        out = "".join(self.lines) + out
        assert self.proc.returncode == 0, (self.proc.returncode, out, err)
        return out, err

    def kill(self) -> str:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.communicate()[1] or ""


@contextlib.contextmanager
def served(script: str, *args: str):
    server = Served(script, *args)
    try:
        yield server
    finally:
        server.kill()


def assert_clean_exit(err: str) -> None:
    assert "Traceback" not in err, err
    assert "already running" not in err, err            # aclose() of a running generator
    assert "Task was destroyed" not in err, err


# -- Last-Event-ID that isdigit() accepts and int() refuses (finding 1) ------------------------

def hub_app(hub: Broadcast, ping: float | None = None) -> Catzilla:
    app = Catzilla()

    @app.get("/sub/{channel}")
    def sub(request):
        return EventSourceResponse(
            hub.subscribe(request.path_params["channel"], request.last_event_id), ping=ping)

    @app.get("/ok")
    def ok(request):
        return "ok"

    return app


def test_an_id_is_a_number_only_in_ascii_digits_of_a_sane_length():
    hub = Broadcast()
    hub.publish("c", "one")
    hub.publish("c", "two")
    ch = hub._channels["c"]
    for bad in ("\u00b2", "\u00b9\u00b2", "\u0661", "9" * 4400, "9" * 21):
        notice, *rest = hub._replay(ch, bad, ch.seq)
        assert notice.startswith(b"event: lost\n")
        assert json.loads(notice.split(b"data: ", 1)[1]) == {
            "lost": None, "last_event_id": bad, "resumed_from": "1"}
        assert rest == [p for _, _, p in ch.history]
    assert hub._replay(ch, "1", ch.seq) == [ch.history[1][2]]
    assert hub._replay(ch, "01", ch.seq) == [ch.history[1][2]]      # a number, not in history
    # an explicit id of that kind is not a number either: the automatic ids go on from 3
    assert hub.publish("c", "x", id="\u00b2") == 0
    assert hub.publish("c", "y", id="9" * 4400) == 0
    hub.publish("c", "z")
    assert [i for _, i, _ in ch.history][-1] == "3"
    assert hub._replay(ch, "\u00b2", ch.seq) == [ch.history[-2][2], ch.history[-1][2]]


@pytest.mark.parametrize("last_id", [b"9" * 4400, b"\xb2", b"\xb9"],
                         ids=["4400-ascii-digits", "superscript-two", "superscript-one"])
def test_a_last_event_id_that_int_refuses_is_an_unknown_id(last_id):
    hub = Broadcast()
    hub.publish("news", "one")
    hub.publish("news", "two")
    app = hub_app(hub)
    with TestClient(app) as client:
        s = request(client.port, "/sub/news", b"Last-Event-ID: " + last_id + b"\r\n")
        try:
            raw = read_until(s, b"data: two")
            assert wait_for(lambda: hub.subscribers("news") == 1)
            hub.publish("news", "three")                 # the stream goes on, live
            raw = read_until(s, b"data: three\n\n\r\n", raw)   # the whole chunk: parsed
            head, body = split_response(raw)
            assert raw.count(b"HTTP/1.1 ") == 1 and head.startswith(b"HTTP/1.1 200 ")
            events = sse_events(dechunk(body)[0])
            assert events[0]["event"] == "lost"
            assert json.loads(events[0]["data"]) == {
                "lost": None, "last_event_id": last_id.decode("latin-1"), "resumed_from": "1"}
            assert [(e.get("id"), e["data"]) for e in events[1:]] == [
                ("1", "one"), ("2", "two"), ("3", "three")]
        finally:
            s.close()
        assert wait_for(lambda: hub.subscribers("news") == 0)
        assert wait_for(lambda: app.connections.stats()["streams_active"] == 0)


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
    app = hub_app(hub, ping=ping)
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


# -- a refused publish uses up no id (finding 7) ----------------------------------------------

def test_a_refused_publish_uses_up_no_id_and_makes_no_channel():
    hub = Broadcast(history=1)
    hub.publish("c", "first")
    refused = [
        dict(data={"price": float("nan")}),
        dict(data=object()),
        dict(data="x", event="a\nb"),
        dict(data="x", event=3),
        dict(data="x", id="a\nb"),
    ]
    for kw in refused:
        with pytest.raises((ValueError, TypeError)):
            hub.publish("c", **kw)
        with pytest.raises((ValueError, TypeError)):
            hub.publish("fresh", **kw)
    assert "fresh" not in hub.channels()
    assert hub.stats()["c"].published == 1 and hub.stats()["c"].last_id == 1
    hub.publish("c", "second", event="e")
    hub.publish("c", None)                               # an event with only its id
    ch = hub._channels["c"]
    assert [i for _, i, _ in ch.history] == ["3"]
    assert ch.history[0][2] == b"id: 3\n\n"
    hub2 = Broadcast()
    hub2.publish("c", "second", event="e")
    assert hub2._channels["c"].history[0][2] == b"event: e\nid: 1\ndata: second\n\n"


def test_a_client_resuming_across_a_refused_publish_is_not_told_of_a_loss():
    hub = Broadcast(history=1)
    app = hub_app(hub)
    hub.publish("news", "first")                         # the client saw this one
    with pytest.raises(ValueError):
        hub.publish("news", {"price": float("nan")})
    hub.publish("news", "second")
    with TestClient(app) as client:
        s = request(client.port, "/sub/news", b"Last-Event-ID: 1\r\n")
        try:
            raw = read_until(s, b"data: second")
            assert wait_for(lambda: hub.subscribers("news") == 1)
            hub.publish("news", "third")
            raw = read_until(s, b"data: third\n\n\r\n", raw)   # the whole chunk: parsed
        finally:
            s.close()
        events = sse_events(dechunk(split_response(raw)[1])[0])
        assert [(e.get("event"), e.get("id"), e["data"]) for e in events] == [
            (None, "2", "second"), (None, "3", "third")]
        assert wait_for(lambda: hub.subscribers("news") == 0)


# -- the registry from other threads (finding 5) ----------------------------------------------

def test_the_registry_can_be_read_from_a_producer_thread_while_connections_come_and_go():
    app = Catzilla()
    errors: list[str] = []
    rounds = [0]
    stop = threading.Event()

    @app.get("/status")
    def status(request):
        def gen():
            while not stop.is_set():
                try:
                    ids = [c.id for c in app.connections]
                    stats = app.connections.stats()
                    n = len(app.connections)
                    known = sum(1 for i in ids if i in app.connections)
                except Exception as exc:   # noqa: BLE001 - what the test looks for
                    errors.append(repr(exc))
                    raise
                rounds[0] += 1
                if rounds[0] % 200 == 0:
                    yield "%d %d %d %d\n" % (len(ids), stats["active"], n, known)
        return StreamingResponse(gen())

    @app.get("/x")
    def x(request):
        return "x"

    with TestClient(app) as client:
        # many idle connections, so the servers' dict is big and takes long to walk
        idle = [socket.create_connection(("127.0.0.1", client.port)) for _ in range(200)]
        watcher = request(client.port, "/status")
        churned = 0
        try:
            read_until(watcher, b"\n")
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline and not errors:
                with socket.create_connection(("127.0.0.1", client.port), timeout=5) as s:
                    s.sendall(b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    read_to_eof(s)
                churned += 1
        finally:
            stop.set()
            for s in idle:
                s.close()
            watcher.close()
        assert wait_for(lambda: app.connections.stats()["streams_active"] == 0)
    assert not errors, errors[:3]
    assert churned > 10 and rounds[0] > 200


def test_close_from_another_thread_is_handed_to_the_loop():
    app = Catzilla()
    entered = threading.Event()
    release = threading.Event()

    @app.get("/id")
    def conn_id(request):
        return {"id": request.connection_id}

    @app.get("/block")
    def block(request):      # a sync handler: the loop thread waits in it
        entered.set()
        release.wait(10)
        return "released"

    with TestClient(app) as client:
        a = request(client.port, "/id")
        b = None
        try:
            raw = read_until(a, b"}")
            a_id = json.loads(split_response(raw)[1])["id"]
            conn = app.connections[a_id]
            b = request(client.port, "/block")
            assert entered.wait(5)
            conn.close()          # from this thread, while the loop is busy: handed over
            assert not conn.closed
            release.set()
            assert wait_for(lambda: conn.closed)
            assert read_to_eof(a, timeout=5) == b""                 # a's connection closed
            assert a_id not in app.connections
            assert b"released" in read_until(b, b"released")
            conn.close()                                            # closed: nothing to do
        finally:
            release.set()
            a.close()
            if b is not None:
                b.close()


# -- graceful shutdown: async producers' finally: (finding 3) ----------------------------------

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


# -- graceful shutdown: finite streams finish, endless ones close at once (findings 4, 6) ------

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
