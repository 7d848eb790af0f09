# Streaming guide, "Real-Time Data Streaming".
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

app = Catzilla()


def generate_realtime_data():
    """Generate real-time data stream"""
    count = 0
    for i in range(10):
        count += 1
        data = {
            "timestamp": datetime.now().isoformat(),
            "count": count,
            "value": count * 1.5,
            "status": "active"
        }
        # Format as simple JSON lines
        yield f"{json.dumps(data)}\n"
        time.sleep(1)

    # Final message
    yield f'{{"status": "completed", "total_items": {count}}}\n'


@app.get("/stream/realtime")
def stream_realtime_data(request: Request) -> Response:
    """Stream real-time data"""
    return StreamingResponse(
        generate_realtime_data(),
        content_type="text/plain",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive"
        }
    )


if __name__ == "__main__":
    print("🚀 Starting real-time streaming example...")
    print("Try: curl -N http://localhost:8000/stream/realtime")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
