"""Catzilla 0.2.3 from PyPI (its own venv: it shares our import name).

Its Response takes (status_code, content_type, body, headers), so bodies are passed by keyword.
production=True and log_requests=False turn its request logging and dev features off.
"""

import queue
import threading

import common

from catzilla import Catzilla, JSONResponse, Request, Response, StreamingResponse

app = Catzilla(production=True, log_requests=False, show_banner=False, memory_profiling=False)


@app.get("/plaintext")
def plaintext(request: Request) -> Response:
    return Response(body="Hello, World!", content_type="text/plain")


@app.get("/json")
def json_hello(request: Request) -> Response:
    return JSONResponse({"message": "Hello, World!"})


@app.get("/users/{user_id}/posts/{post_id}")
def params(request: Request) -> Response:
    return JSONResponse(common.params_echo(request.path_params["user_id"],
                                           request.path_params["post_id"],
                                           request.query_params.get("q")))


@app.post("/echo")
def echo(request: Request) -> Response:
    return Response(body=request.body, content_type="application/octet-stream")


@app.get("/chunks")
def chunks(request: Request) -> Response:
    return StreamingResponse(common.file_chunks(), content_type="application/octet-stream")


@app.post("/process-stream")
def process(request: Request) -> Response:
    return StreamingResponse(common.process_and_stream(), content_type="application/x-ndjson")


subscribers: dict[int, queue.Queue] = {}
lock = threading.Lock()


def stream_events(key: int):
    q: queue.Queue = queue.Queue(maxsize=1000)
    with lock:
        subscribers[key] = q
    try:
        while True:
            try:
                yield q.get(timeout=common.HEARTBEAT)
            except queue.Empty:
                yield common.HEARTBEAT_EVENT
    finally:
        with lock:
            subscribers.pop(key, None)


@app.get("/sse")
def sse(request: Request) -> Response:
    return StreamingResponse(stream_events(id(request)), content_type="text/event-stream")


def publisher(rate: float, seconds: float) -> None:
    for seq, delay in common.publish_schedule(rate, seconds):
        if delay:
            common.time.sleep(delay)
        event = common.sse_event(seq)
        with lock:
            targets = list(subscribers.values())
        for q in targets:
            try:
                q.put_nowait(event)
            except queue.Full:
                pass


@app.post("/publish")
def publish(request: Request) -> Response:
    rate = float(request.query_params.get("rate", "100"))
    seconds = float(request.query_params.get("seconds", "5"))
    threading.Thread(target=publisher, args=(rate, seconds), daemon=True).start()
    return JSONResponse({"subscribers": len(subscribers)})


@app.get("/sleepy")
def sleepy(request: Request) -> Response:
    return StreamingResponse(common.sleepy_ticks(), content_type="text/plain")


if __name__ == "__main__":
    app.listen(port=common.port(), host="127.0.0.1")
