# Streaming guide, "Real-Time Applications / Simple Chat System".
#
# Changes from the guide's code:
# - Indentation: in add_chat_client() and remove_chat_client() the join/leave notice is built
#   and broadcast AFTER the `with chat_lock:` block, not inside it. broadcast_chat_message()
#   takes chat_lock itself and threading.Lock is not reentrant, so calling it with chat_lock
#   held would deadlock the first client to join (and, with it, every later one). The guide's
#   flattened text allows both readings; this is the one that works.
# - broadcast_chat_message() updates message_history inside `with chat_lock:` (the guide did it
#   before taking the lock). It is called from the loop thread (POST /chat/send) and from the
#   worker threads running the streams (join/leave notices) at once; the unlocked
#   read-trim-assign `message_history[:] = message_history[-50:]` could drop a message another
#   thread had just appended, and the history order could differ from the delivery order.
# - app.listen(port=8000) takes the port from the PORT environment variable (default 8000) and
#   the host from HOST (default "0.0.0.0", catzilla's default), so the example can run on any
#   port (the tests use a free loopback port); `import os` was added for this.
#
# Left as the guide has it: a client joins (its own "user_joined" goes to its queue and the
# history) before it is sent the last 10 messages of history, so it sees its own join notice
# twice.
# ruff: noqa: F401, I001  (the guide's code is kept as written)
import os

from catzilla import Catzilla, Request, Response, StreamingResponse
import json
import time
from datetime import datetime
from threading import Lock
import queue

app = Catzilla()

# Simple chat room
chat_clients = {}
chat_lock = Lock()
message_history = []


def add_chat_client(client_id, client_name):
    """Add client to chat room"""
    client_queue = queue.Queue(maxsize=100)

    with chat_lock:
        chat_clients[client_id] = {
            "name": client_name,
            "queue": client_queue,
            "joined_at": datetime.now()
        }

    # Send join notification
    join_message = {
        "type": "user_joined",
        "user": client_name,
        "timestamp": datetime.now().isoformat(),
        "clients_count": len(chat_clients)
    }
    broadcast_chat_message(join_message)

    return client_queue


def remove_chat_client(client_id):
    """Remove client from chat room"""
    with chat_lock:
        client = chat_clients.pop(client_id, None)

    if client:
        leave_message = {
            "type": "user_left",
            "user": client["name"],
            "timestamp": datetime.now().isoformat(),
            "clients_count": len(chat_clients)
        }
        broadcast_chat_message(leave_message)


def broadcast_chat_message(message):
    """Broadcast message to all chat clients"""
    with chat_lock:
        message_history.append(message)

        # Keep only last 50 messages
        if len(message_history) > 50:
            message_history[:] = message_history[-50:]

        for client_id, client in chat_clients.items():
            try:
                client["queue"].put_nowait(message)
            except queue.Full:
                print(f"Message queue full for client {client_id}")


def stream_chat_messages(client_id, client_name):
    """Stream chat messages for a client"""
    client_queue = add_chat_client(client_id, client_name)

    try:
        # Send recent message history
        for msg in message_history[-10:]:  # Last 10 messages
            yield f"data: {json.dumps(msg)}\n\n"

        # Stream new messages
        while True:
            try:
                message = client_queue.get(timeout=1.0)
                yield f"data: {json.dumps(message)}\n\n"
            except queue.Empty:
                # Send heartbeat
                heartbeat = {"type": "heartbeat", "timestamp": datetime.now().isoformat()}
                yield f"data: {json.dumps(heartbeat)}\n\n"
    finally:
        remove_chat_client(client_id)


@app.get("/chat/stream")
def join_chat_stream(request: Request) -> Response:
    """Join chat stream"""
    import uuid
    client_id = str(uuid.uuid4())
    client_name = request.query_params.get("name", f"User_{client_id[:8]}")

    print(f"🎯 Chat client joined: {client_name} ({client_id})")

    return StreamingResponse(
        stream_chat_messages(client_id, client_name),
        content_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive"
        }
    )


@app.post("/chat/send")
def send_chat_message(request: Request) -> Response:
    """Send message to chat room"""
    # Simple message sending (in real app, would parse JSON from body)
    sender = request.query_params.get("sender", "Anonymous")
    message_text = request.query_params.get("message", "Hello!")

    chat_message = {
        "type": "chat_message",
        "sender": sender,
        "message": message_text,
        "timestamp": datetime.now().isoformat()
    }

    broadcast_chat_message(chat_message)

    return Response(
        json.dumps({"status": "message_sent", "message": chat_message}),
        content_type="application/json"
    )


if __name__ == "__main__":
    print("🚀 Starting chat server...")
    print("Join chat: curl -N 'http://localhost:8000/chat/stream?name=Alice'")
    print("Send message: curl -X POST 'http://localhost:8000/chat/send?sender=Alice&message=Hello'")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
