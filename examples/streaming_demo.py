"""catzilla's streaming demo: a live clock over Server-Sent Events, NDJSON, a download.

    pip install . && python examples/streaming_demo.py
    open http://127.0.0.1:8000/            (a page that shows the live events)
    curl -N http://127.0.0.1:8000/events   (the raw SSE stream)
    curl -N http://127.0.0.1:8000/records  (NDJSON, 1,000 records)
    curl -o /dev/null http://127.0.0.1:8000/download/64  (64 MiB from a generator)
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from datetime import datetime, timezone

from catzilla import Catzilla, HTMLResponse, Request, Response, StreamingResponse

app = Catzilla()

PAGE = """<!doctype html>
<meta charset="utf-8"><title>catzilla streaming demo</title>
<h1>catzilla streaming demo</h1>
<p>Server time, pushed every second: <b id="clock">connecting…</b></p>
<p>Live connections: <b id="conns">?</b></p>
<ol id="log"></ol>
<script>
const es = new EventSource("/events");
es.onmessage = (e) => {
  const d = JSON.parse(e.data);
  document.getElementById("clock").textContent = d.time;
  document.getElementById("conns").textContent = d.connections;
  const li = document.createElement("li");
  li.textContent = e.lastEventId + ": " + e.data;
  const log = document.getElementById("log");
  log.prepend(li);
  while (log.children.length > 10) log.lastChild.remove();
};
</script>
"""


@app.get("/")
def home(request: Request) -> Response:
    return HTMLResponse(PAGE)


@app.get("/events")
def events(request: Request) -> Response:
    """A sync generator that sleeps: it runs on a worker thread, never blocking the server."""

    def clock():
        i = int(request.headers.get("last-event-id", "0") or 0)
        while True:
            i += 1
            data = {
                "time": datetime.now(timezone.utc).strftime("%H:%M:%S"),
                "connections": len(app.connections),
            }
            yield f"id: {i}\ndata: {json.dumps(data)}\n\n"
            time.sleep(1)

    return StreamingResponse(clock(), content_type="text/event-stream",
                             headers={"Cache-Control": "no-cache"})


@app.get("/records")
async def records(request: Request) -> Response:
    """An async generator: runs on the event loop."""

    async def gen():
        for i in range(1000):
            yield json.dumps({"id": i, "square": i * i}) + "\n"
            if i % 100 == 99:
                await asyncio.sleep(0.05)

    return StreamingResponse(gen(), content_type="application/x-ndjson")


@app.get("/download/{mib:int}")
def download(request: Request) -> Response:
    """Any size at constant memory: the producer waits while the client is slow."""
    mib = request.path_params["mib"]
    block = os.urandom(1 << 20)

    def blocks():
        for _ in range(mib):
            yield block

    return StreamingResponse(blocks(), content_type="application/octet-stream",
                             headers={"Content-Length": str(mib << 20)})


@app.get("/stats")
def stats(request: Request) -> Response:
    return app.connections.stats()


if __name__ == "__main__":
    app.listen(port=int(os.environ.get("PORT", "8000")), host=os.environ.get("HOST", "0.0.0.0"))
