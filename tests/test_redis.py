"""The Redis hub (``Broadcast("redis://...")``) against a real redis-server that this module
starts on a free loopback port: publish and subscribe, Redis stream ids as SSE ids, resume and
lost events from the stream, joins during publishing, clean-up, and two processes."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import redis
from _redis import redis_server, redis_url  # noqa: F401  (fixtures)
from test_broadcast import connect, until, wait_for

from catzilla import Broadcast, Catzilla, EventSourceResponse
from catzilla.hub import RedisBroadcast
from catzilla.testing import TestClient

ROOT = Path(__file__).resolve().parents[1]


def redis_app(hub):
    app = Catzilla()

    @app.get("/sub/{channel}")
    def sub(request):
        return EventSourceResponse(
            hub.subscribe(request.path_params["channel"], request.last_event_id), ping=None)

    @app.get("/asub/{channel}")
    async def asub(request):
        await asyncio.sleep(0)
        return EventSourceResponse(
            hub.subscribe(request.path_params["channel"], request.last_event_id), ping=None)

    @app.post("/pub/{channel}")
    def pub(request):             # not in a coroutine: XADDed before the answer is sent
        return {"reached": hub.publish(request.path_params["channel"], request.text())}

    return app


@pytest.fixture
def r(redis_url):  # noqa: F811
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def channel(request):
    return "%s-%d" % (request.node.name, time.monotonic_ns())


def stream_ids(r, hub, channel):
    return [i.decode() for i, _ in r.xrange(hub._key(channel))]


def our_connections(r) -> int:
    """Client connections to redis-server other than the caller's own."""
    return len(r.client_list()) - 1


# -- publish and subscribe --------------------------------------------------------------------

def test_publish_from_a_thread_a_loop_and_another_program(redis_url, r, channel):  # noqa: F811
    hub = Broadcast(redis_url)
    assert isinstance(hub, RedisBroadcast)
    app = redis_app(hub)
    other = channel + "-other"
    with TestClient(app) as client:
        async def main():
            a = await connect(client, "/sub/" + channel)
            assert await until(lambda: hub._states and hub._states[client._server_loop]
                               .groups[channel].streams)
            # a second channel joins a reader that is already blocked in XREAD
            b = await connect(client, "/asub/" + other)
            assert hub.subscribers(channel) == 1 and hub.subscribers(other) == 1

            def from_thread():          # no event loop here: a sync XADD
                return hub.publish(channel, {"n": 1}, event="tick")

            box = []
            t = threading.Thread(target=lambda: box.append(from_thread()))
            t.start()
            t.join()
            assert box == [1]
            # on the server loop: queued, XADDed by the loop's writer task
            assert client.call_in_server(hub.publish, channel, "from-loop") == 1
            fut = asyncio.run_coroutine_threadsafe(hub.apublish(channel, "awaited"),
                                                   client._server_loop)
            awaited_id = await asyncio.wrap_future(fut)
            # another program XADDs plain fields
            r.xadd(hub._key(channel), {"data": "from redis-cli", "event": "ext"})
            # a def handler: in Redis by the time the answer arrives
            async with client.session.post(client.url("/pub/" + channel), data="def") as resp:
                assert (await resp.json()) == {"reached": 1}
            assert len(stream_ids(r, hub, channel)) == 5
            client.call_in_server(hub.publish, other, "for b")

            events = [await a.event() for _ in range(5)]
            ids = stream_ids(r, hub, channel)
            assert [e["id"] for e in events] == ids        # Redis stream ids are the SSE ids
            assert events[0]["event"] == "tick" and json.loads(events[0]["data"]) == {"n": 1}
            assert [e["data"] for e in events[1:]] == [
                "from-loop", "awaited", "from redis-cli", "def"]
            assert events[2]["id"] == awaited_id and events[3]["event"] == "ext"
            eb = await b.event()
            assert eb["data"] == "for b" and eb["id"] == stream_ids(r, hub, other)[0]
            a.resp.close()
            b.resp.close()

        client.run(main())
        assert wait_for(lambda: hub.subscribers(channel) == 0 == hub.subscribers(other))
        stats = hub.stats()[channel]
        assert stats.published == 4 and stats.delivered == 5
        assert stats.last_id == stream_ids(r, hub, channel)[-1]
    hub.close()
    # the loop's connections closed with the loop; the sync one with close()
    assert wait_for(lambda: our_connections(r) == 0), r.client_list()


def test_explicit_ids_and_bad_ids(redis_url, r, channel):  # noqa: F811
    hub = Broadcast(url=redis_url, history=50)
    try:
        hub.publish(channel, "a", id="5-1")
        with pytest.raises(redis.ResponseError):
            hub.publish(channel, "b", id="5-0")        # not greater than the last
        with pytest.raises(ValueError):
            hub.publish(channel, "c", id="five")
        assert stream_ids(r, hub, channel) == ["5-1"]
        with pytest.raises(ValueError):
            Broadcast(redis_url, history=0)
    finally:
        hub.close()


# -- resume -----------------------------------------------------------------------------------

def test_resume_from_the_stream_and_lost_when_trimmed(redis_url, r, channel):  # noqa: F811
    hub = Broadcast(redis_url, history=10)
    ids = [None]
    for i in range(1, 301):
        hub.publish(channel, "m%d" % i)
        ids.append(hub.stats()[channel].last_id)
    kept = stream_ids(r, hub, channel)
    assert 10 <= len(kept) < 300, "MAXLEN ~ history trims whole nodes"
    first_kept = int(r.xrange(hub._key(channel), count=1)[0][1][b"b"].split(b"m")[1])
    app = redis_app(hub)
    with TestClient(app) as client:
        async def main():
            # within the stream: exactly what follows
            s = await connect(client, "/sub/" + channel, {"Last-Event-ID": ids[295]})
            got = [await s.event() for _ in range(5)]
            assert [e["id"] for e in got] == ids[296:301]
            assert [e["data"] for e in got] == ["m%d" % i for i in range(296, 301)]
            # older than the stream's first entry: `lost` first, then all that is kept
            t = await connect(client, "/asub/" + channel, {"Last-Event-ID": ids[1]})
            lost = await t.event()
            assert lost["event"] == "lost" and lost["id"] is None
            assert json.loads(lost["data"]) == {"lost": None, "last_event_id": ids[1],
                                                "resumed_from": kept[0]}
            got = [await t.event() for _ in range(len(kept))]
            assert [e["id"] for e in got] == kept
            assert got[0]["data"] == "m%d" % first_kept
            # not a stream id at all
            u = await connect(client, "/sub/" + channel, {"Last-Event-ID": "nonsense"})
            assert (await u.event())["event"] == "lost"
            assert [(await u.event())["id"] for _ in range(len(kept))] == kept
            # then everyone goes on live
            client.call_in_server(hub.publish, channel, "live")
            for x in (s, t, u):
                e = await x.event()
                assert e["data"] == "live" and e["id"] == stream_ids(r, hub, channel)[-1]
                x.resp.close()

        client.run(main())
    hub.close()


def test_an_id_the_stream_has_not_reached_replays_nothing_and_goes_live(
        redis_url, r, channel):  # noqa: F811
    # (an id from another Redis, a clock set back, a bad header): no reader ever reaches it
    hub = Broadcast(redis_url)
    hub.publish(channel, "old")
    ahead = "%d-0" % ((time.time() + 3600) * 1000)
    app = redis_app(hub)
    with TestClient(app) as client:
        async def main():
            s = await connect(client, "/sub/" + channel, {"Last-Event-ID": ahead})
            client.call_in_server(hub.publish, channel, "live")
            # it goes live (a new channel's reader may also pass on the event published
            # just before it began: the hub's join window)
            e = await s.event()
            if e["data"] == "old":
                e = await s.event()
            assert e["data"] == "live" and e["id"] == stream_ids(r, hub, channel)[-1]
            s.resp.close()

        client.run(main())
    hub.close()


def test_a_readers_wake_key_expires_by_itself(redis_url, r, channel):  # noqa: F811
    # (a process killed without closing its hub must not leave the key in Redis for good)
    hub = Broadcast(redis_url, prefix="wake-ttl-%d:" % time.monotonic_ns())
    app = redis_app(hub)
    with TestClient(app) as client:
        async def main():
            first = await connect(client, "/sub/" + channel + "a")
            second = await connect(client, "/sub/" + channel + "b")   # the reader is woken
            assert await until(lambda: len(r.keys(hub.prefix + "_wake:*")) == 1)
            key = r.keys(hub.prefix + "_wake:*")[0]
            assert await until(lambda: r.ttl(key) > 0)   # (set with the wake-up itself)
            assert r.ttl(key) <= 86400
            first.resp.close()
            second.resp.close()

        client.run(main())
    hub.close()


def test_subscribers_joining_while_another_thread_publishes(redis_url, channel):  # noqa: F811
    """Resume (replay from the stream, then live from the loop's reader) must give each id
    exactly once, in order, also when events keep arriving during the replay."""
    hub = Broadcast(redis_url, history=5000)
    app = redis_app(hub)
    total, n_subs = 600, 30
    hub.publish(channel, 0)
    start_id = hub.stats()[channel].last_id
    with TestClient(app) as client:
        async def main():
            def publisher():
                for i in range(1, total + 1):
                    hub.publish(channel, i)

            t = threading.Thread(target=publisher)
            t.start()

            async def one(k):
                await asyncio.sleep(k * 0.003)
                resume = k % 3 != 0
                s = await connect(client, "/sub/" + channel,
                                  {"Last-Event-ID": start_id} if resume else None)
                seen = []
                while not seen or seen[-1] != total:
                    e = await s.event()
                    assert e["event"] is None, e
                    seen.append(int(e["data"]))
                s.resp.close()
                return resume, seen

            try:
                got = await asyncio.gather(*(one(k) for k in range(n_subs)))
            finally:
                t.join()
            for resume, seen in got:
                if resume:
                    assert seen == list(range(1, total + 1))
                else:                   # from when it joined, with no gap and no repeat
                    assert seen == list(range(seen[0], total + 1))

        client.run(main())
    hub.close()


def test_an_event_published_right_after_the_head_arrives_is_received(redis_url, r):  # noqa: F811
    """The first subscriber of a channel on a loop makes that loop start reading it; an event
    that another client publishes as soon as it sees the subscriber's response head must not
    fall before where the reader starts."""
    hub = Broadcast(redis_url)
    app = redis_app(hub)
    with TestClient(app) as client:
        async def main():
            for k in range(30):
                ch = "fresh-%d-%d" % (k, time.monotonic_ns())
                s = await connect(client, "/sub/" + ch)         # the head has arrived
                r.xadd(hub._key(ch), {"data": "right after %d" % k})
                assert (await s.event(timeout=5))["data"] == "right after %d" % k
                s.resp.close()

        client.run(main())
    hub.close()


def test_the_reader_stops_with_the_last_subscriber(redis_url, r, channel):  # noqa: F811
    hub = Broadcast(redis_url)
    app = redis_app(hub)
    with TestClient(app) as client:
        state = None

        async def main():
            nonlocal state
            subs = [await connect(client, "/sub/" + channel) for _ in range(3)]
            state = hub._states[client._server_loop]
            assert await until(lambda: state.reader is not None and all(
                len(g.streams) == 3 for g in state.groups.values()))
            before = our_connections(r)
            for s in subs:
                s.resp.close()
            assert await until(lambda: hub.subscribers(channel) == 0)
            assert state.reader is None and not state.groups
            # the reader's connection is gone; the loop's pooled one stays until the loop ends
            assert await until(lambda: our_connections(r) == before - 1)
            # and a new subscriber starts a new reader
            s = await connect(client, "/sub/" + channel)
            assert await until(lambda: state.reader is not None and state.groups[channel]
                               .streams)
            client.call_in_server(hub.publish, channel, "again")
            assert (await s.event())["data"] == "again"
            s.resp.close()

        client.run(main())
    assert state.closed                 # closed with its loop (loop.shutdown_asyncgens)
    hub.close()
    assert wait_for(lambda: our_connections(r) == 0), r.client_list()


# -- two processes ----------------------------------------------------------------------------

PUBLISHER = textwrap.dedent("""
    import sys
    from catzilla import Broadcast

    hub = Broadcast(sys.argv[1])
    for i in range(int(sys.argv[3])):
        hub.publish(sys.argv[2], {"i": i, "from": "publisher"}, event="remote")
        print(hub.stats()[sys.argv[2]].last_id, flush=True)
    hub.close()
""")


def test_published_in_one_process_received_in_another(redis_url, channel):  # noqa: F811
    hub = Broadcast(redis_url)
    app = redis_app(hub)
    n = 20
    with TestClient(app) as client:
        async def main():
            s = await connect(client, "/sub/" + channel)
            assert await until(lambda: hub.subscribers(channel) == 1)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", PUBLISHER, redis_url, channel, str(n),
                stdout=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                    p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p)))
            out, _ = await asyncio.wait_for(proc.communicate(), 30)
            assert proc.returncode == 0
            sent_ids = out.decode().split()
            got = [await s.event() for _ in range(n)]
            assert [e["id"] for e in got] == sent_ids
            assert [json.loads(e["data"])["i"] for e in got] == list(range(n))
            assert {e["event"] for e in got} == {"remote"}
            s.resp.close()

        client.run(main())
    hub.close()
