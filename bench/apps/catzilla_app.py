"""catzilla (ours), from the working tree, with the guide's API."""

import threading

import common

from catzilla import (
    Catzilla,
    EventSourceResponse,
    FileResponse,
    JSONResponse,
    Request,
    Response,
    StreamingResponse,
)

app = Catzilla()


@app.get("/plaintext")
def plaintext(request: Request) -> Response:
    return Response(b"Hello, World!", content_type="text/plain")


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
    return Response(request.body, content_type="application/octet-stream")


@app.get("/file")
def file(request: Request) -> Response:
    return FileResponse(common.DATA_FILE)


@app.get("/chunks")
def chunks(request: Request) -> Response:
    return StreamingResponse(common.file_chunks(), content_type="application/octet-stream")


@app.post("/process-stream")
def process(request: Request) -> Response:
    return StreamingResponse(common.process_and_stream(),
                             content_type="application/x-ndjson",
                             headers={"Cache-Control": "no-cache"})


# SSE the idiomatic catzilla way: the broadcast hub (encode once, fan out in the core,
# heartbeats from a libuv timer per stream; no thread or queue per subscriber).
hub = app.broadcast


@app.get("/sse")
def sse(request: Request) -> Response:
    return EventSourceResponse(hub.subscribe("bench"), ping=common.HEARTBEAT)


def publisher(rate: float, seconds: float) -> None:
    for seq, delay in common.publish_schedule(rate, seconds):
        if delay:
            common.time.sleep(delay)
        hub.publish("bench", common.event_data(seq))


@app.post("/publish")
def publish(request: Request) -> Response:
    rate = float(request.query_params.get("rate", "100"))
    seconds = float(request.query_params.get("seconds", "5"))
    threading.Thread(target=publisher, args=(rate, seconds), daemon=True).start()
    return JSONResponse({"subscribers": hub.subscribers("bench")})


@app.get("/sleepy")
def sleepy(request: Request) -> Response:
    return StreamingResponse(common.sleepy_ticks(), content_type="text/plain")


if __name__ == "__main__":
    app.listen(port=common.port(), host="127.0.0.1")
