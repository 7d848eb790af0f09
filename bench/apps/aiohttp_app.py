"""aiohttp web server on uvloop, access log off."""

import asyncio

import common
import uvloop
from aiohttp import web

routes = web.RouteTableDef()


@routes.get("/plaintext")
async def plaintext(request):
    return web.Response(text="Hello, World!")


@routes.get("/json")
async def json_hello(request):
    return web.json_response({"message": "Hello, World!"})


@routes.get("/users/{user_id}/posts/{post_id}")
async def params(request):
    return web.json_response(common.params_echo(request.match_info["user_id"],
                                                request.match_info["post_id"],
                                                request.query.get("q")))


@routes.post("/echo")
async def echo(request):
    return web.Response(body=await request.read(), content_type="application/octet-stream")


@routes.get("/file")
async def file(request):
    return web.FileResponse(common.DATA_FILE)


@routes.get("/chunks")
async def chunks(request):
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    await resp.prepare(request)
    for chunk in common.file_chunks():
        await resp.write(chunk)
    await resp.write_eof()
    return resp


@routes.post("/process-stream")
async def process(request):
    resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
    await resp.prepare(request)
    for line in common.process_and_stream():
        await resp.write(line.encode())
    await resp.write_eof()
    return resp


subscribers: set[asyncio.Queue] = set()


@routes.get("/sse")
async def sse(request):
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                       "Cache-Control": "no-cache"})
    await resp.prepare(request)
    q: asyncio.Queue = asyncio.Queue(maxsize=1000)
    subscribers.add(q)
    try:
        while True:
            try:
                event = await asyncio.wait_for(q.get(), common.HEARTBEAT)
            except asyncio.TimeoutError:
                event = common.HEARTBEAT_EVENT
            await resp.write(event.encode())
    finally:
        subscribers.discard(q)


async def publisher(rate: float, seconds: float) -> None:
    for seq, delay in common.publish_schedule(rate, seconds):
        await asyncio.sleep(delay)
        event = common.sse_event(seq)
        for q in list(subscribers):
            if not q.full():
                q.put_nowait(event)


tasks: set = set()


@routes.post("/publish")
async def publish(request):
    task = asyncio.get_running_loop().create_task(publisher(
        float(request.query.get("rate", "100")), float(request.query.get("seconds", "5"))))
    tasks.add(task)
    task.add_done_callback(tasks.discard)
    return web.json_response({"subscribers": len(subscribers)})


if __name__ == "__main__":
    app = web.Application()
    app.add_routes(routes)
    web.run_app(app, host="127.0.0.1", port=common.port(), access_log=None, print=None,
                backlog=4096, loop=uvloop.new_event_loop())
