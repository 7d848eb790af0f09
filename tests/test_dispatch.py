"""Dispatch over real loopback sockets: a request reaches its handler with sane path parameters,
also for a method added while serving; each request runs in its own contextvars context, which
its stream's producer shares; an async handler ending in its own CancelledError gets a 500."""

from __future__ import annotations

import asyncio
import contextvars

from conftest import RawClient

from catzilla import Catzilla, Request, Response, StreamingResponse
from catzilla.testing import TestClient

# -- routing to handlers ----------------------------------------------------------------------

def test_a_path_parameter_never_starts_with_a_slash():
    app = Catzilla()

    @app.get("/files/{rest:path}")
    def files(request: Request) -> Response:
        return Response(repr(request.path_params["rest"]))

    @app.get("/one/{name}/x")
    def one(request: Request) -> Response:
        return Response(repr(request.path_params["name"]))

    with TestClient(app) as client:
        assert client.get("/files/a/b.txt").text == "'a/b.txt'"
        for target in ("/files//etc/passwd", "/files///x", "/files//", "/files/\\etc"):
            with RawClient(client.port) as c:
                c.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % target.encode())
                resp, body = c.response()
            assert resp.status_code in (400, 404), (target, resp.status_code, body)
        assert client.get("/one/a/x").text == "'a'"


def test_a_route_with_a_new_method_added_while_serving_is_answered():
    app = Catzilla()

    @app.get("/")
    def index(request: Request) -> Response:
        app.add_route("/cache", lambda request: Response("purged"), ["PURGE"])
        return Response("ok")

    with TestClient(app) as client, RawClient(client.port) as c:
        assert client.get("/").text == "ok"
        c.send(b"PURGE /cache HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response("PURGE")
        assert (resp.status_code, body) == (200, b"purged")


# -- async handlers ---------------------------------------------------------------------------

def test_an_async_handler_ending_in_its_own_cancelled_error_gets_a_500(caplog):
    app = Catzilla()

    @app.get("/report")
    async def report(request: Request) -> Response:
        shared = asyncio.get_running_loop().create_future()
        shared.cancel()               # e.g. a coalesced fetch whose first requester left
        return Response(await shared)

    with TestClient(app) as client:
        assert client.get("/report").status == 500
        assert client.get("/report").status == 500     # and the server keeps serving
    assert any("CancelledError" in repr(r.exc_info) for r in caplog.records if r.exc_info)


# -- the request's context --------------------------------------------------------------------

USER: contextvars.ContextVar[str] = contextvars.ContextVar("user", default="anonymous")


def test_each_request_has_its_own_context_and_its_producer_shares_it():
    app = Catzilla()

    @app.get("/login/{name}")
    def login(request: Request) -> Response:
        USER.set(request.path_params["name"])
        return Response(USER.get())

    @app.get("/whoami")
    def whoami(request: Request) -> Response:
        return Response(USER.get())

    @app.get("/awhoami")
    async def awhoami(request: Request) -> Response:
        return Response(USER.get())

    @app.get("/sync-stream/{name}")
    def sync_stream(request: Request) -> Response:
        USER.set(request.path_params["name"])
        return StreamingResponse(USER.get() + "|" + USER.get() for _ in range(1))

    @app.get("/async-stream/{name}")
    async def async_stream(request: Request) -> Response:
        USER.set(request.path_params["name"])

        async def produce():
            yield USER.get()

        return StreamingResponse(produce())

    with TestClient(app) as client:
        assert client.get("/login/alice").text == "alice"
        assert client.get("/whoami").text == "anonymous"
        assert client.get("/awhoami").text == "anonymous"
        assert client.get("/sync-stream/bob").text == "bob|bob"
        assert client.get("/async-stream/carol").text == "carol"
        assert client.get("/whoami").text == "anonymous"


def test_a_streaming_callable_runs_in_the_requests_context():
    app = Catzilla()

    @app.get("/callable")
    def callable_stream(request: Request) -> Response:
        USER.set("dave")
        return StreamingResponse(lambda: iter([USER.get()]))

    @app.get("/sets")
    def sets(request: Request) -> Response:
        def make():
            USER.set("mallory")                  # set by the callable itself: must not leak
            return iter([USER.get()])
        return StreamingResponse(make)

    @app.get("/whoami")
    def whoami(request: Request) -> Response:
        return Response(USER.get())

    with TestClient(app) as client:
        assert client.get("/callable").text == "dave"
        assert client.get("/sets").text == "mallory"
        assert client.get("/whoami").text == "anonymous"
