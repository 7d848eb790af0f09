"""The hub forgets channels without subscribers (``max_idle_channels``, ``idle_channel_ttl``)
so that per-room / per-user channel names do not add up, while a client that reconnects soon
with a Last-Event-ID still resumes, and one that comes back too late is told it lost events."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
import redis
from _redis import redis_server, redis_url  # noqa: F401  (fixtures)
from test_broadcast import connect, hub_app, until, wait_for

from catzilla import Broadcast
from catzilla.testing import TestClient


class Clock:
    """An injectable monotonic clock (``hub._clock``): the TTL without sleeping."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def total_subscribers(hub) -> int:
    return sum(s.subscribers for s in hub.stats().values())


async def off_loop(fn, *args):
    """Run ``fn(*args)`` in a thread of its own (a Redis hub's sync path) and wait for it."""
    box: list = []
    t = threading.Thread(target=lambda: box.append(fn(*args)))
    t.start()
    assert await until(lambda: not t.is_alive())
    t.join()
    assert box, "fn raised"
    return box[0]


# -- over real sockets ------------------------------------------------------------------------

def test_rooms_used_once_each_leave_at_most_the_cap_of_channels():
    """3,000 clients each subscribe to their own room, get its one event and leave: the hub
    ends with ``max_idle_channels`` channels, not 3,000; a subscribed room is never forgotten
    (its event would not arrive)."""
    cap, n_rooms = 100, 3000
    hub = Broadcast(max_idle_channels=cap, idle_channel_ttl=None)
    app = hub_app(hub)
    with TestClient(app) as client:
        async def main():
            gate = asyncio.Semaphore(64)

            async def room(i):
                name = "room-%d" % i
                async with gate:
                    s = await connect(client, "/sub/" + name)
                    assert hub.subscribers(name) == 1
                    hub.publish(name, {"i": i})          # from the client loop's thread
                    e = await s.event()
                    assert json.loads(e["data"]) == {"i": i}
                    s.resp.close()

            await asyncio.gather(*(room(i) for i in range(n_rooms)))

        client.run(main())
        assert wait_for(lambda: total_subscribers(hub) == 0 and len(app.connections) == 0)
        assert len(hub.channels()) == cap
        assert len(hub.stats()) == cap and len(hub._idle) == cap


def test_reconnect_within_the_ttl_resumes_and_after_it_gets_lost():
    """Within ``idle_channel_ttl`` a client that left resumes from its Last-Event-ID with
    exactly what it missed; once the channel is forgotten, its counters are gone, new ids
    continue above the forgotten ones, and a client that missed forgotten events first gets
    ``event: lost`` with ``lost: null``."""
    clock = Clock()
    hub = Broadcast(idle_channel_ttl=60)
    hub._clock = clock
    app = hub_app(hub)
    with TestClient(app) as client:
        async def main():
            s = await connect(client, "/sub/room")
            hub.publish("room", "m1")
            hub.publish("room", "m2")
            assert [(await s.event())["id"] for _ in range(2)] == ["1", "2"]
            s.resp.close()
            assert await until(lambda: hub.subscribers("room") == 0)
            hub.publish("room", "m3")                    # while nobody listens
            hub.publish("room", "m4")
            clock.t += 59                                # idle for 59 s of 60
            hub.publish("other", "x")                    # any operation sweeps
            assert "room" in hub.channels()
            s = await connect(client, "/sub/room", {"Last-Event-ID": "2"})
            assert [((e := await s.event())["id"], e["data"]) for _ in range(2)] == [
                ("3", "m3"), ("4", "m4")]
            s.resp.close()
            assert await until(lambda: hub.subscribers("room") == 0)
            assert hub.stats()["room"].published == 4

            clock.t += 61                                # past the TTL
            hub.publish("other", "y")
            assert "room" not in hub.channels() and "room" not in hub.stats()
            assert "other" in hub.channels()             # used just now
            hub.publish("room", "m5")                    # a new channel of the same name
            assert hub.stats()["room"].published == 1    # the old counters are gone
            # saw 4: nothing of the old channel was after it, so nothing is lost
            s = await connect(client, "/sub/room", {"Last-Event-ID": "4"})
            e = await s.event()
            assert (e["event"], e["id"], e["data"]) == (None, "5", "m5")
            s.resp.close()
            # saw 2: events 3 and 4 were forgotten with the channel; the hub cannot count them
            s = await connect(client, "/sub/room", {"Last-Event-ID": "2"})
            lost = await s.event()
            assert lost["event"] == "lost"
            assert json.loads(lost["data"]) == {"lost": None, "last_event_id": "2",
                                                "resumed_from": "5"}
            assert (await s.event())["id"] == "5"
            hub.publish("room", "m6")
            assert (await s.event())["id"] == "6"
            s.resp.close()

        client.run(main())
        assert wait_for(lambda: total_subscribers(hub) == 0)


def test_least_recently_used_idle_channel_goes_first_and_a_subscribed_one_never():
    """With room for 2 idle channels, the one left longest ago is forgotten when a third goes
    idle; a channel with a subscriber stays whatever the cap (here 0 beside it)."""
    hub = Broadcast(max_idle_channels=2, idle_channel_ttl=None)
    app = hub_app(hub)
    with TestClient(app) as client:
        async def main():
            subs = {}
            for name in ("a", "b", "c", "live"):
                subs[name] = await connect(client, "/sub/" + name)
                hub.publish(name, name + "1")
                assert (await subs[name].event())["data"] == name + "1"
            for name in ("a", "b", "c"):                 # leave in this order
                subs[name].resp.close()
                assert await until(lambda n=name: hub.subscribers(n) == 0)
            assert sorted(hub.channels()) == ["b", "c", "live"]
            # "a" was forgotten: its reconnecting client is told it may have lost events
            s = await connect(client, "/sub/a", {"Last-Event-ID": "0"})
            hub.publish("a", "a2")
            lost = await s.event()
            assert lost["event"] == "lost" and json.loads(lost["data"])["lost"] is None
            e = await s.event()
            assert e["data"] == "a2" and int(e["id"]) > 1   # ids do not go back
            s.resp.close()
            assert await until(lambda: hub.subscribers("a") == 0)
            # b was the least recently used idle channel when a went idle again
            assert sorted(hub.channels()) == ["a", "c", "live"]
            # no idle channel may stay: the subscribed one does, and still gets its events
            hub.max_idle_channels = 0
            for i in range(100):
                hub.publish("gone-%d" % i, "nobody")
            assert hub.channels() == ["live"]
            hub.publish("live", "live2")
            assert (await subs["live"].event())["data"] == "live2"
            subs["live"].resp.close()
            assert await until(lambda: hub.channels() == [])

        client.run(main())


def test_threads_publishing_to_new_names_while_clients_come_and_go():
    """Eviction runs under the hub lock: 4 threads publish to 2,000 new names each while
    clients subscribe and leave on the server loop and one client follows a hot channel."""
    cap = 20
    hub = Broadcast(max_idle_channels=cap, idle_channel_ttl=None)
    app = hub_app(hub)
    errors: list[BaseException] = []
    with TestClient(app) as client:
        async def main():
            hot = await connect(client, "/sub/hot")

            async def read_hot():
                return [(await hot.event())["data"] for _ in range(4 * 200)]

            reader = asyncio.ensure_future(read_hot())

            def publisher(k):
                try:
                    for i in range(2000):
                        hub.publish("t%d-%d" % (k, i), "x")
                        if i % 10 == 0:
                            hub.publish("hot", "%d-%d" % (k, i))
                except BaseException as exc:     # reported below
                    errors.append(exc)

            threads = [threading.Thread(target=publisher, args=(k,)) for k in range(4)]
            for t in threads:
                t.start()
            try:
                n = 0
                while any(t.is_alive() for t in threads) or n < 30:
                    s = await connect(client, "/sub/visit-%d" % n)
                    s.resp.close()
                    n += 1
            finally:
                for t in threads:
                    t.join()
            got = await reader
            for k in range(4):                   # each thread's events in its order
                assert [d for d in got if d.startswith("%d-" % k)] == [
                    "%d-%d" % (k, i) for i in range(0, 2000, 10)]
            hot.resp.close()

        client.run(main())
        assert not errors, errors
        assert wait_for(lambda: total_subscribers(hub) == 0)
        assert hub.stats()["hot"].dropped == 0
        hub.publish("last", "x")                 # one more operation, after every leave
        assert len(hub.channels()) == cap


# -- direct calls -----------------------------------------------------------------------------

def test_publishing_to_5000_names_nobody_follows_keeps_the_cap_and_the_ttl():
    clock = Clock()
    hub = Broadcast(max_idle_channels=100, idle_channel_ttl=300)
    hub._clock = clock
    for i in range(5000):
        hub.publish("user-%d" % i, {"n": i})
        clock.t += 0.01
    assert hub.channels() == ["user-%d" % i for i in range(4900, 5000)]
    assert list(hub.stats()) == hub.channels()
    # the ids of a name never go back, even after it was forgotten
    hub.publish("user-0", "again")
    assert hub.stats()["user-0"].last_id > 1
    # idle for longer than the TTL: forgotten at the next operation
    clock.t += 301
    hub.publish("now", "x")
    assert hub.channels() == ["now"]
    # None lifts a limit; negative values are refused
    unbounded = Broadcast(max_idle_channels=None, idle_channel_ttl=None)
    for i in range(3000):
        unbounded.publish("n-%d" % i, "x")
    assert len(unbounded.channels()) == 3000
    with pytest.raises(ValueError):
        Broadcast(max_idle_channels=-1)
    with pytest.raises(ValueError):
        Broadcast(idle_channel_ttl=-1)


def test_redis_hub_keeps_counters_of_idle_channels_within_the_cap(redis_url):  # noqa: F811
    """RedisBroadcast keeps only counters per channel (history is in Redis): they are
    bounded the same way, and history in Redis still serves a late reconnect."""
    prefix = "catzilla:test-hub-channels:%d:" % time.monotonic_ns()
    hub = Broadcast(redis_url, prefix=prefix, max_idle_channels=5, idle_channel_ttl=None)
    app = hub_app(hub)
    r = redis.Redis.from_url(redis_url)
    try:
        with TestClient(app) as client:
            async def main():
                s = await connect(client, "/sub/kept")
                assert await until(lambda: hub.subscribers("kept") == 1)
                await off_loop(lambda: [hub.publish("room-%d" % i, "x")     # sync XADDs
                                        for i in range(200)])
                assert len(hub.channels()) == 5 + 1   # the cap, and the subscribed one
                assert "kept" in hub.channels()
                await off_loop(hub.publish, "kept", "k1")
                e = await s.event()
                assert e["data"] == "k1"
                s.resp.close()
                assert await until(lambda: hub.subscribers("kept") == 0)
                await off_loop(lambda: [hub.publish("more-%d" % i, "x") for i in range(5)])
                assert "kept" not in hub.channels() and len(hub.channels()) == 5
                # its history is in Redis: a reconnect still resumes from it
                await off_loop(hub.publish, "kept", "k2")
                s = await connect(client, "/sub/kept", {"Last-Event-ID": e["id"]})
                assert (await s.event())["data"] == "k2"
                s.resp.close()

            client.run(main())
            assert wait_for(lambda: total_subscribers(hub) == 0)
    finally:
        hub.close()
        keys = list(r.scan_iter(match=prefix + "*"))
        if keys:
            r.delete(*keys)
        r.close()
