# Streaming guide, "Connection Management / Broadcasting Example".
#
# Changes from the guide's code:
# - app.listen(port=8000) takes the port from the PORT environment variable (default 8000) and
#   the host from HOST (default "0.0.0.0", catzilla's default), so the example can run on any
#   port (the tests use a free loopback port); `import os` was added for this.
# ruff: noqa: I001  (the guide's code is kept as written)
import os

from catzilla import Catzilla, Request, Response, StreamingResponse
import json
import time
from datetime import datetime
from threading import Thread, Lock
import queue

app = Catzilla()

# Simple broadcasting system
message_queues = {}
queues_lock = Lock()


def broadcast_message(message):
    """Broadcast message to all connected clients"""
    with queues_lock:
        for connection_id, msg_queue in message_queues.items():
            try:
                msg_queue.put_nowait(message)
            except queue.Full:
                print(f"Queue full for connection {connection_id}")


def periodic_broadcaster():
    """Send periodic broadcast messages"""
    counter = 0
    while True:
        message = {
            "type": "broadcast",
            "id": counter,
            "timestamp": datetime.now().isoformat(),
            "message": f"Broadcast message {counter}"
        }
        broadcast_message(message)
        counter += 1
        time.sleep(5)


# Start background broadcaster
Thread(target=periodic_broadcaster, daemon=True).start()


def stream_broadcasts(connection_id):
    """Stream broadcast messages for a connection"""
    msg_queue = queue.Queue(maxsize=100)

    with queues_lock:
        message_queues[connection_id] = msg_queue

    try:
        while True:
            try:
                # Get message with timeout
                message = msg_queue.get(timeout=1.0)
                yield f"data: {json.dumps(message)}\n\n"
            except queue.Empty:
                # Send heartbeat
                heartbeat = {"type": "heartbeat", "timestamp": datetime.now().isoformat()}
                yield f"data: {json.dumps(heartbeat)}\n\n"
    finally:
        with queues_lock:
            message_queues.pop(connection_id, None)


@app.get("/broadcast-stream")
def join_broadcast_stream(request: Request) -> Response:
    """Join broadcast stream"""
    import uuid
    connection_id = str(uuid.uuid4())

    print(f"➕ New broadcast subscriber: {connection_id}")

    return StreamingResponse(
        stream_broadcasts(connection_id),
        content_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Connection-ID": connection_id
        }
    )


@app.post("/broadcast")
def send_broadcast(request: Request) -> Response:
    """Send message to all connected clients"""
    # Get message from request body (simplified for example)
    message = {
        "type": "manual_broadcast",
        "message": "Hello from server!",
        "timestamp": datetime.now().isoformat()
    }

    # Broadcast to all connected clients
    broadcast_message(message)

    return Response(
        json.dumps({
            "status": "broadcast_sent",
            "message": message,
            "recipients": len(message_queues)
        }),
        content_type="application/json"
    )


if __name__ == "__main__":
    print("🚀 Starting broadcasting server...")
    print("Try: curl -N http://localhost:8000/broadcast-stream")
    print("Send: curl -X POST http://localhost:8000/broadcast")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
