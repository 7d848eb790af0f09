"""The guide's "Live Analytics Dashboard" (examples/guide_analytics.py) on catzilla's hub.

Same endpoint and messages as the guide's version:

    GET /analytics-stream   the current counters first, then every update

What the hub replaces: the guide gives every subscriber a queue.Queue and a worker thread that
polls it (a JSON "heartbeat" event after 5 s without updates). Here the simulation thread
publishes each update once on a hub channel and the core writes the same bytes to every
subscriber; idle streams get a ``: ping`` comment from EventSourceResponse's libuv timer
(``PING`` seconds, default 5 like the guide's heartbeat).

"Current state first" without a per-subscriber generator: every update is a full snapshot of
the counters, so a newcomer is subscribed as if it had already seen all but the newest
snapshot; the hub's replay then sends that snapshot, then the live updates. A browser
EventSource that reconnects sends ``Last-Event-ID`` and gets every update it missed.

    PORT=8000 python examples/hub_analytics.py
    curl -N http://localhost:8000/analytics-stream
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from threading import Lock, Thread
from typing import Any

from catzilla import Catzilla, EventSourceResponse, Request, Response

app = Catzilla()
hub = app.broadcast
CHANNEL = "analytics"
PING = float(os.environ.get("PING", "5"))
TICK = float(os.environ.get("ANALYTICS_TICK", "2"))  # the guide's simulation: every 2 s

analytics_data: dict[str, Any] = {
    "page_views": 0,
    "unique_visitors": set(),
    "api_calls": 0,
    "errors": 0,
}
analytics_lock = Lock()


def _snapshot() -> dict[str, Any]:
    return {
        "page_views": analytics_data["page_views"],
        "unique_visitors": len(analytics_data["unique_visitors"]),
        "api_calls": analytics_data["api_calls"],
        "errors": analytics_data["errors"],
        "timestamp": datetime.now().isoformat(),
    }


def broadcast_analytics_update() -> None:
    """Publish the counters. Called with analytics_lock held, so the snapshots' ids follow the
    order of the changes (the hub's lock is never held while taking analytics_lock)."""
    hub.publish(CHANNEL, _snapshot())


def track_page_view(visitor_id: str) -> None:
    with analytics_lock:
        analytics_data["page_views"] += 1
        analytics_data["unique_visitors"].add(visitor_id)
        broadcast_analytics_update()


def track_api_call() -> None:
    with analytics_lock:
        analytics_data["api_calls"] += 1
        broadcast_analytics_update()


def track_error() -> None:
    with analytics_lock:
        analytics_data["errors"] += 1
        broadcast_analytics_update()


def simulate_analytics_data() -> None:
    """Simulate incoming analytics data (the guide's simulation)."""
    counter = 0
    while True:
        counter += 1
        if counter % 3 == 0:
            track_page_view(str(uuid.uuid4()))
        if counter % 2 == 0:
            track_api_call()
        if counter % 10 == 0:
            track_error()
        time.sleep(TICK)


# Event id 0 marks the start of the channel, so that "replay from just before the newest
# snapshot" always names an id the hub holds (the replay is then exact and never begins with
# an `event: lost`); the first snapshot, the all-zero state, is id 1.
hub.publish(CHANNEL, {"type": "start", "timestamp": datetime.now().isoformat()},
            event="start", id=0)
with analytics_lock:
    broadcast_analytics_update()
Thread(target=simulate_analytics_data, daemon=True, name="analytics-simulation").start()


def since_newest_snapshot() -> str:
    """A Last-Event-ID whose replay starts with the newest snapshot (ids >= 1)."""
    return str(hub.stats()[CHANNEL].last_id - 1)


@app.get("/analytics-stream")
def analytics_dashboard_stream(request: Request) -> Response:
    """Stream analytics for dashboard"""
    print(f"📊 Analytics subscriber connected: {uuid.uuid4()}")
    # If the simulation publishes between here and the subscription, the replay simply
    # starts with an older snapshot followed by the newer ones: still state first.
    since = request.last_event_id or since_newest_snapshot()
    return EventSourceResponse(hub.subscribe(CHANNEL, since), ping=PING)


if __name__ == "__main__":
    print("🚀 Starting analytics dashboard server (hub)...")
    print("Try: curl -N http://localhost:8000/analytics-stream")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
