"""What every bench app shares (stdlib only: it is imported from each peer's own venv).

Routes every app serves:
  GET  /plaintext                      -> "Hello, World!" (text/plain)
  GET  /json                           -> {"message": "Hello, World!"}
  GET  /users/{user_id}/posts/{post_id}?q=x -> {"user_id": ..., "post_id": ..., "q": ...}
  POST /echo                           -> the request body, echoed
Streaming routes (an app may lack some; the harness then reports n/a):
  GET  /file      the data file through the framework's file response
  GET  /chunks    the data file through a generator of 64 KiB chunks
  POST /process-stream  NDJSON: the guide's "Data Processing Pipeline" without its sleeps
  GET  /sse       one SSE subscriber: publisher events, ": heartbeat" comments when idle
  POST /publish?rate=R&seconds=S   start the publisher (R events/s to every subscriber)
  GET  /sleepy    a sync generator that sleeps between chunks
"""

import argparse
import json
import os
import time
from datetime import datetime

DATA_FILE = os.environ.get("BENCH_DATA_FILE", "")
RECORDS = int(os.environ.get("BENCH_RECORDS", "100000"))
HEARTBEAT = float(os.environ.get("BENCH_HEARTBEAT", "5"))
SLEEPY_TICKS = int(os.environ.get("BENCH_SLEEPY_TICKS", "120"))
SLEEPY_PAUSE = 0.5
CHUNK = 64 * 1024
HELLO = b"Hello, World!"


def port() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    return ap.parse_args().port


def request_heads(conn):
    """For the plain socket servers: yield once per request head received on conn (bodies
    are not expected), until the client closes."""
    buf = b""
    while True:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                return
            buf += data
        buf = buf.split(b"\r\n\r\n", 1)[1]
        yield


def params_echo(user_id, post_id, q) -> dict:
    return {"user_id": user_id, "post_id": post_id, "q": q}


def file_chunks(path=None, chunk_size=CHUNK):
    """The guide's file_streamer with 64 KiB chunks."""
    with open(path or DATA_FILE, "rb") as file:
        while True:
            chunk = file.read(chunk_size)
            if not chunk:
                break
            yield chunk


def process_and_stream(total_items=None):
    """The guide's Data Processing Pipeline, without its sleeps."""
    total_items = total_items or RECORDS
    for i in range(total_items):
        processed_item = {
            "item_id": i,
            "processed_at": datetime.now().isoformat(),
            "result": f"Processed item {i}",
            "progress": round((i + 1) / total_items * 100, 2),
        }
        yield f"{json.dumps(processed_item)}\n"
    completion = {
        "event": "completed",
        "total_processed": total_items,
        "completed_at": datetime.now().isoformat(),
    }
    yield f"{json.dumps(completion)}\n"


def event_data(seq: int) -> str:
    """The payload of one published event; the load generator reads "ts" for latency."""
    return f'{{"seq": {seq}, "ts": {time.time():.6f}}}'


def sse_event(seq: int) -> str:
    return f"data: {event_data(seq)}\n\n"


HEARTBEAT_EVENT = ": heartbeat\n\n"


def publish_schedule(rate: float, seconds: float):
    """Yield (seq, delay-until-due) pairs for a publisher holding a steady rate."""
    start = time.monotonic()
    for seq in range(int(rate * seconds)):
        yield seq, max(0.0, start + seq / rate - time.monotonic())


def sleepy_ticks():
    """A sync stream that spends its life in time.sleep (the guide's style of generator)."""
    for i in range(SLEEPY_TICKS):
        yield f"tick {i}\n"
        time.sleep(SLEEPY_PAUSE)
