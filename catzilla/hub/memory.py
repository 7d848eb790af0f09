"""The in-process hub: channels with a history, fanned out by the core on each event loop."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from catzilla._sse import format_sse
from catzilla.hub._shared import (
    ChannelStats,
    Subscription,
    _fanout,
    _is_redis_url,
    _lost_notice,
    _numeric,
    _running_loop,
    _with_id,
)


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
            from catzilla.hub.redis import RedisBroadcast  # (a subclass of this one)

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

