"""FastAPI on uvicorn (uvloop, httptools), access log off."""

import common
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response

app = FastAPI()


@app.get("/plaintext", response_class=PlainTextResponse)
async def plaintext():
    return "Hello, World!"


@app.get("/json")
async def json_hello():
    return {"message": "Hello, World!"}


@app.get("/users/{user_id}/posts/{post_id}")
async def params(user_id: str, post_id: str, q: str | None = None):
    return common.params_echo(user_id, post_id, q)


@app.post("/echo")
async def echo(request: Request):
    return Response(await request.body(), media_type="application/octet-stream")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=common.port(), loop="uvloop", http="httptools",
                access_log=False, log_level="warning", backlog=4096)
