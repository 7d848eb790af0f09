# Streaming guide, "Data Processing Pipeline".
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


def process_and_stream():
    """Process data and stream results"""
    # Simulate large dataset processing
    total_items = 100

    for i in range(total_items):
        # Simulate data processing
        processed_item = {
            "item_id": i,
            "processed_at": datetime.now().isoformat(),
            "result": f"Processed item {i}",
            "progress": round((i + 1) / total_items * 100, 2)
        }

        # Stream each processed item as JSON lines
        yield f"{json.dumps(processed_item)}\n"

        # Simulate processing time
        time.sleep(0.01)

    # Send completion notification
    completion = {
        "event": "completed",
        "total_processed": total_items,
        "completed_at": datetime.now().isoformat()
    }
    yield f"{json.dumps(completion)}\n"


@app.post("/process-stream")
def stream_data_processing(request: Request) -> Response:
    """Stream data processing results"""
    return StreamingResponse(
        process_and_stream(),
        content_type="application/x-ndjson",
        headers={
            "Cache-Control": "no-cache",
            "Connection": "keep-alive"
        }
    )


if __name__ == "__main__":
    print("🚀 Starting data processing streaming server...")
    print("Try: curl -X POST http://localhost:8000/process-stream")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
