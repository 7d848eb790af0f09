# Streaming guide, "Quick Start / Basic Server-Sent Events".
#
# Changes from the guide's code:
# - `JSONResponse` is imported: home() uses it, but the guide's import line forgot it
#   (NameError on the first GET /).
# - app.listen(port=8000) takes the port from the PORT environment variable (default 8000) and
#   the host from HOST (default "0.0.0.0", catzilla's default), so the example can run on any
#   port (the tests use a free loopback port); `import os` was added for this.
#
# Left as the guide has it: each event's data is a Python dict written with single quotes
# ({'count': 0, ...}), which the guide's client JavaScript cannot JSON.parse(event.data); a
# client of this endpoint should read it as text (json.dumps in the generator would fix it).
# ruff: noqa: F401, I001  (the guide's code is kept as written)
import os

from catzilla import Catzilla, Request, Response, StreamingResponse, JSONResponse
import json
import time

app = Catzilla()


@app.get("/events")
def sse_endpoint(request: Request) -> Response:
    """Stream server-sent events for real-time updates"""
    def generate_sse():
        for i in range(20):
            # Format according to SSE specification
            yield f"id: {i}\n"
            yield f"data: {{'count': {i}, 'timestamp': {time.time()}}}\n\n"
            time.sleep(0.5)  # Add a delay to simulate real-time updates

    return StreamingResponse(
        generate_sse(),
        content_type="text/event-stream"
    )


@app.get("/")
def home(request: Request) -> Response:
    return JSONResponse({"message": "Hello with streaming!"})


if __name__ == "__main__":
    print("🚀 Starting Catzilla streaming example...")
    print("Try: curl -N http://localhost:8000/events")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
