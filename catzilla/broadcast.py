"""A broadcast hub for Server-Sent Events: publish once, deliver to every subscriber.

>>> hub = Broadcast()                       # or app.broadcast; Broadcast("redis://...") below
>>> @app.get("/news")
... def news(request):
...     return EventSourceResponse(hub.subscribe("news", request.last_event_id))
>>> hub.publish("news", {"title": "hello"})  # from any thread or coroutine
>>> await hub.apublish("news", "hi")           # the same, returning the event's id

Each event is encoded once; the same bytes object is written to every subscriber's socket by
the core's fan-out loop. A subscriber whose socket is backed up keeps up to ``queue_size``
events, then loses the oldest (``slow="drop_oldest"``) or is disconnected
(``slow="disconnect"``). Every channel keeps the last ``history`` events so a client that
reconnects with ``Last-Event-ID`` gets what it missed; if its id is older than the history it
first gets an ``event: lost`` (data: ``{"lost": n, "last_event_id": ..., "resumed_from": ...}``;
``n`` is None when the number is not known).

A channel without subscribers is idle. Idle channels keep their history (and counters) for
reconnecting clients, but not forever: the hub forgets an idle channel when it has been idle
(no subscriber, no publish) for ``idle_channel_ttl`` seconds (default 300), and the least
recently used idle ones beyond ``max_idle_channels`` (default 1000), so per-room or per-user
channel names do not add up; ``None`` lifts either limit. This is checked on publish,
subscribe and unsubscribe (no timer). A channel made again after the hub forgot channels
numbers its events after every id the forgotten ones had used, so a name's ids never go back;
and a client that resumes with a Last-Event-ID the hub may have forgotten events after gets
``event: lost`` with ``n`` None first.

``Broadcast("redis://127.0.0.1:6379/0")`` shares channels between processes and machines
through Redis Streams: ``publish`` is an ``XADD`` to ``<prefix><channel>`` capped at
``MAXLEN ~ history``; the Redis stream ids are the SSE ids; history and resume come from the
stream; each event loop with subscribers runs one reader task (``XREAD BLOCK`` on the channels
subscribed there) that fans out locally. See ``RedisBroadcast``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from catzilla._sse import format_sse

logger = logging.getLogger("catzilla.broadcast")

__all__ = ["Broadcast", "ChannelStats", "RedisBroadcast", "Subscription"]


def _fanout(*args: Any) -> tuple[int, int, int]:
    from catzilla._core import _fanout as fanout  # the core imports this module

    globals()["_fanout"] = fanout
    return fanout(*args)


@dataclass
class ChannelStats:
    """Counters of one channel in this process (``hub.stats()[channel]``)."""

    published: int = 0      # events published (with Redis: by this process)
    delivered: int = 0      # copies handed to subscribers' sockets
    dropped: int = 0        # oldest queued events dropped for slow subscribers
    disconnected: int = 0   # slow subscribers disconnected
    subscribers: int = 0    # current subscribers (with Redis: in this process)
    last_id: int | str = 0  # in memory: the last automatic id; with Redis: the last stream id


class Subscription:
    """What ``Broadcast.subscribe`` returns: the content of an EventSourceResponse."""

    def __init__(self, hub: Broadcast, channel: str, last_event_id: str | None) -> None:
        self.hub = hub
        self.channel = channel
        self.last_event_id = last_event_id

    # Called by the core on the loop thread when the stream starts and (once) when it ends.
    def _attach(self, stream: Any) -> None:
        self.hub._attach(self, stream)

    def _detach(self, stream: Any) -> None:
        self.hub._detach(self.channel, stream)

    def __repr__(self) -> str:
        return "<Subscription %r last_event_id=%r>" % (self.channel, self.last_event_id)


# the longest event id read as a number (an automatic id is far shorter; a client's header
# can be any length, and int() of thousands of digits is slow or refused)
_MAX_NUMERIC_ID = 20


def _numeric(event_id: str) -> bool:
    """Whether an event id is read as a number: ASCII digits only (``str.isdigit()`` also
    accepts e.g. '²', which ``int()`` refuses), at most ``_MAX_NUMERIC_ID`` of them."""
    return event_id.isascii() and event_id.isdigit() and len(event_id) <= _MAX_NUMERIC_ID


def _with_id(body: bytes, event_id: str, event: str | None) -> bytes:
    """``body`` (``format_sse`` of the event without an id) with the id line where
    ``format_sse`` puts it: after the event line (an event name holds no LF), else first."""
    line = b"id: %s\n" % event_id.encode("ascii")
    if event is None:
        return line + body
    cut = body.index(b"\n") + 1
    return body[:cut] + line + body[cut:]


def _lost_notice(lost: int | None, last_event_id: str, resumed_from: str | None) -> bytes:
    return format_sse(data={"lost": lost, "last_event_id": last_event_id,
                            "resumed_from": resumed_from}, event="lost")


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _is_redis_url(url: str) -> bool:
    return url.startswith(("redis://", "rediss://", "unix://"))


# -- the in-process hub ------------------------------------------------------------------------

class _Group:
    """The subscribers of one channel on one event loop. Events for it queue in ``pending``
    (appended under the hub lock by any thread) and are written by ``_drain`` on the loop, in
    publication order; ``delivered`` is the sequence number of the last one written, so a
    stream that joins replays history up to there and gets the rest from ``pending``."""

    __slots__ = ("loop", "streams", "pending", "scheduled", "delivered")

    def __init__(self, loop: asyncio.AbstractEventLoop, delivered: int) -> None:
        self.loop = loop
        self.streams: set = set()
        self.pending: deque = deque()
        self.scheduled = False
        self.delivered = delivered


@dataclass
class _Channel:
    name: str
    next_id: int = 1
    seq: int = 0                                        # internal, one per published event
    history: deque = field(default_factory=deque)       # (seq, id, encoded bytes)
    groups: dict = field(default_factory=dict)          # event loop -> _Group
    stats: ChannelStats = field(default_factory=ChannelStats)
    # made after the hub forgot channels with events: events of this name before ``base``
    # (the first automatic id it had) may have been forgotten
    forgot: bool = False
    base: int = 1
    used: float = 0.0                                   # while idle: clock() when last used


class Broadcast:
    """Channels of Server-Sent Events, fanned out to subscribers by the core.

    ``Broadcast()`` lives in this process; ``Broadcast("redis://host:port/db")`` (or
    ``url=...``) is a ``RedisBroadcast`` that shares channels across processes.
    """

    def __new__(cls, url: str | None = None, **kwargs: Any) -> Broadcast:
        if cls is Broadcast and url is not None and _is_redis_url(url):
            cls = RedisBroadcast
        return object.__new__(cls)

    def __init__(self, url: str | None = None, *, history: int = 1000, queue_size: int = 256,
                 slow: str = "drop_oldest", max_idle_channels: int | None = 1000,
                 idle_channel_ttl: float | None = 300.0) -> None:
        if url is not None and url != "memory://":
            raise ValueError("unsupported broadcast url %r: use redis://host:port/db (or "
                             "rediss://, unix://), or none for an in-process hub" % (url,))
        if slow not in ("drop_oldest", "disconnect"):
            raise ValueError("slow must be 'drop_oldest' or 'disconnect'")
        if history < 0 or queue_size < 1:
            raise ValueError("history must be >= 0 and queue_size >= 1")
        if max_idle_channels is not None and max_idle_channels < 0:
            raise ValueError("max_idle_channels must be >= 0 or None")
        if idle_channel_ttl is not None and idle_channel_ttl < 0:
            raise ValueError("idle_channel_ttl must be >= 0 or None")
        self.history = history
        self.queue_size = queue_size
        self.slow = slow
        self.max_idle_channels = max_idle_channels
        self.idle_channel_ttl = idle_channel_ttl
        self._disconnect_slow = slow == "disconnect"
        self._channels: dict[str, _Channel] = {}
        # the channels without subscribers, least recently used first (all under the lock)
        self._idle: OrderedDict[str, _Channel] = OrderedDict()
        self._clock = time.monotonic
        self._check_at = float("-inf")    # _sweep: no idle channel expires before this
        self._id_floor = 1          # above every automatic id of a forgotten channel
        self._forgot = False        # a channel with events was forgotten
        # re-entrant: a fan-out that disconnects a slow subscriber detaches it meanwhile
        self._lock = threading.RLock()

    def _channel(self, name: str) -> _Channel:
        """Under the lock: the channel ``name``, made if needed; an idle one becomes the
        most recently used. Call ``_sweep`` once the operation is done."""
        ch = self._channels.get(name)
        if ch is None:
            if not isinstance(name, str):
                raise TypeError("a channel name must be a str, got %s" % type(name).__name__)
            floor = self._id_floor
            ch = self._channels[name] = _Channel(name, next_id=floor, base=floor,
                                                 forgot=self._forgot)
            ch.used = self._clock()
            self._idle[name] = ch
        elif ch.stats.subscribers <= 0:
            ch.used = self._clock()
            self._idle.move_to_end(name)
        return ch

    def _subscribed(self, name: str) -> _Channel:
        """Under the lock: one more subscriber of ``name``."""
        ch = self._channel(name)
        if ch.stats.subscribers <= 0:
            self._idle.pop(name, None)
        ch.stats.subscribers += 1
        return ch

    def _unsubscribed(self, ch: _Channel, n: int = 1) -> None:
        """Under the lock: ``n`` subscribers of ``ch`` left; without any it becomes idle."""
        ch.stats.subscribers -= n
        if ch.stats.subscribers <= 0 and self._channels.get(ch.name) is ch:
            ch.used = self._clock()
            self._idle[ch.name] = ch
            self._idle.move_to_end(ch.name)

    def _sweep(self) -> None:
        """Under the lock: forget the idle channels beyond ``max_idle_channels`` (least
        recently used first) and those idle for ``idle_channel_ttl`` seconds. Amortised O(1):
        each channel is forgotten once, and the oldest one shows whether any more is due."""
        idle = self._idle
        if not idle:
            return
        cap, ttl = self.max_idle_channels, self.idle_channel_ttl
        excess = len(idle) - cap if cap is not None else 0
        if excess <= 0:
            if ttl is None:
                return
            now = self._clock()
            if now < self._check_at:
                return                  # the fast path of a publish: nothing is due yet
        else:
            now = self._clock()
        expired = now - ttl if ttl is not None else None
        while idle:
            name, ch = next(iter(idle.items()))
            if excess <= 0 and (expired is None or ch.used > expired):
                break
            del idle[name]
            del self._channels[name]
            excess -= 1
            if ch.seq:
                self._forgot = True
                if ch.next_id > self._id_floor:
                    self._id_floor = ch.next_id
        if ttl is not None:
            # no idle channel expires before this: the oldest now, or one idle from now on
            self._check_at = (next(iter(idle.values())).used if idle else now) + ttl

    def _fanout_to(self, ch: _Channel, streams: Any, payload: bytes) -> int:
        """On the streams' loop: the core writes payload to each of them."""
        reached, dropped, disconnected = _fanout(
            streams, payload, self.queue_size, self._disconnect_slow)
        with self._lock:
            st = ch.stats
            st.delivered += reached
            if dropped or disconnected:
                st.dropped += dropped
                st.disconnected += disconnected
        return reached

    # -- publishing ------------------------------------------------------------------------

    def publish(self, channel: str, data: Any, event: str | None = None,
                id: str | int | None = None) -> int:
        """Send an event to every subscriber of ``channel``; returns how many it reached
        (from a thread that is not the subscribers' loop: how many were subscribed when it
        was sent). Without an ``id`` the event gets the channel's next one (1, 2, 3, ...)."""
        return self._publish(channel, data, event, id)[0]

    async def apublish(self, channel: str, data: Any, event: str | None = None,
                       id: str | int | None = None) -> str:
        """``publish`` for coroutines, returning the event's id (as the Redis hub does)."""
        return self._publish(channel, data, event, id)[1]

    def _publish(self, channel: str, data: Any, event: str | None,
                 id: str | int | None) -> tuple[int, str]:
        # Encode (and so validate) first: an event that is refused (data that is not JSON,
        # NaN, a newline in the event name, a bad id) uses up no id and makes no channel. A
        # hole in the automatic ids would tell a resuming client that events were lost.
        if id is None:
            body = format_sse(data=data, event=event) if (
                data is not None or event is not None) else b"\n"   # an event with only its id
        else:
            event_id = id if isinstance(id, str) else str(int(id))
            payload = format_sse(data=data, event=event, id=event_id)
        here = _running_loop()
        local = None
        reached = 0
        with self._lock:
            ch = self._channel(channel)
            if id is None:
                event_id = str(ch.next_id)
                ch.next_id += 1
                payload = _with_id(body, event_id, event)
            elif _numeric(event_id):
                ch.next_id = max(ch.next_id, int(event_id) + 1)
            ch.seq += 1
            seq = ch.seq
            if self.history:
                ch.history.append((seq, event_id, payload))
                if len(ch.history) > self.history:
                    ch.history.popleft()
            ch.stats.published += 1
            ch.stats.last_id = ch.next_id - 1
            for loop, group in list(ch.groups.items()):
                group.pending.append((seq, payload))
                if loop is here:
                    local = group
                    continue
                reached += len(group.streams)
                if not group.scheduled:
                    group.scheduled = True
                    try:
                        loop.call_soon_threadsafe(self._drain, ch, group)
                    except RuntimeError:        # that loop is closed: nobody left to serve
                        del ch.groups[loop]
                        self._unsubscribed(ch, len(group.streams))
            self._sweep()
        if local is not None:
            reached += self._drain(ch, local)
        return reached, event_id

    def _drain(self, ch: _Channel, group: _Group) -> int:
        """On the group's loop: write its pending events in order; returns how many
        subscribers the last one reached."""
        group.scheduled = False
        reached = 0
        pending = group.pending
        while pending:
            seq, payload = pending.popleft()
            reached = self._fanout_to(ch, group.streams, payload)
            group.delivered = seq
        return reached

    # -- subscribing -----------------------------------------------------------------------

    def subscribe(self, channel: str, last_event_id: str | None = None) -> Subscription:
        """The content of an EventSourceResponse that streams ``channel``; with a
        ``last_event_id`` it first replays what came after that id."""
        if not isinstance(channel, str):
            raise TypeError("a channel name must be a str, got %s" % type(channel).__name__)
        return Subscription(self, channel, last_event_id)

    def _replay(self, ch: _Channel, last_event_id: str, upto: int) -> list[bytes]:
        """What a subscriber that saw ``last_event_id`` missed, among the events up to
        sequence number ``upto`` (the later ones reach it through its group)."""
        entries = [e for e in ch.history if e[0] <= upto]
        for k in range(len(entries) - 1, -1, -1):
            if entries[k][1] == last_event_id:
                return [p for _, _, p in entries[k + 1:]]
        first = ch.history[0][1] if ch.history else None
        if _numeric(last_event_id) and all(_numeric(i) for _, i, _ in ch.history):
            n = int(last_event_id)
            top = ch.next_id - 1
            if top <= n:
                return []                       # nothing was published after it
            newer = [p for _, i, p in entries if int(i) > n]
            if ch.forgot and n < ch.base - 1:   # ids between may belong to forgotten events
                return [_lost_notice(None, last_event_id, first)] + newer
            lost = (int(first) if first is not None else top + 1) - n - 1
            if lost > 0:
                return [_lost_notice(lost, last_event_id, first)] + newer
            return newer
        if not ch.seq and not ch.forgot:
            return []                           # nothing was ever published here
        return [_lost_notice(None, last_event_id, first)] + [p for _, _, p in entries]

    def _attach(self, sub: Subscription, stream: Any) -> None:
        loop = stream.server.loop
        with self._lock:
            try:
                ch = self._channel(sub.channel)
                group = ch.groups.get(loop)
                # the replay first: if it fails, the stream is not counted nor joined
                replay = () if sub.last_event_id is None else self._replay(
                    ch, sub.last_event_id, group.delivered if group is not None else ch.seq)
                self._subscribed(sub.channel)
                if group is None:
                    group = ch.groups[loop] = _Group(loop, ch.seq)
                for payload in replay:
                    stream._enqueue(payload)
                group.streams.add(stream)
            finally:
                self._sweep()

    def _detach(self, channel: str, stream: Any) -> None:
        loop = stream.server.loop
        with self._lock:
            ch = self._channels.get(channel)
            group = ch.groups.get(loop) if ch is not None else None
            if group is not None and stream in group.streams:
                group.streams.discard(stream)
                if not group.streams:
                    del ch.groups[loop]
                self._unsubscribed(ch)
            self._sweep()

    # -- introspection and closing ---------------------------------------------------------

    def subscribers(self, channel: str) -> int:
        """How many subscribers ``channel`` has (with Redis: in this process)."""
        ch = self._channels.get(channel)
        return ch.stats.subscribers if ch else 0

    def stats(self) -> dict[str, ChannelStats]:
        """A snapshot of the counters of every channel the hub holds: those with subscribers
        and the idle ones not forgotten yet. A forgotten idle channel's counters are gone (a
        later publish or subscribe starts them again from 0)."""
        with self._lock:
            return {name: ChannelStats(**vars(ch.stats)) for name, ch in self._channels.items()}

    def channels(self) -> list[str]:
        """The channels the hub holds (with subscribers, or idle and not forgotten yet)."""
        with self._lock:
            return list(self._channels)

    def close(self) -> None:
        """Release what the hub holds (an in-process hub holds nothing outside memory)."""

    async def aclose(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return "<%s channels=%d>" % (type(self).__name__, len(self._channels))


# -- the Redis hub -----------------------------------------------------------------------------

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
            group.ready = self._spawn(st, self._init_group(st, group))
        if sub.last_event_id is None and group.position is not None:
            group.streams.add(stream)   # live from the group's position on
            return
        group.joining[stream] = self._spawn(st, self._join(st, group, stream, sub.last_event_id))

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

    async def _retrying(self, st: _LoopState, group: _RGroup, what: str, attempt: Any) -> Any:
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

    async def _init_group(self, st: _LoopState, group: _RGroup) -> None:
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

        answer = await self._retrying(st, group, "XREVRANGE", ask)
        if answer is None or st.groups.get(group.channel) is not group:
            return
        (seconds, micros), last = answer
        elapsed_ms = int((st.loop.time() - group.created) * 1000) + 2
        since = b"%d-0" % max(seconds * 1000 + micros // 1000 - elapsed_ms, 0)
        group.position = since
        if last and _id_key(last[0][0]) < _id_key(since):
            group.position = last[0][0]
        if st.reader is None:
            st.reader = self._spawn(st, self._read(st))
        else:
            self._spawn(st, self._wake(st))

    async def _wake(self, st: _LoopState) -> None:
        """Make the reader's XREAD return so that it reads the new channel set too."""
        try:
            # (with an expiry: a process that dies without closing must not leave it for good)
            async with st.client.pipeline(transaction=False) as pipe:
                pipe.xadd(st.ctl_key, {b"w": b"1"}, maxlen=1, approximate=False)
                pipe.expire(st.ctl_key, WAKE_KEY_TTL)
                await pipe.execute()
        except Exception as exc:
            logger.warning("catzilla: could not wake the Redis reader: %s", exc)

    async def _join(self, st: _LoopState, group: _RGroup, stream: Any,
                    last_event_id: str | None) -> None:
        try:
            await self._replay_and_join(st, group, stream, last_event_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("catzilla: Redis replay to a subscriber of %r failed; it gets "
                             "live events only", group.channel)
            if group.joining.pop(stream, None) is not None:
                group.streams.add(stream)

    async def _replay_and_join(self, st: _LoopState, group: _RGroup, stream: Any,
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
                info = await self._retrying(st, group, "XINFO",
                                            lambda: st.client.xinfo_stream(group.key))
            except Exception:                   # no such key: nothing was published yet
                info = None
            if group.joining.get(stream) is None:
                return
            batch: list[bytes] = []
            if info is not None:
                entry = info.get("first-entry")
                first = entry[0] if entry else None
                if self._lost(info, first, cursor):
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
                entries = await self._retrying(
                    st, group, "XRANGE",
                    lambda c=cursor: st.client.xrange(group.key, b"(" + c, "+", count=500))
                if group.joining.get(stream) is None:
                    return
                caught_up = False
                for eid, fields in entries or ():
                    if _id_key(eid) > _id_key(group.position):
                        caught_up = True        # the reader delivers the rest
                        break
                    payload = self._payload(eid, fields)
                    if payload is not None:
                        batch.append(payload)
                    cursor = eid
                if batch:
                    with self._lock:
                        ch = self._channel(group.channel)
                    self._fanout_to(ch, (stream,), b"".join(batch))
                    batch = []
                if caught_up or (len(entries or ()) < 500
                                 and _id_key(group.position) <= _id_key(cursor)):
                    break
        if group.joining.pop(stream, None) is not None:
            group.streams.add(stream)

    @staticmethod
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

    def _payload(self, eid: bytes, fields: dict) -> bytes | None:
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

    async def _read(self, st: _LoopState) -> None:
        """This loop's reader: XREAD BLOCK on every channel subscribed here."""
        import redis

        client = self._async_client(socket_timeout=self.block_ms / 1000 + 10)
        delay = 0.05
        try:
            while True:
                streams = {g.key: g.position for g in st.groups.values()
                           if g.position is not None}
                if not streams or st.closed:
                    break
                streams[st.ctl_key] = st.ctl_last
                try:
                    response = await client.xread(streams, count=1000, block=self.block_ms)
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
                        self._deliver(group, entries)
        finally:
            if st.reader is asyncio.current_task():
                st.reader = None
            await client.aclose()

    def _deliver(self, group: _RGroup, entries: list) -> None:
        with self._lock:
            ch = self._channel(group.channel)
        position = _id_key(group.position)
        eid = None
        for eid, fields in entries:
            key = _id_key(eid)
            if key <= position:
                continue
            position = key
            group.position = eid
            payload = self._payload(eid, fields)
            if payload is not None:
                self._fanout_to(ch, group.streams, payload)
        if eid is not None:
            with self._lock:
                ch.stats.last_id = group.position.decode("ascii")
            waiters, group.waiters = group.waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    # -- closing ---------------------------------------------------------------------------

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
