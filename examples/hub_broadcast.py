"""The guide's "Broadcasting Example" (examples/guide_broadcast.py) on catzilla's broadcast hub.

Same endpoints and messages as the guide's version:

    GET  /broadcast-stream   an SSE stream of every broadcast (X-Connection-ID header)
    POST /broadcast          broadcast a manual message; answers how many streams it reached

What the hub replaces: the guide gives every connection a queue.Queue and a worker thread
that polls it once a second and sends a JSON "heartbeat" event when it is empty. Here a
connection is only a subscription: ``hub.publish`` encodes an event once and the core writes
the same bytes to every subscriber's socket; idle streams get a ``: ping`` comment from
EventSourceResponse's libuv timer (``PING`` seconds, default 15). Each event carries an id
(1, 2, 3... per channel), so an EventSource that reconnects with ``Last-Event-ID`` first gets
the broadcasts it missed. ``recipients`` is what ``publish`` returns: the streams it reached.

    PORT=8000 python examples/hub_broadcast.py
    curl -N http://localhost:8000/broadcast-stream
    curl -X POST http://localhost:8000/broadcast
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime
from threading import Thread

from catzilla import Catzilla, EventSourceResponse, JSONResponse, Request, Response

app = Catzilla()
hub = app.broadcast
CHANNEL = "broadcast"
PING = float(os.environ.get("PING", "15"))
# seconds between the periodic broadcasts (the guide: 5)
BROADCAST_INTERVAL = float(os.environ.get("BROADCAST_INTERVAL", "5"))


def periodic_broadcaster() -> None:
    """Send periodic broadcast messages (one thread for the whole app, as in the guide)."""
    counter = 0
    while True:
        hub.publish(CHANNEL, {
            "type": "broadcast",
            "id": counter,
            "timestamp": datetime.now().isoformat(),
            "message": f"Broadcast message {counter}",
        })
        counter += 1
        time.sleep(BROADCAST_INTERVAL)


Thread(target=periodic_broadcaster, daemon=True, name="periodic-broadcaster").start()


@app.get("/broadcast-stream")
def join_broadcast_stream(request: Request) -> Response:
    """Join broadcast stream"""
    connection_id = str(uuid.uuid4())
    print(f"➕ New broadcast subscriber: {connection_id}")
    return EventSourceResponse(
        hub.subscribe(CHANNEL, request.last_event_id),
        ping=PING,
        headers={"X-Connection-ID": connection_id},
    )


@app.post("/broadcast")
def send_broadcast(request: Request) -> Response:
    """Send message to all connected clients"""
    message = {
        "type": "manual_broadcast",
        "message": "Hello from server!",
        "timestamp": datetime.now().isoformat(),
    }
    # Handlers run on the event loop, so the hub writes to the subscribers right here and
    # returns how many streams it reached.
    recipients = hub.publish(CHANNEL, message)
    return JSONResponse({"status": "broadcast_sent", "message": message,
                         "recipients": recipients})


if __name__ == "__main__":
    print("🚀 Starting broadcasting server (hub)...")
    print("Try: curl -N http://localhost:8000/broadcast-stream")
    print("Send: curl -X POST http://localhost:8000/broadcast")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
