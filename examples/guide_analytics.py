# Streaming guide, "Real-Time Applications / Live Analytics Dashboard".
#
# Changes from the guide's code:
# - Indentation: track_page_view(), track_api_call() and track_error() call
#   broadcast_analytics_update() AFTER their `with analytics_lock:` block, not inside it.
#   broadcast_analytics_update() takes analytics_lock itself and threading.Lock is not
#   reentrant: called with the lock held, the simulation thread deadlocks on its first event and
#   no update is ever streamed (subscribers only get heartbeats). The guide's flattened text
#   allows both readings; this is the one that works.
# - broadcast_analytics_update(): the loop variable was called `queue`, which made `queue` a
#   local name for the whole function, so `except queue.Full` looked up `.Full` on a Queue
#   object: the first full subscriber queue raised AttributeError and killed the simulation
#   thread. Renamed to `subscriber_queue`.
# - stream_analytics_updates() adds and removes its subscriber under analytics_lock. The guide
#   did it unlocked while broadcast_analytics_update() iterates over analytics_subscribers on the
#   simulation thread, so a client connecting or leaving during a broadcast raised "dictionary
#   changed size during iteration" and killed the simulation thread.
# - app.listen(port=8000) takes the port from the PORT environment variable (default 8000) and
#   the host from HOST (default "0.0.0.0", catzilla's default), so the example can run on any
#   port (the tests use a free loopback port); `import os` was added for this.
# ruff: noqa: F401, I001  (the guide's code is kept as written)
import os

from catzilla import Catzilla, Request, Response, StreamingResponse
import json
import time
import random
import queue
from datetime import datetime
from threading import Thread, Lock

app = Catzilla()

# Simple analytics data
analytics_data = {
    "page_views": 0,
    "unique_visitors": set(),
    "api_calls": 0,
    "errors": 0
}
analytics_lock = Lock()
analytics_subscribers = {}


def track_page_view(visitor_id):
    """Track page view"""
    with analytics_lock:
        analytics_data["page_views"] += 1
        analytics_data["unique_visitors"].add(visitor_id)
    broadcast_analytics_update()


def track_api_call():
    """Track API call"""
    with analytics_lock:
        analytics_data["api_calls"] += 1
    broadcast_analytics_update()


def track_error():
    """Track error"""
    with analytics_lock:
        analytics_data["errors"] += 1
    broadcast_analytics_update()


def broadcast_analytics_update():
    """Broadcast analytics update"""
    with analytics_lock:
        update = {
            "page_views": analytics_data["page_views"],
            "unique_visitors": len(analytics_data["unique_visitors"]),
            "api_calls": analytics_data["api_calls"],
            "errors": analytics_data["errors"],
            "timestamp": datetime.now().isoformat()
        }

        for subscriber_id, subscriber_queue in analytics_subscribers.items():
            try:
                subscriber_queue.put_nowait(update)
            except queue.Full:
                print(f"Analytics queue full for subscriber {subscriber_id}")


def simulate_analytics_data():
    """Simulate incoming analytics data"""
    import uuid

    counter = 0
    while True:
        counter += 1

        # Simulate random events
        if counter % 3 == 0:
            track_page_view(str(uuid.uuid4()))

        if counter % 2 == 0:
            track_api_call()

        if counter % 10 == 0:
            track_error()

        time.sleep(2)


# Start analytics simulation
Thread(target=simulate_analytics_data, daemon=True).start()


def stream_analytics_updates(subscriber_id):
    """Stream analytics updates"""
    subscriber_queue = queue.Queue(maxsize=50)
    with analytics_lock:
        analytics_subscribers[subscriber_id] = subscriber_queue

    try:
        # Send current state first
        current_state = {
            "page_views": analytics_data["page_views"],
            "unique_visitors": len(analytics_data["unique_visitors"]),
            "api_calls": analytics_data["api_calls"],
            "errors": analytics_data["errors"],
            "timestamp": datetime.now().isoformat()
        }
        yield f"data: {json.dumps(current_state)}\n\n"

        # Stream updates
        while True:
            try:
                update = subscriber_queue.get(timeout=5.0)
                yield f"data: {json.dumps(update)}\n\n"
            except queue.Empty:
                # Send heartbeat
                heartbeat = {"type": "heartbeat", "timestamp": datetime.now().isoformat()}
                yield f"data: {json.dumps(heartbeat)}\n\n"
    finally:
        with analytics_lock:
            analytics_subscribers.pop(subscriber_id, None)


@app.get("/analytics-stream")
def analytics_dashboard_stream(request: Request) -> Response:
    """Stream analytics for dashboard"""
    import uuid
    subscriber_id = str(uuid.uuid4())

    print(f"📊 Analytics subscriber connected: {subscriber_id}")

    return StreamingResponse(
        stream_analytics_updates(subscriber_id),
        content_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive"
        }
    )


if __name__ == "__main__":
    print("🚀 Starting analytics dashboard server...")
    print("Try: curl -N http://localhost:8000/analytics-stream")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
