"""Sanic, single process, access log off."""

import common
from sanic import Sanic
from sanic.response import json, raw, text

app = Sanic("bench")


@app.get("/plaintext")
async def plaintext(request):
    return text("Hello, World!")


@app.get("/json")
async def json_hello(request):
    return json({"message": "Hello, World!"})


@app.get("/users/<user_id>/posts/<post_id>")
async def params(request, user_id, post_id):
    return json(common.params_echo(user_id, post_id, request.args.get("q")))


@app.post("/echo")
async def echo(request):
    return raw(request.body, content_type="application/octet-stream")


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=common.port(), single_process=True, access_log=False,
            debug=False, motd=False, backlog=4096)
