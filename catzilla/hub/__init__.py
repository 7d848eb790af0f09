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

from catzilla.hub._shared import ChannelStats, Subscription
from catzilla.hub.memory import Broadcast
from catzilla.hub.redis import RedisBroadcast

__all__ = ["Broadcast", "ChannelStats", "RedisBroadcast", "Subscription"]
