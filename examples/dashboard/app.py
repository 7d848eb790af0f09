"""A live analytics dashboard: a page with a chart fed by Server-Sent Events from the hub.

    PORT=8000 python examples/dashboard/app.py
    open http://127.0.0.1:8000/                 the dashboard (index.html next to this file)
    curl -N http://127.0.0.1:8000/analytics-stream

A simulation thread publishes a snapshot of the counters on a hub channel every
``DASHBOARD_INTERVAL`` seconds (default 1); the hub encodes it once and the core writes it to
every open dashboard. The page (plain HTML, inline JS and an inline SVG chart: nothing is
loaded from anywhere else) reads the stream through the streaming guide's reconnecting
EventSource wrapper and lists the id of every event it received.

No event is lost or shown twice across a reconnect: every event has an id (1, 2, 3... on the
channel), the page passes the last id it saw when it reconnects (``?lastEventId=``, see the
comment in index.html for why not only the ``Last-Event-ID`` header), and the hub first replays
exactly the events after that id from its history (the last 1,000), then goes live.

Environment: PORT, HOST (as the guide's examples), DASHBOARD_INTERVAL (seconds between
snapshots), PING (seconds of silence before a ``: ping`` comment, default 15) and
DASHBOARD_TEST_ROUTES=1, which adds ``POST /test/drop-streams``: the server closes every open
event stream (the browser test uses it to force a reconnect). Never enable it in production.
"""

from __future__ import annotations

import os
import random
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from catzilla import Catzilla, EventSourceResponse, HTMLResponse, JSONResponse, Request, Response

PAGE = Path(__file__).resolve().parent / "index.html"
CHANNEL = "analytics"
INTERVAL = float(os.environ.get("DASHBOARD_INTERVAL", "1"))
PING = float(os.environ.get("PING", "15"))
TEST_ROUTES = os.environ.get("DASHBOARD_TEST_ROUTES") == "1"

app = Catzilla()
hub = app.broadcast

counters: dict[str, Any] = {"page_views": 0, "unique_visitors": 0, "api_calls": 0, "errors": 0}


def snapshot() -> dict[str, Any]:
    return dict(counters, timestamp=datetime.now().isoformat(timespec="milliseconds"))


def simulate_traffic() -> None:
    """Made-up traffic: one snapshot of the counters per tick (only this thread writes them)."""
    rng = random.Random()
    while True:
        time.sleep(INTERVAL)
        views = rng.randint(0, 6)
        counters["page_views"] += views
        counters["unique_visitors"] += rng.randint(0, views)
        counters["api_calls"] += rng.randint(1, 12)
        counters["errors"] += rng.random() < 0.1
        hub.publish(CHANNEL, snapshot())


# Event id 0 marks the start of the channel, so that "replay from just before the newest
# snapshot" always names an id the hub holds (the replay is then exact and never begins with
# an `event: lost`). The first snapshot, all zeros, is id 1.
hub.publish(CHANNEL, {"type": "start", "timestamp": datetime.now().isoformat()},
            event="start", id=0)
hub.publish(CHANNEL, snapshot())
threading.Thread(target=simulate_traffic, daemon=True, name="traffic-simulation").start()


@app.get("/")
def dashboard(request: Request) -> Response:
    return HTMLResponse(PAGE.read_text("utf-8"), headers={"Cache-Control": "no-cache"})


@app.get("/analytics-stream")
def analytics_stream(request: Request) -> Response:
    # The Last-Event-ID header comes from a browser's own reconnection; ?lastEventId= from the
    # page's wrapper, which opens a new EventSource (that sends no header). A newcomer gets
    # the newest snapshot first (the replay after the id before it), then the live ones.
    since, via = request.last_event_id, "Last-Event-ID header"
    if since is None:
        since, via = request.query_params.get("lastEventId"), "?lastEventId="
    if since is None:
        since = str(hub.stats()[CHANNEL].last_id - 1)
        print(f"📊 dashboard connected from {request.client}", flush=True)
    else:
        print(f"📊 dashboard resumed after event {since} "
              f"(newest is {hub.stats()[CHANNEL].last_id}; from the {via})", flush=True)
    # retry: a browser that reconnects by itself (a plain EventSource) waits 1 s, not 3
    return EventSourceResponse(hub.subscribe(CHANNEL, since), ping=PING, retry=1000)


if TEST_ROUTES:
    @app.post("/test/drop-streams")
    def drop_streams(request: Request) -> Response:
        """Close every open event stream, as a restarting proxy or a network cut would."""
        dropped = 0
        for conn in list(app.connections):
            if conn.stream_kind:
                conn.close()
                dropped += 1
        print(f"✂️  dropped {dropped} stream(s) after event {hub.stats()[CHANNEL].last_id}",
              flush=True)
        return JSONResponse({"dropped": dropped, "last_id": hub.stats()[CHANNEL].last_id})


if __name__ == "__main__":
    print("🚀 Starting the analytics dashboard...")
    print("Open: http://localhost:8000/")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
