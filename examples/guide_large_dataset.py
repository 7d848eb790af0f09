# Streaming guide, "Performance Optimization / Memory Efficient Streaming".
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


def efficient_data_stream():
    """Generate large dataset efficiently"""
    batch_size = 100
    total_records = 10000  # Smaller for demo

    for batch_start in range(0, total_records, batch_size):
        # Generate batch of records
        batch = []
        for i in range(batch_start, min(batch_start + batch_size, total_records)):
            record = {
                "id": i,
                "data": f"Record {i}",
                "timestamp": datetime.now().isoformat()
            }
            batch.append(record)

        # Stream batch as single chunk
        chunk = {
            "batch": batch,
            "batch_start": batch_start,
            "batch_size": len(batch),
            "total_records": total_records,
            "progress": round((batch_start + len(batch)) / total_records * 100, 2)
        }

        yield f"{json.dumps(chunk)}\n"

        # Small delay to prevent overwhelming the client
        time.sleep(0.01)


@app.get("/large-dataset")
def stream_large_dataset(request: Request) -> Response:
    """Stream large dataset efficiently"""
    return StreamingResponse(
        efficient_data_stream(),
        content_type="application/x-ndjson",
        headers={
            "Cache-Control": "no-cache",
            "Transfer-Encoding": "chunked"
        }
    )


if __name__ == "__main__":
    print("🚀 Starting large dataset streaming server...")
    print("Try: curl -N http://localhost:8000/large-dataset")
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
