"""The guide's "Simple Chat System" (examples/guide_chat.py) on catzilla's broadcast hub.

Same endpoints and messages as the guide's version:

    GET  /chat/stream?name=Alice             join: an SSE stream of the room
    POST /chat/send?sender=Alice&message=Hi  say something to everyone

What the hub replaces: the guide gives every client a queue.Queue and a worker thread that
polls it once a second (a JSON "heartbeat" event when it is empty) and keeps the history in a
list. Here the room is a hub channel: ``hub.publish`` encodes a message once and the core writes
the same bytes to every member's socket; the hub keeps the last 50 messages (the guide's
limit) and replays them by event id; idle streams get a ``: ping`` comment from
EventSourceResponse's libuv timer (``PING`` seconds, default 15) instead of heartbeat events.

Differences a client can see:
- A newcomer sees its own "user_joined" once (the guide sent it twice: live and in history).
- Every event has an id. A browser EventSource that reconnects sends ``Last-Event-ID`` and gets
  exactly the messages it missed instead of the last 10 again (it still joins again, as in the
  guide, where every connection is a new client).
- "user_left" comes within ``LEAVE_CHECK`` seconds (default 0.5) of the disconnect: catzilla has
  no disconnect callback for hub streams, so a timer on the loop checks
  ``request.is_disconnected()`` of the members while the room is not empty.

Every handler and the leave check run on the event loop thread, so the member table needs no
lock (``hub.publish`` itself is thread-safe).

    PORT=8000 python examples/hub_chat.py
    curl -N 'http://localhost:8000/chat/stream?name=Alice'
    curl -X POST 'http://localhost:8000/chat/send?sender=Alice&message=Hello'
"""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import datetime
from typing import Any

from catzilla import Broadcast, Catzilla, EventSourceResponse, JSONResponse, Request, Response

app = Catzilla()
hub = Broadcast(history=50)  # the guide keeps the last 50 messages
CHANNEL = "chat"
HISTORY_ON_JOIN = 10  # a newcomer gets the last 10 messages, as in the guide
PING = float(os.environ.get("PING", "15"))
LEAVE_CHECK = float(os.environ.get("LEAVE_CHECK", "0.5"))

# Event id 0 marks the start of the room, and the messages get ids 1, 2, 3... A replay starts
# after the Last-Event-ID it is given; with this anchor that id is always one the hub holds
# (Last-Event-ID 0 = "everything since the room opened"), so the replay is exact and never
# begins with an `event: lost`. It is an `event: room_opened`, which onmessage ignores.
hub.publish(CHANNEL, {"type": "room_opened", "timestamp": datetime.now().isoformat()},
            event="room_opened", id=0)

chat_clients: dict[str, dict[str, Any]] = {}
_leave_check: asyncio.TimerHandle | None = None


def broadcast_chat_message(message: dict[str, Any]) -> int:
    """Send a message to everyone in the room; returns how many streams it reached."""
    return hub.publish(CHANNEL, message)


def add_chat_client(client_id: str, client_name: str, request: Request) -> None:
    chat_clients[client_id] = {
        "name": client_name,
        "request": request,
        "joined_at": datetime.now(),
    }
    broadcast_chat_message({
        "type": "user_joined",
        "user": client_name,
        "timestamp": datetime.now().isoformat(),
        "clients_count": len(chat_clients),
    })
    _watch_for_leavers()


def remove_chat_client(client_id: str) -> None:
    client = chat_clients.pop(client_id, None)
    if client:
        print(f"👋 Chat client left: {client['name']} ({client_id})")
        broadcast_chat_message({
            "type": "user_left",
            "user": client["name"],
            "timestamp": datetime.now().isoformat(),
            "clients_count": len(chat_clients),
        })


def _watch_for_leavers() -> None:
    global _leave_check
    if _leave_check is None:
        _leave_check = asyncio.get_running_loop().call_later(LEAVE_CHECK, _check_leavers)


def _check_leavers() -> None:
    global _leave_check
    _leave_check = None
    for client_id, client in list(chat_clients.items()):
        if client["request"].is_disconnected():
            remove_chat_client(client_id)
    if chat_clients:
        _watch_for_leavers()


def _recent(count: int) -> str:
    """The Last-Event-ID that replays the last ``count`` messages (or all there are)."""
    return str(max(hub.stats()[CHANNEL].last_id - count, 0))


@app.get("/chat/stream")
def join_chat_stream(request: Request) -> Response:
    """Join chat stream"""
    client_id = str(uuid.uuid4())
    client_name = request.query_params.get("name", f"User_{client_id[:8]}")
    print(f"🎯 Chat client joined: {client_name} ({client_id})")

    add_chat_client(client_id, client_name, request)
    # A reconnecting EventSource gets what it missed; a newcomer the last 10 messages (its own
    # join notice among them: it was published just above, before this stream subscribed).
    since = request.last_event_id or _recent(HISTORY_ON_JOIN)
    return EventSourceResponse(hub.subscribe(CHANNEL, since), ping=PING)


@app.post("/chat/send")
def send_chat_message(request: Request) -> Response:
    """Send message to chat room"""
    sender = request.query_params.get("sender", "Anonymous")
    message_text = request.query_params.get("message", "Hello!")
    chat_message = {
        "type": "chat_message",
        "sender": sender,
        "message": message_text,
        "timestamp": datetime.now().isoformat(),
    }
    broadcast_chat_message(chat_message)
    return JSONResponse({"status": "message_sent", "message": chat_message})


if __name__ == "__main__":
    print("🚀 Starting chat server (hub)...")
    print("Join chat: curl -N 'http://localhost:8000/chat/stream?name=Alice'")
    print("Send message: curl -X POST 'http://localhost:8000/chat/send?sender=Alice&message=Hello'")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
