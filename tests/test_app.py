"""The Python API (Catzilla, Request, Response family) through catzilla.testing."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import textwrap

import pytest
from _served import errors

from catzilla import (
    Catzilla,
    HTMLResponse,
    HTTPException,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Request,
    Response,
)
from catzilla.datastructures import QueryParams
from catzilla.exceptions import RequestBodyError, RequestJSONError
from catzilla.testing import TestClient


def test_request_attributes():
    app = Catzilla()
    seen = {}

    @app.post("/items/{item_id:int}/{name}")
    def item(request: Request):
        seen.update(
            method=request.method,
            path=request.path,
            path_params=request.path_params,
            q=request.query_params.get("q"),
            tags=request.query_params.getlist("tag"),
            missing=request.query_params.get("nope", "default"),
            ua=request.headers["user-agent"],
            ua_upper=request.headers.get("USER-AGENT"),
            cookies=request.cookies,
            json=request.json(),
            text=request.text(),
            client=request.client,
            version=request.http_version,
            connection_id=request.connection_id,
        )
        return {"ok": True}

    with TestClient(app) as client:
        r = client.post(
            "/items/42/caf%C3%A9%2Fx?q=hello%20world&tag=a&tag=b",
            json={"a": [1, 2]},
            headers={"User-Agent": "pytest-agent", "Cookie": 'sid=abc; theme="dark"'},
        )
        assert r.status == 200 and r.json() == {"ok": True}
    assert seen["method"] == "POST"
    assert seen["path"] == "/items/42/café/x"
    assert seen["path_params"] == {"item_id": 42, "name": "café/x"}
    assert seen["q"] == "hello world"
    assert seen["tags"] == ["a", "b"]
    assert seen["missing"] == "default"
    assert seen["ua"] == seen["ua_upper"] == "pytest-agent"
    assert seen["cookies"] == {"sid": "abc", "theme": "dark"}
    assert seen["json"] == {"a": [1, 2]}
    assert json.loads(seen["text"]) == {"a": [1, 2]}
    assert seen["client"].host == "127.0.0.1" and seen["client"].port > 0
    assert seen["version"] == "1.1"
    assert isinstance(seen["connection_id"], int)


def test_form_and_raw_body():
    app = Catzilla()

    @app.post("/form")
    def form(request):
        f = request.form()
        return {"name": f.get("name"), "colors": f.getlist("color"), "raw": request.body.decode()}

    with TestClient(app) as client:
        r = client.post("/form", data={"name": "Zoë", "color": ["red", "blue"]})
        body = r.json()
        assert body["name"] == "Zoë" and body["colors"] == ["red", "blue"]
        assert "color=red" in body["raw"]


def test_handler_return_types_and_response_classes():
    app = Catzilla()

    @app.get("/dict")
    def d(request):
        return {"a": 1, "ü": "ö"}

    @app.get("/list")
    def lst(request):
        return [1, 2]

    @app.get("/str")
    def s(request):
        return "plain"

    @app.get("/html")
    def h(request):
        return HTMLResponse("<b>hi</b>")

    @app.get("/text")
    def t(request):
        return PlainTextResponse("t", status_code=201)

    @app.get("/guide")
    def g(request):
        # the guide's form: body first, content_type keyword
        return Response(json.dumps({"status": "ok"}), content_type="application/json")

    @app.get("/body-kw")
    def b(request):
        return Response(body=b"\x00\x01", media_type="application/octet-stream", status_code=202)

    @app.get("/json404")
    def j(request):
        return JSONResponse({"error": "File not found"}, status_code=404)

    @app.get("/redirect")
    def r(request):
        return RedirectResponse("/dict")

    @app.get("/cookies")
    def c(request):
        resp = Response("c")
        resp.set_cookie("sid", "v1", httponly=True)
        resp.headers["X-Custom"] = "yes"
        return resp

    @app.get("/none")
    def none(request):
        return None

    with TestClient(app) as client:
        r = client.get("/dict")
        assert r.json() == {"a": 1, "ü": "ö"}
        assert r.headers["Content-Type"] == "application/json"
        assert client.get("/list").json() == [1, 2]
        r = client.get("/str")
        assert r.text == "plain" and r.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert client.get("/html").headers["Content-Type"] == "text/html; charset=utf-8"
        assert client.get("/text").status == 201
        r = client.get("/guide")
        assert r.json() == {"status": "ok"} and r.headers["Content-Type"] == "application/json"
        r = client.get("/body-kw")
        assert r.status == 202 and r.content == b"\x00\x01"
        r = client.get("/json404")
        assert r.status == 404 and r.json() == {"error": "File not found"}
        r = client.get("/redirect", allow_redirects=False)
        assert r.status == 307 and r.headers["Location"] == "/dict"
        r = client.get("/cookies")
        assert r.headers["X-Custom"] == "yes"
        assert "sid=v1" in r.headers["Set-Cookie"] and "HttpOnly" in r.headers["Set-Cookie"]
        r = client.get("/none")
        assert r.status == 500


def test_async_handlers_run_on_the_server_loop():
    app = Catzilla()

    @app.get("/async/{x}")
    async def a(request):
        await asyncio.sleep(0.01)
        loop = asyncio.get_running_loop()
        return {"x": request.path_params["x"], "loop": type(loop).__module__}

    @app.get("/async-error")
    async def e(request):
        await asyncio.sleep(0)
        raise HTTPException(409, "conflict!", headers={"X-Why": "because"})

    with TestClient(app) as client:
        r = client.get("/async/abc")
        assert r.json() == {"x": "abc", "loop": "uvloop"}
        r = client.get("/async-error")
        assert r.status == 409 and r.json() == {"detail": "conflict!"}
        assert r.headers["X-Why"] == "because"


def test_concurrent_async_requests_overlap():
    app = Catzilla()
    gate = {}

    @app.get("/wait")
    async def wait(request):
        gate.setdefault("ev", asyncio.Event())
        gate["n"] = gate.get("n", 0) + 1
        if gate["n"] == 10:
            gate["ev"].set()
        await asyncio.wait_for(gate["ev"].wait(), 5)
        return "done"

    with TestClient(app) as client:

        async def many():
            return await asyncio.gather(*(client.arequest("GET", "/wait") for _ in range(10)))

        results = client.run(many())
        assert [r.text for r in results] == ["done"] * 10


def test_routing_errors_and_methods():
    app = Catzilla()

    @app.route("/multi", methods=["GET", "POST"])
    def multi(request):
        return request.method

    @app.put("/thing")
    def put(request):
        return "put"

    @app.patch("/thing")
    def patch(request):
        return "patch"

    @app.delete("/thing")
    def delete(request):
        return "delete"

    @app.options("/thing")
    def options(request):
        return "options"

    with TestClient(app) as client:
        assert client.get("/multi").text == "GET"
        assert client.post("/multi").text == "POST"
        assert client.put("/thing").text == "put"
        assert client.patch("/thing").text == "patch"
        assert client.delete("/thing").text == "delete"
        assert client.options("/thing").text == "options"
        r = client.head("/multi")
        # the GET handler answers HEAD (it sees method "HEAD"); the body is not sent
        assert r.status == 200 and r.content == b"" and r.headers["Content-Length"] == "4"
        r = client.get("/thing")
        assert r.status == 405
        assert r.headers["Allow"] == "DELETE, OPTIONS, PATCH, PUT"
        r = client.get("/missing")
        assert r.status == 404 and r.json() == {"detail": "Not Found"}


def test_route_registration_errors_are_clear():
    app = Catzilla()
    with pytest.raises(ValueError):
        app.get("no-slash")(lambda r: None)
    with pytest.raises(TypeError):
        app.add_route("/x", "not callable")


def test_response_argument_validation():
    with pytest.raises(TypeError):
        Response(content="a", body="b")
    with pytest.raises(ValueError):
        Response("x", status_code=99)
    with pytest.raises(TypeError):
        Response(object())


LISTEN_SCRIPT = textwrap.dedent("""
    import sys
    from catzilla import Catzilla, Response
    app = Catzilla()

    @app.get("/")
    def home(request):
        return Response("up")

    app.listen(port=0, host="127.0.0.1")
    print("exited cleanly", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_listen_prints_its_url_and_exits_cleanly_on_signal(sig):
    proc = subprocess.Popen([sys.executable, "-c", LISTEN_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        line = proc.stdout.readline()
        assert line.startswith("Catzilla listening on http://127.0.0.1:"), line
        port = int(line.split(":")[2].split()[0])
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5) as resp:
            assert resp.read() == b"up"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "exited cleanly" in out
    assert "Traceback" not in err


STREAM_SCRIPT = textwrap.dedent("""
    import time
    from catzilla import Catzilla, StreamingResponse
    app = Catzilla(shutdown_timeout=30)

    @app.get("/slow")
    def slow(request):
        def gen():
            while True:
                yield "tick\\n"
                time.sleep(3)
        return StreamingResponse(gen(), stop_on_shutdown=True)

    app.listen(port=0, host="127.0.0.1")
    print("exited cleanly", flush=True)
""")


def test_second_signal_stops_waiting_for_a_sleeping_producer():
    import socket
    import time

    proc = subprocess.Popen([sys.executable, "-c", STREAM_SCRIPT], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().split(":")[2].split()[0])
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
        data = b""
        while b"tick" not in data:
            data += s.recv(4096)
        proc.send_signal(signal.SIGINT)      # graceful: would wait for the sleeping producer
        s.settimeout(10)
        while s.recv(4096):                  # the connection closes: the shutdown has begun
            pass
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)      # second: stop waiting for the producer
        out, err = proc.communicate(timeout=15)
        elapsed = time.monotonic() - t0
        s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "exited cleanly" in out and "Traceback" not in err
    assert elapsed < 2.5


# -- request bodies: json(), text(), form() ---------------------------------------------------

def body_app():
    app = Catzilla()

    @app.post("/json")
    def as_json(request):
        return {"received": request.json()}

    @app.post("/ajson")
    async def as_json_async(request):            # the README's /items handler shape
        return {"received": request.json()}

    @app.post("/text")
    def as_text(request):
        return {"text": request.text()}

    @app.post("/caught")
    def caught(request):
        kinds = []
        for kind in (ValueError, json.JSONDecodeError, HTTPException, RequestBodyError):
            try:
                request.json()
            except kind as exc:
                kinds.append(type(exc).__name__)
        return {"caught": kinds}

    @app.post("/server-bug")
    def server_bug(request):
        return request.text(encoding="no-such-codec")       # the handler's own mistake

    return app


@pytest.mark.parametrize("body,fragment", [
    (b"{not json", "Expecting property name"),
    (b"", "the body is empty"),
    (b'"\xff"', "can't decode byte 0xff"),
    (b"[" * 100000 + b"]" * 100000, "Nesting too deep"),
    (b"1" * 5000, "Exceeds the limit"),
    (b'{"a": 1} x', "Extra data"),
], ids=["invalid", "empty", "not-utf8", "deep", "huge-int", "extra-data"])
def test_bad_json_bodies_are_400_and_not_logged(caplog, body, fragment):
    with caplog.at_level(logging.WARNING, logger="catzilla"), TestClient(body_app()) as client:
        for path in ("/json", "/ajson"):
            r = client.post(path, data=body, headers={"Content-Type": "application/json"})
            assert r.status == 400
            assert r.json()["detail"].startswith("Invalid JSON in the request body: ")
            assert fragment in r.json()["detail"]
        assert client.post("/json", data=b'{"a": [1]}').json() == {"received": {"a": [1]}}
    assert errors(caplog) == []


def test_bad_json_is_still_catchable_as_value_error_and_json_decode_error():
    with TestClient(body_app()) as client:
        r = client.post("/caught", data=b"{oops")
        assert r.json() == {"caught": ["RequestJSONError"] * 4}


def test_request_json_error_is_a_json_decode_error():
    exc = RequestJSONError("Expecting value", '{"a":\n  x}', 9)
    assert isinstance(exc, json.JSONDecodeError) and isinstance(exc, ValueError)
    assert isinstance(exc, HTTPException) and exc.status_code == 400
    assert (exc.msg, exc.pos, exc.lineno, exc.colno) == ("Expecting value", 9, 2, 4)
    assert exc.detail == ("Invalid JSON in the request body: "
                          "Expecting value: line 2 column 4 (char 9)")
    again = pickle.loads(pickle.dumps(exc))
    assert type(again) is RequestJSONError and again.detail == exc.detail
    assert pickle.loads(pickle.dumps(RequestBodyError("x"))).detail == "x"


@pytest.mark.parametrize("content_type", [
    "text/plain; charset=no-such-charset", "text/plain; charset=base64", "text/plain; charset=",
])
def test_text_with_a_charset_python_lacks_is_400(caplog, content_type):
    with caplog.at_level(logging.WARNING, logger="catzilla"), TestClient(body_app()) as client:
        r = client.post("/text", data=b"hi", headers={"Content-Type": content_type})
        if content_type.endswith("="):              # no charset at all: UTF-8
            assert r.status == 200 and r.json() == {"text": "hi"}
        else:
            assert r.status == 400 and "Unsupported charset" in r.json()["detail"]
    assert errors(caplog) == []


def test_text_decodes_known_charsets_and_replaces_bad_bytes(caplog):
    with TestClient(body_app()) as client:
        r = client.post("/text", data="café".encode("latin-1"),
                        headers={"Content-Type": "text/plain; charset=latin-1"})
        assert r.json() == {"text": "café"}
        r = client.post("/text", data=b"caf\xff", headers={"Content-Type": "text/plain"})
        assert r.json() == {"text": "caf\ufffd"}
        with caplog.at_level(logging.ERROR, logger="catzilla"):
            assert client.post("/server-bug", data=b"x").status == 500
    assert len(errors(caplog)) == 1


def test_form_decodes_raw_utf8_and_escapes_alike():
    app = Catzilla()
    app.add_route("/form", lambda r: dict(r.form().multi_items()), ["POST"])
    with TestClient(app) as client:
        r = client.post("/form", data="name=café&city=Zürich%20Nord&x=%C3%A9+%E2%82%AC&b=\xff"
                        .encode("utf-8")[:-2] + b"\xff",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.json() == {"name": "café", "city": "Zürich Nord", "x": "é €", "b": "\ufffd"}
    assert QueryParams("a=é".encode())["a"] == "é"
