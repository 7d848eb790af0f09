# Streaming guide, "Connection Management / Simple Connection Tracking".
#
# Changes from the guide's code:
# - app.listen(port=8000) takes the port from the PORT environment variable (default 8000) and
#   the host from HOST (default "0.0.0.0", catzilla's default), so the example can run on any
#   port (the tests use a free loopback port); `import os` was added for this.
#
# Left as the guide has it: connections are never removed from active_connections (the guide's
# own note says so), so "active_connections" counts every connection ever made.
# ruff: noqa: I001, PLW0602  (the guide's code is kept as written)
import os

from catzilla import Catzilla, Request, Response, StreamingResponse
import json
import time
from datetime import datetime
from collections import defaultdict

app = Catzilla()

# Simple connection tracking
active_connections = defaultdict(dict)
connection_count = 0


def generate_connection_status():
    """Generate connection status updates"""
    global connection_count

    for i in range(10):
        status = {
            "timestamp": datetime.now().isoformat(),
            "active_connections": len(active_connections),
            "total_connections": connection_count,
            "update_number": i + 1
        }

        yield f"data: {json.dumps(status)}\n\n"
        time.sleep(2)


@app.get("/stream/status")
def stream_connection_status(request: Request) -> Response:
    """Stream connection status updates"""
    global connection_count

    # Track this connection
    connection_id = f"conn_{connection_count}"
    connection_count += 1

    active_connections[connection_id] = {
        "connected_at": datetime.now(),
        "client_ip": request.client.host if hasattr(request, 'client') else "unknown"
    }

    print(f"➕ New connection: {connection_id}")

    try:
        response = StreamingResponse(
            generate_connection_status(),
            content_type="text/event-stream",
            headers={
                "Cache-Control": "no-cache",
                "Connection": "keep-alive",
                "X-Connection-ID": connection_id
            }
        )
        return response
    finally:
        # Note: In real implementation, cleanup would happen on disconnect
        pass


if __name__ == "__main__":
    print("🚀 Starting connection tracking server...")
    print("Try: curl -N http://localhost:8000/stream/status")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
