"""The Redis hub: channels shared between processes and machines through Redis Streams."""

from __future__ import annotations

import asyncio
import os
import re
from collections import deque
from typing import Any

from catzilla._sse import format_sse
from catzilla.hub._shared import (
    Subscription,
    _is_redis_url,
    _lost_notice,
    _running_loop,
    logger,
)
from catzilla.hub.memory import Broadcast

_ID = re.compile(r"^(\d+)(?:-(\d+))?$")
_XADD_ID = re.compile(r"^\d+(?:-(?:\d+|\*))?$")


WAKE_KEY_TTL = 86400    # seconds a reader's wake key outlives its last wake-up
CLOSE_TIMEOUT = 1.0     # seconds closing a loop's state waits for Redis to delete that key


def _id_key(stream_id: bytes | str) -> tuple[int, int]:
    """(ms, seq) of a Redis stream id, for comparing ids."""
    if isinstance(stream_id, bytes):
        stream_id = stream_id.decode("ascii")
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class _RGroup:
    """The subscribers of one channel on one event loop, fed by that loop's reader.

    ``position`` is the last stream id written to ``streams`` (None until it is known);
    ``joining`` holds the streams still being replayed to, with their tasks."""

    __slots__ = ("channel", "key", "streams", "joining", "position", "ready", "waiters",
                 "created")

    def __init__(self, channel: str, key: bytes) -> None:
        self.channel = channel
        self.key = key
        self.streams: set = set()
        self.joining: dict = {}
        self.position: bytes | None = None
        self.ready: asyncio.Task | None = None
        self.waiters: list[asyncio.Future] = []     # joiners waiting for position to advance
        self.created = 0.0                          # loop.time() when its first stream came


class _LoopState:
    """What a RedisBroadcast holds on one event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, client: Any, ctl_key: bytes) -> None:
        self.loop = loop
        self.client = client            # redis.asyncio.Redis: XADD, XRANGE, XINFO, wake-ups
        self.groups: dict[str, _RGroup] = {}
        self.by_key: dict[bytes, _RGroup] = {}
        self.reader: asyncio.Task | None = None
        self.writer: asyncio.Task | None = None
        self.outbox: deque = deque()    # (channel, key, body, xadd id, future or None)
        self.tasks: set = set()
        self.ctl_key = ctl_key          # a stream of this reader's own, to wake its XREAD
        self.ctl_last = b"0-0"
        self.closer: Any = None
        self.closed = False


async def _close_with_loop(hub: RedisBroadcast, state: _LoopState) -> Any:
    """An async generator the loop closes in ``shutdown_asyncgens()`` (which ``app.listen``
    and the TestClient run when they stop): the hook that releases a loop's Redis
    connections and tasks when that loop ends."""
    try:
        yield
    finally:
        await hub._close_state(state)


async def _aclose(agen: Any) -> None:
    await agen.aclose()


class RedisBroadcast(Broadcast):
    """A hub whose channels are Redis Streams, shared by every process that uses the same
    Redis (``Broadcast("redis://127.0.0.1:6379/0")``).

    - ``publish`` outside a coroutine (another thread, a ``def`` handler, a loop callback)
      sends ``XADD`` with a sync client and returns once Redis has the event, so an answer sent
      after it is sent after the event (a ``def`` handler waits one round trip to Redis, as it
      would for any blocking call). Inside a coroutine (an ``async def`` handler, a task) the
      event is queued instead, and a task of that loop XADDs the queue in order, in pipelined
      batches, without blocking the loop (errors are logged); ``await hub.apublish(...)``
      waits for Redis and returns the id. ``publish`` returns the number of subscribers of the
      channel in this process.
    - Events published in one process (or one coroutine context) arrive in that order; across
      processes Redis orders them by arrival.
    - Event ids are Redis stream ids (``1700000000000-0``); an explicit ``id`` must be one
      that Redis accepts (greater than the stream's last).
    - A stream keeps about ``history`` events (``MAXLEN ~``, so Redis may keep up to about a
      hundred more). A subscriber with a Last-Event-ID gets what follows it from the stream,
      after an ``event: lost`` if events after that id were trimmed away.
    - Events XADDed by other programs with ``data`` (and ``event``) fields are delivered too.
    - History lives in Redis; this process keeps per-channel counters only (``stats()``),
      and forgets those of idle channels as the in-process hub does (``max_idle_channels``,
      ``idle_channel_ttl``).

    Connections: one pooled async client per event loop, one reading connection per loop
    while it has subscribers, one sync client for threads. They close with the loop (at
    ``loop.shutdown_asyncgens()``) or with ``close()`` / ``await aclose()``.
    """

    def __init__(self, url: str | None = None, *, history: int = 1000, queue_size: int = 256,
                 slow: str = "drop_oldest", prefix: str = "catzilla:sse:",
                 block_ms: int = 10_000, max_idle_channels: int | None = 1000,
                 idle_channel_ttl: float | None = 300.0, **redis_options: Any) -> None:
        if url is None or not _is_redis_url(url):
            raise ValueError("RedisBroadcast needs a redis://, rediss:// or unix:// url, "
                             "got %r" % (url,))
        super().__init__(history=history, queue_size=queue_size, slow=slow,
                         max_idle_channels=max_idle_channels,
                         idle_channel_ttl=idle_channel_ttl)
        if history < 1:
            raise ValueError("a Redis hub needs history >= 1 (it is the streams' MAXLEN)")
        try:
            import redis  # noqa: F401
        except ImportError as exc:  # pragma: no cover - the extra is missing
            raise ImportError("Broadcast(%r) needs the redis package: "
                              "pip install 'catzilla[redis]'" % (url,)) from exc
        self.url = url
        self.prefix = prefix
        self.block_ms = block_ms
        self._redis_options = dict({"socket_timeout": 10.0, "socket_connect_timeout": 5.0},
                                   **redis_options, decode_responses=False, protocol=2)
        self._sync: Any = None
        self._states: dict[asyncio.AbstractEventLoop, _LoopState] = {}

    def _key(self, channel: str) -> bytes:
        return (self.prefix + channel).encode("utf-8")

    # -- clients ---------------------------------------------------------------------------

    def _sync_client(self) -> Any:
        client = self._sync
        if client is None:
            import redis

            with self._lock:
                if self._sync is None:
                    self._sync = redis.Redis.from_url(self.url, **self._redis_options)
                client = self._sync
        return client

    def _async_client(self, **options: Any) -> Any:
        import redis.asyncio

        return redis.asyncio.Redis.from_url(self.url, **dict(self._redis_options, **options))

    def _state(self, loop: asyncio.AbstractEventLoop) -> _LoopState:
        """This loop's state (created on the loop's thread while it runs)."""
        st = self._states.get(loop)
        if st is None:
            ctl = ("%s_wake:%s" % (self.prefix, os.urandom(16).hex())).encode()
            st = self._states[loop] = _LoopState(loop, self._async_client(), ctl)
            closer = _close_with_loop(self, st)
            step = closer.asend(None)   # registers it with the running loop (firstiter hook)
            try:
                step.send(None)
            except StopIteration:
                pass
            st.closer = closer
        return st

    def _spawn(self, st: _LoopState, coro: Any) -> asyncio.Task:
        task = st.loop.create_task(coro)
        st.tasks.add(task)
        task.add_done_callback(st.tasks.discard)
        return task

    # -- publishing ------------------------------------------------------------------------

    def _encode(self, channel: str, data: Any, event: str | None,
                id: str | int | None) -> tuple[bytes, bytes, str]:
        if id is None:
            xid = "*"
        else:
            xid = str(id)
            if not _XADD_ID.match(xid):
                raise ValueError("with a Redis hub an event id is a Redis stream id such as "
                                 "'1700000000000-0' (greater than the stream's last), got %r"
                                 % (id,))
        if data is None and event is None:
            body = b"\n"                       # an event with only its id
        else:
            body = format_sse(data=data, event=event)
        with self._lock:
            self._channel(channel).stats.published += 1
            self._sweep()
        return self._key(channel), body, xid

    def publish(self, channel: str, data: Any, event: str | None = None,
                id: str | int | None = None) -> int:
        """XADD the event to the channel's stream: at once outside a coroutine, queued
        inside one (see the class docstring). Returns the number of subscribers of
        ``channel`` in this process."""
        key, body, xid = self._encode(channel, data, event, id)
        loop = _running_loop()
        if loop is None or asyncio.current_task(loop) is None:
            new_id = self._sync_client().xadd(
                key, {b"b": body}, id=xid, maxlen=self.history, approximate=True)
            self._note_id(channel, new_id)
        else:
            st = self._state(loop)
            st.outbox.append((channel, key, body, xid, None))
            self._kick_writer(st)
        return self.subscribers(channel)

    async def apublish(self, channel: str, data: Any, event: str | None = None,
                       id: str | int | None = None) -> str:
        """Like ``publish`` on an event loop, but waits for Redis and returns the event id."""
        key, body, xid = self._encode(channel, data, event, id)
        loop = asyncio.get_running_loop()
        st = self._state(loop)
        fut = loop.create_future()
        st.outbox.append((channel, key, body, xid, fut))
        self._kick_writer(st)
        return await fut

    def _note_id(self, channel: str, new_id: bytes) -> None:
        with self._lock:
            ch = self._channels.get(channel)    # None if it was forgotten meanwhile
            if ch is not None:
                ch.stats.last_id = new_id.decode("ascii")

    def _kick_writer(self, st: _LoopState) -> None:
        if st.writer is None:
            st.writer = st.loop.create_task(self._write_outbox(st))

    async def _write_outbox(self, st: _LoopState) -> None:
        """Send the loop's queued events in order, in pipelined batches."""
        batch: list = []
        try:
            while st.outbox:
                batch = [st.outbox.popleft() for _ in range(min(len(st.outbox), 1000))]
                pipe = st.client.pipeline(transaction=False)
                for _, key, body, xid, _ in batch:
                    pipe.xadd(key, {b"b": body}, id=xid, maxlen=self.history, approximate=True)
                try:
                    results = await pipe.execute(raise_on_error=False)
                except Exception as exc:
                    results = [exc] * len(batch)
                failed = 0
                for (channel, _, _, _, fut), res in zip(batch, results, strict=True):
                    if isinstance(res, Exception):
                        if fut is not None:
                            if not fut.done():
                                fut.set_exception(res)
                        else:
                            failed += 1
                            error = res
                    else:
                        self._note_id(channel, res)
                        if fut is not None and not fut.done():
                            fut.set_result(res.decode("ascii"))
                if failed:
                    logger.error("catzilla: %d event(s) could not be published to Redis: %s",
                                 failed, error)
                batch = []
        finally:
            if st.writer is asyncio.current_task():
                st.writer = None
            for item in list(batch) + (list(st.outbox) if st.closed else []):
                fut = item[4]
                if fut is not None and not fut.done():
                    fut.set_exception(ConnectionError("the Redis hub was closed"))

    # -- subscribing -----------------------------------------------------------------------

    def _attach(self, sub: Subscription, stream: Any) -> None:
        st = self._state(stream.server.loop)
        with self._lock:
            self._subscribed(sub.channel)
            self._sweep()
        group = st.groups.get(sub.channel)
        if group is None:
            group = st.groups[sub.channel] = _RGroup(sub.channel, self._key(sub.channel))
            group.created = st.loop.time()
            st.by_key[group.key] = group
            group.ready = self._spawn(st, _init_group(self, st, group))
        if sub.last_event_id is None and group.position is not None:
            group.streams.add(stream)   # live from the group's position on
            return
        group.joining[stream] = self._spawn(st, _join(self, st, group, stream, sub.last_event_id))

    def _detach(self, channel: str, stream: Any) -> None:
        st = self._states.get(stream.server.loop)
        group = st.groups.get(channel) if st is not None else None
        if group is None:
            return
        if stream in group.streams:
            group.streams.discard(stream)
        elif group.joining.pop(stream, None) is None:
            return
        with self._lock:
            self._unsubscribed(self._channel(channel))
            self._sweep()
        if not group.streams and not group.joining:
            del st.groups[channel]
            st.by_key.pop(group.key, None)
            if group.ready is not None and not group.ready.done():
                group.ready.cancel()
            if not st.groups and st.reader is not None:
                st.reader.cancel()      # redis-py drops the connection of a cancelled command
                st.reader = None

    async def _close_state(self, st: _LoopState) -> None:
        if st.closed:
            return
        if st.writer is not None:               # let queued events go out first
            await asyncio.wait([st.writer], timeout=5)
        st.closed = True
        if self._states.get(st.loop) is st:
            del self._states[st.loop]
        me = asyncio.current_task()
        tasks = [t for t in (st.reader, st.writer, *st.tasks)
                 if t is not None and t is not me and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            # bounded: a Redis that hangs must not hold a stop for the client's socket timeout
            await asyncio.wait_for(st.client.delete(st.ctl_key), CLOSE_TIMEOUT)
        except Exception:
            pass                                # (it expires by itself: WAKE_KEY_TTL)
        await st.client.aclose()

    def close(self) -> None:
        """Close the sync client, and the Redis connections of every loop (on loops running
        in other threads this is scheduled; on the calling thread's loop use ``aclose``)."""
        here = _running_loop()
        for loop, st in list(self._states.items()):
            if loop is here:
                loop.create_task(_aclose(st.closer))
            else:
                try:
                    asyncio.run_coroutine_threadsafe(_aclose(st.closer), loop)
                except RuntimeError:
                    pass
        client, self._sync = self._sync, None
        if client is not None:
            client.close()

    async def aclose(self) -> None:
        """Close this loop's Redis connections and tasks, and the sync client."""
        st = self._states.get(asyncio.get_running_loop())
        if st is not None:
            await st.closer.aclose()
        client, self._sync = self._sync, None
        if client is not None:
            client.close()

    def __repr__(self) -> str:
        return "<RedisBroadcast %s channels=%d>" % (self.url, len(self._channels))


# -- the reading side: one reader task per event loop, XREAD BLOCK on the channels subscribed
# there, replay and join for a stream that resumes, local fan-out ------------------------------


async def _retrying(hub: RedisBroadcast, st: _LoopState, group: _RGroup, what: str,
                    attempt: Any) -> Any:
    """Run ``attempt()`` until it succeeds, backing off while Redis is unreachable;
    gives up (returns None) when the group is gone."""
    delay = 0.05
    while st.groups.get(group.channel) is group and not st.closed:
        try:
            return await attempt()
        except (OSError, ConnectionError) as exc:
            error = exc
        except Exception as exc:
            import redis

            if not isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
                raise
            error = exc
        logger.warning("catzilla: Redis %s for channel %r failed (%s); retrying in %.1f s",
                       what, group.channel, error, delay)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    return None


async def _init_group(hub: RedisBroadcast, st: _LoopState, group: _RGroup) -> None:
    """Choose where the reader starts reading the channel for this loop.

    The group's first streams had their response heads sent before this runs, and a
    client may react to them by publishing (through another process) before Redis
    answers here. So the reader starts from the stream's end or, if earlier, from Redis's
    clock (``TIME``, the clock its ids come from) minus the time elapsed since the group
    was made: nothing published after a subscriber got its head is missed (an event from
    just before may be delivered).
    """

    async def ask() -> list:
        pipe = st.client.pipeline(transaction=False)
        pipe.time()
        pipe.xrevrange(group.key, "+", "-", count=1)
        return await pipe.execute()

    answer = await _retrying(hub, st, group, "XREVRANGE", ask)
    if answer is None or st.groups.get(group.channel) is not group:
        return
    (seconds, micros), last = answer
    elapsed_ms = int((st.loop.time() - group.created) * 1000) + 2
    since = b"%d-0" % max(seconds * 1000 + micros // 1000 - elapsed_ms, 0)
    group.position = since
    if last and _id_key(last[0][0]) < _id_key(since):
        group.position = last[0][0]
    if st.reader is None:
        st.reader = hub._spawn(st, _read(hub, st))
    else:
        hub._spawn(st, _wake(hub, st))


async def _wake(hub: RedisBroadcast, st: _LoopState) -> None:
    """Make the reader's XREAD return so that it reads the new channel set too."""
    try:
        # (with an expiry: a process that dies without closing must not leave it for good)
        async with st.client.pipeline(transaction=False) as pipe:
            pipe.xadd(st.ctl_key, {b"w": b"1"}, maxlen=1, approximate=False)
            pipe.expire(st.ctl_key, WAKE_KEY_TTL)
            await pipe.execute()
    except Exception as exc:
        logger.warning("catzilla: could not wake the Redis reader: %s", exc)


async def _join(hub: RedisBroadcast, st: _LoopState, group: _RGroup, stream: Any,
                last_event_id: str | None) -> None:
    try:
        await _replay_and_join(hub, st, group, stream, last_event_id)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("catzilla: Redis replay to a subscriber of %r failed; it gets "
                         "live events only", group.channel)
        if group.joining.pop(stream, None) is not None:
            group.streams.add(stream)


async def _replay_and_join(hub: RedisBroadcast, st: _LoopState, group: _RGroup, stream: Any,
                           last_event_id: str | None) -> None:
    """Replay to one stream what follows ``last_event_id``, then add it to the group."""
    if group.position is None:
        await asyncio.shield(group.ready)
    if group.joining.get(stream) is None:
        return                              # it left meanwhile
    if last_event_id is not None:
        m = _ID.match(last_event_id.strip())
        cursor = (b"%s-%s" % (m.group(1).encode(), (m.group(2) or "0").encode())
                  if m else None)
        first = None
        try:
            info = await _retrying(hub, st, group, "XINFO",
                                        lambda: st.client.xinfo_stream(group.key))
        except Exception:                   # no such key: nothing was published yet
            info = None
        if group.joining.get(stream) is None:
            return
        batch: list[bytes] = []
        if info is not None:
            entry = info.get("first-entry")
            first = entry[0] if entry else None
            if _lost(info, first, cursor):
                batch.append(_lost_notice(None, last_event_id,
                                          first.decode() if first else None))
        if cursor is None:
            cursor = b"0-0"
        last = info.get("last-generated-id") if info is not None else None
        if cursor != b"0-0" and (last is None or _id_key(cursor) > _id_key(last)):
            # an id the stream has not reached (another Redis, a clock set back, a bad
            # header): there is nothing to replay, and no reader will ever reach it
            cursor = None
        while cursor is not None:
            if _id_key(cursor) > _id_key(group.position):
                # it saw events this loop's reader has not read yet: wait for the reader
                waiter = st.loop.create_future()
                group.waiters.append(waiter)
                await asyncio.wait([waiter], timeout=1.0)
                if group.joining.get(stream) is None:
                    return
                continue
            entries = await _retrying(hub,
                st, group, "XRANGE",
                lambda c=cursor: st.client.xrange(group.key, b"(" + c, "+", count=500))
            if group.joining.get(stream) is None:
                return
            caught_up = False
            for eid, fields in entries or ():
                if _id_key(eid) > _id_key(group.position):
                    caught_up = True        # the reader delivers the rest
                    break
                payload = _payload(hub, eid, fields)
                if payload is not None:
                    batch.append(payload)
                cursor = eid
            if batch:
                with hub._lock:
                    ch = hub._channel(group.channel)
                hub._fanout_to(ch, (stream,), b"".join(batch))
                batch = []
            if caught_up or (len(entries or ()) < 500
                             and _id_key(group.position) <= _id_key(cursor)):
                break
    if group.joining.pop(stream, None) is not None:
        group.streams.add(stream)


def _lost(info: dict, first: bytes | None, cursor: bytes | None) -> bool:
    """Were events after ``cursor`` removed from the stream (XINFO STREAM ``info``)?"""
    added = info.get("entries-added")
    if cursor is None:                      # not a stream id: cannot tell what it saw
        return added is None or added > 0
    if added is not None and added <= info.get("length", 0):
        return False                        # nothing was ever trimmed or deleted
    at = _id_key(cursor)
    deleted = info.get("max-deleted-entry-id")
    if deleted is not None and at < _id_key(deleted):
        return True
    if first is not None:
        return at < _id_key(first)
    last = info.get("last-generated-id")
    return last is not None and at < _id_key(last)


def _payload(hub: RedisBroadcast, eid: bytes, fields: dict) -> bytes | None:
    body = fields.get(b"b")
    if body is None:                        # XADDed by another program
        try:
            data = fields.get(b"data")
            event = fields.get(b"event")
            body = format_sse(data=data.decode("utf-8") if data is not None else None,
                              event=event.decode("utf-8") if event is not None else None)
        except Exception as exc:
            logger.warning("catzilla: skipping Redis stream entry %s: %s", eid, exc)
            return None
    return b"id: " + eid + b"\n" + body


async def _read(hub: RedisBroadcast, st: _LoopState) -> None:
    """This loop's reader: XREAD BLOCK on every channel subscribed here."""
    import redis

    client = hub._async_client(socket_timeout=hub.block_ms / 1000 + 10)
    delay = 0.05
    try:
        while True:
            streams = {g.key: g.position for g in st.groups.values()
                       if g.position is not None}
            if not streams or st.closed:
                break
            streams[st.ctl_key] = st.ctl_last
            try:
                response = await client.xread(streams, count=1000, block=hub.block_ms)
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning("catzilla: Redis XREAD failed (%s); retrying in %.1f s",
                               exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            for key, entries in response or ():
                if key == st.ctl_key:
                    st.ctl_last = entries[-1][0]
                    continue
                group = st.by_key.get(key)
                if group is not None and group.position is not None:
                    _deliver(hub, group, entries)
    finally:
        if st.reader is asyncio.current_task():
            st.reader = None
        await client.aclose()


def _deliver(hub: RedisBroadcast, group: _RGroup, entries: list) -> None:
    with hub._lock:
        ch = hub._channel(group.channel)
    position = _id_key(group.position)
    eid = None
    for eid, fields in entries:
        key = _id_key(eid)
        if key <= position:
            continue
        position = key
        group.position = eid
        payload = _payload(hub, eid, fields)
        if payload is not None:
            hub._fanout_to(ch, group.streams, payload)
    if eid is not None:
        with hub._lock:
            ch.stats.last_id = group.position.decode("ascii")
        waiters, group.waiters = group.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

# -- closing ---------------------------------------------------------------------------
