"""The in-process broadcast hub over real loopback sockets: fan-out, ids, resume, slow
subscribers, disconnects, pings and send timeouts."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time

import pytest
from _served import dechunk, read_until, request, split_response, sse_events, sse_hub_app
from conftest import wait_for

from catzilla import Broadcast, Catzilla, EventSourceResponse, JSONResponse
from catzilla.hub import RedisBroadcast
from catzilla.testing import TestClient


async def until(predicate, timeout=5.0):
    """``wait_for`` for coroutines on the client loop."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


class SSE:
    """Reads Server-Sent Events blocks from an aiohttp response."""

    def __init__(self, resp):
        self.resp = resp

    async def block(self, timeout=5.0) -> dict:
        """The next block: {"id", "event", "data", "comment"} (absent fields are None)."""
        fields: dict = {"id": None, "event": None, "data": None, "comment": None}
        while True:
            line = await asyncio.wait_for(self.resp.content.readline(), timeout)
            if not line:
                raise EOFError("the stream ended")
            line = line.decode("utf-8").rstrip("\n")
            if not line:
                if any(v is not None for v in fields.values()):
                    return fields
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                fields["comment"] = value
            elif name == "data" and fields["data"] is not None:
                fields["data"] += "\n" + value
            else:
                fields[name] = value

    async def event(self, timeout=5.0) -> dict:
        """The next event (pings and other comments skipped)."""
        while True:
            b = await self.block(timeout)
            if b["comment"] is None or b["data"] is not None or b["event"] is not None:
                return b


async def connect(client, path, headers=None) -> SSE:
    resp = await client.session.get(client.url(path), headers=headers or {})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    return SSE(resp)


def hub_app(hub, **app_kw):
    app = Catzilla(**app_kw)

    @app.get("/sub/{channel}")
    def sub(request):
        return EventSourceResponse(
            hub.subscribe(request.path_params["channel"], request.last_event_id),
            ping=float(request.query_params.get("ping", "30")),
            send_timeout=float(request.query_params["send_timeout"])
            if "send_timeout" in request.query_params else None)

    @app.get("/asub/{channel}")
    async def asub(request):
        await asyncio.sleep(0)
        return EventSourceResponse(hub.subscribe(request.path_params["channel"],
                                                 request.last_event_id), ping=None)

    @app.post("/pub/{channel}")
    def pub(request):
        return {"reached": hub.publish(request.path_params["channel"], request.text())}

    @app.post("/apub/{channel}")
    async def apub(request):
        await asyncio.sleep(0)
        return JSONResponse({"reached": hub.publish(request.path_params["channel"],
                                                    request.text(), event="a")})

    return app


def raw_subscriber(port, path, rcvbuf=4096) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path.encode())
    return s


# -- without sockets --------------------------------------------------------------------------

def test_ids_history_and_arguments_without_subscribers():
    hub = Broadcast(history=3)
    assert hub.publish("c", "one") == 0
    hub.publish("c", {"n": 2}, event="tick")
    hub.publish("c", "x", id=10)
    hub.publish("c", "y")
    hub.publish("other", "z")
    ch = hub._channels["c"]
    assert [i for _, i, _ in ch.history] == ["2", "10", "11"]      # the last 3
    assert ch.history[0][2] == b'event: tick\nid: 2\ndata: {"n":2}\n\n'
    stats = hub.stats()
    assert stats["c"].published == 4 and stats["c"].last_id == 11
    assert stats["other"].last_id == 1 and hub.channels() == ["c", "other"]
    with pytest.raises(ValueError):
        Broadcast(slow="block")
    with pytest.raises(ValueError):
        Broadcast(queue_size=0)
    with pytest.raises(ValueError):
        Broadcast("kafka://x")
    assert type(Broadcast("memory://")) is Broadcast
    redis_hub = Broadcast("redis://127.0.0.1:1/0", history=5)    # no connection until used
    assert isinstance(redis_hub, RedisBroadcast) and redis_hub.history == 5
    assert isinstance(Broadcast(url="redis://127.0.0.1:1"), RedisBroadcast)


# -- fan-out ----------------------------------------------------------------------------------

def test_200_subscribers_get_every_event_once_in_order():
    hub = Broadcast()
    app = hub_app(hub)
    n_subs, n_events = 200, 30
    with TestClient(app) as client:
        async def main():
            subs = await asyncio.gather(*(connect(client, "/sub/news") for _ in range(n_subs)))
            assert hub.subscribers("news") == n_subs
            kinds = [c.stream_kind for c in app.connections]
            assert kinds.count("hub") == n_subs

            def publisher():
                for i in range(n_events):
                    hub.publish("news", {"i": i})

            t = threading.Thread(target=publisher)
            t.start()

            async def read_all(s):
                return [await s.event() for _ in range(n_events)]

            try:
                got = await asyncio.gather(*(read_all(s) for s in subs))
            finally:
                t.join()
            for events in got:
                assert [e["id"] for e in events] == [str(i) for i in range(1, n_events + 1)]
                assert [json.loads(e["data"])["i"] for e in events] == list(range(n_events))
            # nothing more than that: the next thing each one gets is a new event
            hub.publish("news", "end")
            for s in subs:
                assert (await s.event())["data"] == "end"
            for s in subs:
                s.resp.close()

        client.run(main())
        assert wait_for(lambda: hub.subscribers("news") == 0)
        st = hub.stats()["news"]
        assert st.published == n_events + 1
        assert st.delivered == n_subs * (n_events + 1)
        assert st.dropped == st.disconnected == 0


def test_publish_from_a_thread_a_coroutine_and_handlers_of_both_kinds():
    hub = Broadcast()
    app = hub_app(hub)
    with TestClient(app) as client:
        async def main():
            a = await connect(client, "/sub/room")       # def handler
            b = await connect(client, "/asub/room")      # async def handler
            assert hub.subscribers("room") == 2
            # on the server loop the publish is written at once and the count is exact
            reached = client.call_in_server(hub.publish, "room", "from-loop")
            assert reached == 2
            # from another thread: handed to the loop; the count is of subscribers then
            box = []
            t = threading.Thread(target=lambda: box.append(hub.publish("room", "from-thread")))
            t.start()
            t.join()
            assert box == [2]
            async with client.session.post(client.url("/pub/room"), data="from-def") as r:
                assert (await r.json()) == {"reached": 2}
            async with client.session.post(client.url("/apub/room"), data="from-async") as r:
                assert (await r.json()) == {"reached": 2}
            for s in (a, b):
                events = [await s.event() for _ in range(4)]
                assert [e["data"] for e in events] == [
                    "from-loop", "from-thread", "from-def", "from-async"]
                assert [e["id"] for e in events] == ["1", "2", "3", "4"]
                assert events[3]["event"] == "a"
                s.resp.close()

        client.run(main())
        assert wait_for(lambda: hub.subscribers("room") == 0)


def test_subscribers_joining_while_a_thread_publishes_get_no_gap_and_no_duplicate():
    """A stream that joins with a Last-Event-ID while events are in flight to its loop gets
    the history up to what the loop has written, then the rest live: each id exactly once."""
    hub = Broadcast(history=5000)
    app = hub_app(hub)
    total, n_subs = 3000, 40
    with TestClient(app) as client:
        async def main():
            def publisher():
                for i in range(1, total + 1):
                    hub.publish("c", i)
                    if i % 25 == 0:
                        time.sleep(0.001)   # pacing only, so that joins land mid-stream

            t = threading.Thread(target=publisher)
            t.start()

            async def one(k):
                await asyncio.sleep(k * 0.002)
                s = await connect(client, "/sub/c", {"Last-Event-ID": "0"})
                buf = b""
                ids: list[int] = []
                while not ids or ids[-1] != total:
                    buf += await asyncio.wait_for(s.resp.content.readany(), 5)
                    *blocks, buf = buf.split(b"\n\n")
                    for block in blocks:
                        m = re.fullmatch(rb"id: (\d+)\ndata: (\d+)", block)
                        assert m and m.group(1) == m.group(2), block
                        ids.append(int(m.group(1)))
                s.resp.close()
                return ids

            try:
                got = await asyncio.gather(*(one(k) for k in range(n_subs)))
            finally:
                t.join()
            for ids in got:
                assert ids == list(range(1, total + 1))

        client.run(main())


# -- resume -----------------------------------------------------------------------------------

def test_resume_gets_exactly_what_was_missed():
    hub = Broadcast(history=100)
    app = hub_app(hub)
    with TestClient(app) as client:
        async def main():
            s = await connect(client, "/sub/r")
            for i in range(1, 4):
                hub.publish("r", "m%d" % i)
            seen = [await s.event() for _ in range(3)]
            last = seen[-1]["id"]
            assert last == "3"
            s.resp.close()
            assert await until(lambda: hub.subscribers("r") == 0)
            for i in range(4, 7):
                hub.publish("r", "m%d" % i)
            s = await connect(client, "/sub/r", {"Last-Event-ID": last})
            replay = [await s.event() for _ in range(3)]
            assert [(e["id"], e["data"]) for e in replay] == [("4", "m4"), ("5", "m5"),
                                                                ("6", "m6")]
            hub.publish("r", "m7")
            assert (await s.event())["id"] == "7"
            s.resp.close()
            # up to date: nothing is replayed, the next event is the next live one
            s = await connect(client, "/sub/r", {"Last-Event-ID": "7"})
            hub.publish("r", "m8")
            assert (await s.event())["id"] == "8"
            s.resp.close()

        client.run(main())


def test_resume_older_than_the_history_first_gets_an_explicit_lost_event():
    hub = Broadcast(history=5)
    app = hub_app(hub)
    for i in range(1, 11):
        hub.publish("h", "m%d" % i)
    with TestClient(app) as client:
        async def main():
            s = await connect(client, "/sub/h", {"Last-Event-ID": "2"})
            lost = await s.event()
            assert lost["event"] == "lost" and lost["id"] is None
            assert json.loads(lost["data"]) == {"lost": 3, "last_event_id": "2",
                                                "resumed_from": "6"}
            assert [(await s.event())["id"] for _ in range(5)] == ["6", "7", "8", "9", "10"]
            s.resp.close()
            # an id the hub never gave: it cannot know what was missed
            s = await connect(client, "/asub/h", {"Last-Event-ID": "not-ours"})
            lost = await s.event()
            assert lost["event"] == "lost"
            assert json.loads(lost["data"])["lost"] is None
            assert [(await s.event())["id"] for _ in range(5)] == ["6", "7", "8", "9", "10"]
            hub.publish("h", "m11")
            assert (await s.event())["id"] == "11"
            s.resp.close()

        client.run(main())


# -- slow subscribers -------------------------------------------------------------------------

@pytest.mark.parametrize("slow", ["drop_oldest", "disconnect"])
def test_a_subscriber_that_stops_reading(slow):
    hub = Broadcast(history=4, queue_size=8, slow=slow)
    app = hub_app(hub, write_high_water=16 * 1024, write_low_water=4 * 1024)
    big = "x" * 65536
    with TestClient(app) as client:
        async def main():
            fast = await connect(client, "/sub/s")
            raw = raw_subscriber(client.port, "/sub/s")
            assert await until(lambda: hub.subscribers("s") == 2)
            fast_ids: list[int] = []

            async def fast_reader():
                while True:
                    e = await fast.event(timeout=10)
                    fast_ids.append(int(e["id"]))
                    if e["data"] == "last":
                        return

            reader = asyncio.ensure_future(fast_reader())
            counter = "dropped" if slow == "drop_oldest" else "disconnected"
            published = 0
            deadline = time.monotonic() + 15
            while getattr(hub.stats()["s"], counter) == 0:
                assert time.monotonic() < deadline, hub.stats()["s"]
                hub.publish("s", big)
                published += 1
                await asyncio.sleep(0.002)        # let the fast reader keep up
            hub.publish("s", "last")
            published += 1
            await reader
            # the subscriber that reads gets everything, in order
            assert fast_ids == list(range(1, published + 1))
            return raw, published

        raw, published = client.run(main())
        stats = hub.stats()["s"]
        raw.settimeout(10)
        data = bytearray()
        try:
            if slow == "drop_oldest":
                assert stats.disconnected == 0 and stats.dropped > 0
                assert hub.subscribers("s") == 2
                while b"\ndata: last\n" not in data:
                    chunk = raw.recv(1 << 20)
                    assert chunk, "the slow subscriber was disconnected"
                    data += chunk
                ids = [int(i) for i in re.findall(rb"\nid: (\d+)\n", bytes(data))]
                assert ids == sorted(set(ids)), "events out of order or repeated"
                assert ids[-1] == published
                assert len(ids) < published            # it lost some, the oldest queued
            else:
                assert stats.disconnected == 1 and stats.dropped == 0
                assert wait_for(lambda: hub.subscribers("s") == 1)
                while True:                             # what was written, then EOF
                    chunk = raw.recv(1 << 20)
                    if not chunk:
                        break
                    data += chunk
                assert b"\ndata: last\n" not in data
        finally:
            raw.close()


def test_send_timeout_disconnects_a_client_that_does_not_read():
    hub = Broadcast(history=1, queue_size=100_000)
    app = hub_app(hub, write_high_water=16 * 1024, write_low_water=4 * 1024)
    big = "y" * 65536
    with TestClient(app) as client:
        raw = raw_subscriber(client.port, "/sub/t?send_timeout=0.5")
        try:
            assert wait_for(lambda: hub.subscribers("t") == 1)
            t0 = time.monotonic()
            while hub.subscribers("t"):
                assert time.monotonic() - t0 < 10, "send_timeout did not disconnect"
                hub.publish("t", big)
                time.sleep(0.01)
            stats = hub.stats()["t"]
            assert stats.dropped == stats.disconnected == 0   # not the slow policy
            assert wait_for(lambda: len(app.connections) == 0)
        finally:
            raw.close()


# -- disconnects and pings --------------------------------------------------------------------

def test_a_subscriber_that_disconnects_leaves_the_hub_at_once():
    hub = Broadcast()
    app = hub_app(hub)
    with TestClient(app) as client:
        raw = raw_subscriber(client.port, "/sub/d?ping=30", rcvbuf=65536)
        head = b""
        while b"\r\n" not in head:   # the status line, which may arrive in pieces
            chunk = raw.recv(4096)
            assert chunk, head
            head += chunk
        assert head.startswith(b"HTTP/1.1 200")
        assert wait_for(lambda: hub.subscribers("d") == 1)
        conn = next(iter(app.connections))
        assert conn.stream_kind == "hub" and conn.path == "/sub/d"
        t0 = time.monotonic()
        raw.close()
        # read EOF: gone long before the next ping (30 s)
        assert wait_for(lambda: hub.subscribers("d") == 0, timeout=1.0)
        assert wait_for(lambda: len(app.connections) == 0, timeout=1.0)
        assert time.monotonic() - t0 < 1.0
        assert hub.publish("d", "nobody") == 0


def test_pings_arrive_when_idle_and_are_pushed_back_by_events():
    hub = Broadcast()
    app = hub_app(hub)
    with TestClient(app) as client:
        async def main():
            s = await connect(client, "/sub/p?ping=0.2")
            t0 = time.monotonic()
            first = await s.block(timeout=2)
            assert first["comment"] == "ping" and first["data"] is None
            assert 0.1 < time.monotonic() - t0 < 1.5

            stop = threading.Event()

            def publisher():               # one event every 50 ms, a quarter of the ping time
                i = 0
                while not stop.is_set():
                    i += 1
                    hub.publish("p", i)
                    stop.wait(0.05)

            t = threading.Thread(target=publisher)
            t.start()
            blocks = []
            t_end = time.monotonic() + 0.8
            try:
                while time.monotonic() < t_end:
                    blocks.append(await s.block())
                    last_event = time.monotonic()
            finally:
                stop.set()
                t.join()
            assert len(blocks) >= 5
            assert all(b["comment"] is None for b in blocks), blocks
            # once events stop, the pings come back, a ping interval after the last write
            while True:
                b = await s.block(timeout=2)
                if b["comment"] is not None:
                    break
                last_event = time.monotonic()
            assert b["comment"] == "ping"
            assert time.monotonic() - last_event > 0.1
            s.resp.close()

        client.run(main())


# -- ids that are not numbers, and publishes the encoder refuses ------------------------------

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
    app = sse_hub_app(hub)
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
    app = sse_hub_app(hub)
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
