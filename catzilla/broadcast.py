"""A broadcast hub for Server-Sent Events: publish once, deliver to every subscriber.

>>> hub = Broadcast()                       # or app.broadcast
>>> @app.get("/news")
... def news(request):
...     return EventSourceResponse(hub.subscribe("news", request.last_event_id))
>>> hub.publish("news", {"title": "hello"})  # from any thread or coroutine

Each event is encoded once; the same bytes object is written to every subscriber's socket by
the core's fan-out loop. A subscriber whose socket is backed up keeps up to ``queue_size``
events, then loses the oldest (``slow="drop_oldest"``) or is disconnected
(``slow="disconnect"``). Every channel keeps the last ``history`` events so a client that
reconnects with ``Last-Event-ID`` gets what it missed; if its id is older than the history it
first gets an ``event: lost`` saying how many events it cannot have.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from catzilla._sse import format_sse


def _fanout(*args: Any) -> tuple[int, int, int]:
    from catzilla._core import _fanout as fanout   # the core imports this module

    globals()["_fanout"] = fanout
    return fanout(*args)


@dataclass
class ChannelStats:
    published: int = 0
    delivered: int = 0
    dropped: int = 0
    disconnected: int = 0
    subscribers: int = 0
    last_id: int = 0


@dataclass
class _Channel:
    name: str
    next_id: int = 1
    history: deque = field(default_factory=deque)      # (id, encoded bytes)
    # event loop -> the streams (catzilla._core) subscribed from it
    subscribers: dict = field(default_factory=dict)
    stats: ChannelStats = field(default_factory=ChannelStats)


class Subscription:
    """What ``Broadcast.subscribe`` returns: the content of an EventSourceResponse."""

    def __init__(self, hub: Broadcast, channel: str, last_event_id: str | None) -> None:
        self.hub = hub
        self.channel = channel
        self.last_event_id = last_event_id

    # Called by the core on the loop thread when the stream starts and when it ends.
    def _attach(self, stream: Any) -> None:
        self.hub._attach(self, stream)

    def _detach(self, stream: Any) -> None:
        self.hub._detach(self.channel, stream)

    def __repr__(self) -> str:
        return "<Subscription %r last_event_id=%r>" % (self.channel, self.last_event_id)


class Broadcast:
    def __init__(self, *, history: int = 1000, queue_size: int = 256,
                 slow: str = "drop_oldest") -> None:
        if slow not in ("drop_oldest", "disconnect"):
            raise ValueError("slow must be 'drop_oldest' or 'disconnect'")
        if history < 0 or queue_size < 1:
            raise ValueError("history must be >= 0 and queue_size >= 1")
        self.history = history
        self.queue_size = queue_size
        self.slow = slow
        self._channels: dict[str, _Channel] = {}
        # re-entrant: a fan-out that disconnects a slow subscriber detaches it meanwhile
        self._lock = threading.RLock()

    def _channel(self, name: str) -> _Channel:
        ch = self._channels.get(name)
        if ch is None:
            ch = self._channels[name] = _Channel(name)
        return ch

    # -- publishing ------------------------------------------------------------------------

    def publish(self, channel: str, data: Any, event: str | None = None,
                id: str | int | None = None) -> int:
        """Send an event to every subscriber of ``channel``; returns how many it reached
        (from another thread: how many were subscribed when it was sent). Without an ``id``
        the event gets the channel's next one (1, 2, 3, ...)."""
        with self._lock:
            ch = self._channel(channel)
            if id is None:
                event_id = ch.next_id
                ch.next_id += 1
            else:
                event_id = id
                if isinstance(id, int) or (isinstance(id, str) and id.isdigit()):
                    ch.next_id = max(ch.next_id, int(id) + 1)
            payload = format_sse(data=data, event=event, id=str(event_id))
            if self.history:
                ch.history.append((str(event_id), payload))
                if len(ch.history) > self.history:
                    ch.history.popleft()
            ch.stats.published += 1
            ch.stats.last_id = ch.next_id - 1
            here = _running_loop()
            reached = 0
            for loop, streams in list(ch.subscribers.items()):
                if loop is here:
                    reached += self._deliver(ch, streams, payload)
                else:
                    reached += len(streams)
                    loop.call_soon_threadsafe(self._deliver, ch, streams, payload)
            return reached

    def _deliver(self, ch: _Channel, streams: set, payload: bytes) -> int:
        """On the subscribers' loop: the core writes payload to each of them."""
        reached, dropped, disconnected = _fanout(
            streams, payload, self.queue_size, self.slow == "disconnect")
        with self._lock:
            ch.stats.delivered += reached
            ch.stats.dropped += dropped
            ch.stats.disconnected += disconnected
        return reached

    # -- subscribing -----------------------------------------------------------------------

    def subscribe(self, channel: str, last_event_id: str | None = None) -> Subscription:
        """The content of an EventSourceResponse that streams ``channel``; with a
        ``last_event_id`` it first replays what came after that id."""
        return Subscription(self, channel, last_event_id)

    def _replay(self, ch: _Channel, last_event_id: str | None) -> list[bytes]:
        if last_event_id is None or not self.history:
            return []
        ids = [i for i, _ in ch.history]
        if last_event_id in ids:
            return [p for _, p in list(ch.history)[ids.index(last_event_id) + 1:]]
        if last_event_id.isdigit() and ids and ids[0].isdigit():
            first = int(ids[0])
            if int(last_event_id) >= ch.next_id - 1:
                return []          # nothing new since then
            lost = max(0, first - int(last_event_id) - 1)
        else:
            lost = None
        notice = format_sse(data={"lost": lost, "last_event_id": last_event_id,
                                  "resumed_from": ids[0] if ids else None}, event="lost")
        return [notice] + [p for _, p in ch.history]

    def _attach(self, sub: Subscription, stream: Any) -> None:
        with self._lock:
            ch = self._channel(sub.channel)
            for payload in self._replay(ch, sub.last_event_id):
                stream._enqueue(payload)
            ch.subscribers.setdefault(stream.server.loop, set()).add(stream)
            ch.stats.subscribers += 1

    def _detach(self, channel: str, stream: Any) -> None:
        with self._lock:
            ch = self._channels.get(channel)
            streams = ch.subscribers.get(stream.server.loop) if ch is not None else None
            if streams is not None and stream in streams:
                streams.discard(stream)
                ch.stats.subscribers -= 1
                if not streams:
                    del ch.subscribers[stream.server.loop]

    # -- introspection ---------------------------------------------------------------------

    def subscribers(self, channel: str) -> int:
        ch = self._channels.get(channel)
        return ch.stats.subscribers if ch else 0

    def stats(self) -> dict[str, ChannelStats]:
        with self._lock:
            return {name: ChannelStats(**vars(ch.stats)) for name, ch in self._channels.items()}

    def channels(self) -> list[str]:
        return list(self._channels)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
