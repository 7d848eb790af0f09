"""What the in-process hub and the Redis hub share: the subscription the core attaches to a
stream, per-channel counters, and the encoding of ids and loss notices."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catzilla._sse import format_sse

if TYPE_CHECKING:
    from catzilla.hub.memory import Broadcast

logger = logging.getLogger("catzilla.broadcast")


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
