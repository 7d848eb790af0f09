"""The Starlette app served by uvicorn (uvicorn_app.py) and by granian (granian_app.py)."""

import asyncio

import common
from starlette.applications import Starlette
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

try:
    from sse_starlette.sse import EventSourceResponse
except ImportError:
    EventSourceResponse = None


async def plaintext(request):
    return PlainTextResponse("Hello, World!")


async def json_hello(request):
    return JSONResponse({"message": "Hello, World!"})


async def params(request):
    return JSONResponse(common.params_echo(request.path_params["user_id"],
                                           request.path_params["post_id"],
                                           request.query_params.get("q")))


async def echo(request):
    return Response(await request.body(), media_type="application/octet-stream")


async def file(request):
    return FileResponse(common.DATA_FILE)


async def chunks(request):
    return StreamingResponse(common.file_chunks(), media_type="application/octet-stream")


async def process(request):
    async def records():
        for line in common.process_and_stream():
            yield line
    return StreamingResponse(records(), media_type="application/x-ndjson")


async def sleepy(request):
    return StreamingResponse(common.sleepy_ticks(), media_type="text/plain")


subscribers: set[asyncio.Queue] = set()


async def sse(request):
    async def events():
        q: asyncio.Queue = asyncio.Queue(maxsize=1000)
        subscribers.add(q)
        try:
            while True:
                yield {"data": await q.get()}
        finally:
            subscribers.discard(q)
    return EventSourceResponse(events(), ping=common.HEARTBEAT)


async def publisher(rate: float, seconds: float) -> None:
    for seq, delay in common.publish_schedule(rate, seconds):
        await asyncio.sleep(delay)
        data = common.event_data(seq)
        for q in list(subscribers):
            if not q.full():
                q.put_nowait(data)


tasks: set = set()


async def publish(request):
    rate = float(request.query_params.get("rate", "100"))
    seconds = float(request.query_params.get("seconds", "5"))
    task = asyncio.get_running_loop().create_task(publisher(rate, seconds))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return JSONResponse({"subscribers": len(subscribers)})


routes = [
    Route("/plaintext", plaintext),
    Route("/json", json_hello),
    Route("/users/{user_id}/posts/{post_id}", params),
    Route("/echo", echo, methods=["POST"]),
    Route("/file", file),
    Route("/chunks", chunks),
    Route("/process-stream", process, methods=["POST"]),
    Route("/sleepy", sleepy),
]
if EventSourceResponse is not None:
    routes += [Route("/sse", sse), Route("/publish", publish, methods=["POST"])]
app = Starlette(routes=routes)
