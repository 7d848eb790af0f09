"""socketify (uWebSockets), one process, its own App API."""

import json

import common
from socketify import App, AppListenOptions

app = App()


def plaintext(res, req):
    res.write_header("Content-Type", "text/plain")
    res.end("Hello, World!")


def json_hello(res, req):
    res.write_header("Content-Type", "application/json")
    res.end(json.dumps({"message": "Hello, World!"}))


def params(res, req):
    body = common.params_echo(req.get_parameter(0), req.get_parameter(1), req.get_query("q"))
    res.write_header("Content-Type", "application/json")
    res.end(json.dumps(body))


async def echo(res, req):
    body = await res.get_data()
    res.write_header("Content-Type", "application/octet-stream")
    res.end(body.getvalue())


app.get("/plaintext", plaintext)
app.get("/json", json_hello)
app.get("/users/:user_id/posts/:post_id", params)
app.post("/echo", echo)

if __name__ == "__main__":
    app.listen(AppListenOptions(port=common.port(), host="127.0.0.1"), lambda config: None)
    app.run()
