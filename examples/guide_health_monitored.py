# Streaming guide, "Performance Optimization / Connection Health Monitoring".
#
# Changes from the guide's code:
# - app.listen(port=8000) takes the port from the PORT environment variable (default 8000) and
#   the host from HOST (default "0.0.0.0", catzilla's default), so the example can run on any
#   port (the tests use a free loopback port); `import os` was added for this.
# ruff: noqa: F541, I001  (the guide's code is kept as written)
import os

from catzilla import Catzilla, Request, Response, StreamingResponse
import json
import time
from datetime import datetime

app = Catzilla()


def monitored_stream():
    """Stream with health checks"""
    last_ping = time.time()
    ping_interval = 10  # Ping every 10 seconds
    counter = 0

    while True:
        current_time = time.time()

        # Send ping if needed
        if current_time - last_ping >= ping_interval:
            ping_message = {
                "type": "ping",
                "timestamp": datetime.now().isoformat(),
                "server_time": current_time
            }
            yield f"event: ping\n"
            yield f"data: {json.dumps(ping_message)}\n\n"
            last_ping = current_time

        # Send regular data
        data_message = {
            "type": "data",
            "counter": counter,
            "timestamp": datetime.now().isoformat(),
            "status": "healthy"
        }
        yield f"data: {json.dumps(data_message)}\n\n"

        counter += 1
        time.sleep(1)


@app.get("/health-monitored-stream")
def health_monitored_stream(request: Request) -> Response:
    """Stream with connection health monitoring"""
    return StreamingResponse(
        monitored_stream(),
        content_type="text/event-stream",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive",
            "X-Accel-Buffering": "no"  # Disable nginx buffering
        }
    )


if __name__ == "__main__":
    print("🚀 Starting health monitored streaming server...")
    print("Try: curl -N http://localhost:8000/health-monitored-stream")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
