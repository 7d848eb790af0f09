"""EventSourceResponse over real sockets: headers, encoding, retry, pings, send_timeout,
Last-Event-ID, the 204 answer. (The hub's fan-out and resume: tests/test_broadcast.py.)"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

from catzilla import (
    Catzilla,
    EventSourceResponse,
    ServerSentEvent,
    stop_reconnecting,
)
from catzilla.testing import TestClient


def parse_events(raw: bytes) -> list[dict]:
    """Parse an event stream with httpx-sse's decoder (an SSE parser we did not write)."""
    from httpx_sse._decoders import SSEDecoder

    decoder = SSEDecoder()
    events = []
    for line in raw.decode("utf-8").splitlines():
        sse = decoder.decode(line)
        if sse is not None:
            events.append({"event": sse.event, "data": sse.data, "id": sse.id,
                           "retry": sse.retry})
    return events


def test_headers_encoding_and_retry():
    app = Catzilla()

    def gen():
        yield ServerSentEvent(data="line one\r\nline two", event="update", id=7)
        yield {"data": {"n": 1}, "id": "8"}
        yield "data: hand-formatted\n\n"
        yield b"data: bytes\n\n"

    async def agen():
        yield {"data": "async", "event": "a"}

    app.add_route("/s", lambda r: EventSourceResponse(gen(), retry=2500))
    app.add_route("/a", lambda r: EventSourceResponse(agen()))

    with TestClient(app) as client:
        r = client.get("/s")
        assert r.headers["Content-Type"] == "text/event-stream; charset=utf-8"
        assert r.headers["Cache-Control"] == "no-cache"
        assert r.headers["X-Accel-Buffering"] == "no"
        assert r.content.startswith(b"retry: 2500\n\n")
        events = parse_events(r.content)
        assert events[1:] == [
            {"event": "update", "data": "line one\nline two", "id": "7", "retry": None},
            {"event": "message", "data": '{"n":1}', "id": "8", "retry": None},
            {"event": "message", "data": "hand-formatted", "id": "8", "retry": None},
            {"event": "message", "data": "bytes", "id": "8", "retry": None},
        ]
        assert parse_events(client.get("/a").content) == [
            {"event": "a", "data": "async", "id": "", "retry": None}]


def test_ping_comment_after_silence_and_reset_by_writes():
    app = Catzilla()
    go = threading.Event()

    def slow():
        yield {"data": "first"}
        go.wait(10)
        yield {"data": "second"}

    app.add_route("/s", lambda r: EventSourceResponse(slow(), ping=0.25))

    with TestClient(app) as client:

        async def scenario():
            r = await client.session.get(client.url("/s"))
            first = await r.content.readuntil(b"\n\n")
            t0 = time.monotonic()
            ping = await r.content.readuntil(b"\n\n")
            waited = time.monotonic() - t0
            go.set()
            rest = await r.content.read()
            r.release()
            return first, ping, waited, rest

        first, ping, waited, rest = client.run(scenario())
        assert first == b"data: first\n\n"
        assert ping == b": ping\n\n"
        assert 0.15 <= waited < 2.0
        assert b"data: second\n\n" in rest


def test_pings_do_not_interrupt_a_busy_stream():
    app = Catzilla()

    def busy():
        for i in range(30):
            yield {"data": str(i)}
            time.sleep(0.02)     # always well inside the 0.2 s ping interval

    app.add_route("/s", lambda r: EventSourceResponse(busy(), ping=0.2))
    with TestClient(app) as client:
        body = client.get("/s").content
        assert b": ping" not in body
        assert [e["data"] for e in parse_events(body)] == [str(i) for i in range(30)]


def test_send_timeout_disconnects_a_client_that_does_not_read():
    app = Catzilla(write_high_water=64 * 1024, write_low_water=16 * 1024)
    closed = threading.Event()

    def firehose():
        try:
            while True:
                yield {"data": "x" * 4000}
        finally:
            closed.set()

    app.add_route("/s", lambda r: EventSourceResponse(firehose(), send_timeout=1.0))
    with TestClient(app) as client:
        s = socket.create_connection(("127.0.0.1", client.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        s.sendall(b"GET /s HTTP/1.1\r\nHost: t\r\n\r\n")
        t0 = time.monotonic()
        assert closed.wait(8), "the stalled client was not disconnected"
        assert time.monotonic() - t0 >= 0.9
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and len(app.connections):
            time.sleep(0.01)
        assert len(app.connections) == 0
        s.close()


def test_last_event_id_and_stop_reconnecting():
    app = Catzilla()

    @app.get("/events")
    def events(request):
        if request.last_event_id == "done":
            return stop_reconnecting()
        return EventSourceResponse([{"data": "resumed after %s" % request.last_event_id}])

    with TestClient(app) as client:
        r = client.get("/events", headers={"Last-Event-ID": "41"})
        assert parse_events(r.content)[0]["data"] == "resumed after 41"
        r = client.get("/events", headers={"Last-Event-ID": "done"})
        assert r.status == 204 and r.content == b""


def test_async_handler_returning_an_event_stream():
    app = Catzilla()

    @app.get("/s")
    async def s(request):
        await asyncio.sleep(0)

        async def gen():
            for i in range(3):
                yield ServerSentEvent(data=i, id=i)

        return EventSourceResponse(gen())

    with TestClient(app) as client:
        events = parse_events(client.get("/s").content)
        assert [(e["id"], e["data"]) for e in events] == [("0", "0"), ("1", "1"), ("2", "2")]
