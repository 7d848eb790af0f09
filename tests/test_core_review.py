"""Behaviour the HTTP core got wrong before a review: each test failed on the code before
the fix beside it."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from conftest import RawClient, header, wait_for

from catzilla import Catzilla, Request, Response, StreamingResponse
from catzilla.testing import TestClient


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


def pipeline_app() -> Catzilla:
    app = Catzilla()

    @app.get("/slow")
    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.05)      # keeps this request in flight while the rest is parsed
        return Response("slow")

    @app.get("/")
    def index(request: Request) -> Response:
        return Response("index")

    @app.post("/echo")
    def echo(request: Request) -> Response:
        return Response(request.body)

    @app.get("/stream")
    def stream(request: Request) -> Response:
        return StreamingResponse(iter([b"a", b"b"]))

    return app


@pytest.mark.parametrize("first", ["/slow", "/stream"])
def test_a_pipelined_close_request_closes_after_its_own_response(first):
    with TestClient(pipeline_app()) as client, RawClient(client.port) as c:
        c.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % first.encode()
               + b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab"
               + b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
               + b"GET /never HTTP/1.1\r\nHost: t\r\n\r\n")
        answers = []
        for method in ("GET", "POST", "GET"):
            resp, body = c.response(method)
            answers.append((resp.status_code, body, header(resp, "connection")))
        assert answers[1:] == [(200, b"ab", None), (200, b"index", "close")]
        assert answers[0][0] == 200 and answers[0][2] is None
        assert c.read_until_closed() == b""    # and nothing after the close request


def test_a_bad_request_pipelined_behind_a_busy_one_gets_its_400_after_the_others():
    with TestClient(pipeline_app()) as client, RawClient(client.port) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nvalid"
               b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n")
        first, body1 = c.response()
        second, body2 = c.response("POST")
        third, _ = c.response()
        assert (first.status_code, body1, header(first, "connection")) == (200, b"slow", None)
        assert (second.status_code, body2) == (200, b"valid")
        assert third.status_code == 400 and header(third, "connection") == "close"
        assert c.read_until_closed() == b""


def test_expect_100_continue_behind_a_busy_request_is_sent_when_its_turn_comes():
    with TestClient(pipeline_app()) as client, RawClient(client.port) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
               b"Content-Length: 3\r\n\r\n")
        resp, body = c.response()
        assert body == b"slow"
        # the client waits for the 100 before it sends the body (h11 may hold it already)
        while not c.conn.trailing_data[0].endswith(b"\r\n\r\n"):
            c.conn.receive_data(c.sock.recv(4096))
        assert c.conn.trailing_data[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.send(b"xyz")
        resp, body = c.response("POST")
        assert (resp.status_code, body) == (200, b"xyz")


def test_a_plain_response_with_its_own_framing_header_is_framed_as_it_says(caplog):
    app = Catzilla()

    @app.route("/short", methods=["GET", "HEAD"])
    def short(request: Request) -> Response:
        return Response(b"0123456789", headers={"Content-Length": "3"})

    @app.get("/long")
    def long(request: Request) -> Response:
        return Response(b"0123", headers={"Content-Length": "10"})

    @app.get("/exact")
    def exact(request: Request) -> Response:
        return Response(b"0123", headers={"Content-Length": "4"})

    @app.get("/te")
    def te(request: Request) -> Response:
        return Response(b"abcdef", headers={"Transfer-Encoding": "chunked"})

    @app.get("/next")
    def next_(request: Request) -> Response:
        return Response("next")

    @app.route("/head", methods=["HEAD"])
    def head(request: Request) -> Response:
        return Response(b"", headers={"Content-Length": "1234"})

    with TestClient(app) as client, RawClient(client.port) as c:
        for path, status, body in (("/short", 500, None), ("/long", 500, None),
                                   ("/exact", 200, b"0123"), ("/te", 200, b"abcdef")):
            c.send(b"GET %s HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n"
                   % path.encode())
            resp, got = c.response()
            assert resp.status_code == status, path
            assert body is None or got == body
            resp, got = c.response()       # the connection is still in step
            assert (resp.status_code, got) == (200, b"next"), path
        # HEAD answered without a body: the header describes the GET body
        c.send(b"HEAD /head HTTP/1.1\r\nHost: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, got = c.response("HEAD")
        assert resp.status_code == 200 and header(resp, "content-length") == "1234"
        assert c.response()[1] == b"next"
    errors = [r.getMessage() + str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("says 3 bytes but its body has 10" in e for e in errors)
    assert any("says 10 bytes but its body has 4" in e for e in errors)


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


def test_a_request_with_an_upgrade_we_ignore_keeps_its_body():
    # what curl --http2 -d ... sends to an http:// URL
    head = (b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
            b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n"
            b"Content-Length: 11\r\n\r\n")
    with TestClient(pipeline_app()) as client:
        with RawClient(client.port) as c:          # head and body in one write
            c.send(head + b"hello world")
            resp, body = c.response("POST")
            assert (resp.status_code, body) == (200, b"hello world")
        with RawClient(client.port) as c:          # the body later, then another request
            c.send(head + b"hello")
            c.send(b" world" + b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            resp, body = c.response("POST")
            assert (resp.status_code, body) == (200, b"hello world")
            resp, body = c.response()
            assert (resp.status_code, body) == (200, b"index")
        with RawClient(client.port) as c:          # a chunked body with it: refused, not lost
            c.send(head.replace(b"Content-Length: 11", b"Transfer-Encoding: chunked")
                   + b"5\r\nhello\r\n0\r\n\r\n")
            resp, body = c.response("POST")
            assert resp.status_code == 400


def test_a_status_set_to_1xx_after_the_response_was_built_gets_a_500():
    app = Catzilla()

    @app.get("/")
    def index(request: Request) -> Response:
        response = Response("queued")
        response.status_code = 102           # bypasses the constructor's check
        return response

    with TestClient(app) as client, RawClient(client.port, timeout=5) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, _ = c.response()
        assert resp.status_code == 500


def upload_app(**options) -> Catzilla:
    app = Catzilla(**options)

    @app.post("/echo")
    def echo(request: Request) -> Response:
        return Response(request.body)

    @app.get("/slow")
    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "0.05")))
        return Response("slow")

    return app


@pytest.mark.parametrize("head", [
    b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\n",
    b"POST /echo HTTP/1.0\r\nContent-Length: 5\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nExpect: 100-continue\r\n"
    b"Content-Length: 5\r\n\r\n",
])
def test_a_closing_request_whose_body_comes_later_keeps_its_body(head):
    with TestClient(upload_app()) as client, RawClient(client.port, timeout=5) as c:
        c.send(head)
        if b"Expect" in head:     # the body goes only after the 100
            while not c.conn.trailing_data[0].endswith(b"\r\n\r\n"):
                c.conn.receive_data(c.sock.recv(4096))
        else:
            # the head alone reaches the server first (a client reading a file, say)
            assert wait_for(lambda: client.app.connections and all(
                conn.path is None for conn in client.app.connections), 2)
        c.send(b"hello")
        data = c.read_until_closed()
        assert data.endswith(b"\r\n\r\nhello"), data


def test_an_owed_100_continue_is_not_replaced_by_a_408():
    # the request before it takes longer than request_timeout; the client rightly waits
    with TestClient(upload_app(request_timeout=1.0)) as client, \
            RawClient(client.port, timeout=6) as c:
        c.send(b"GET /slow?s=2.2 HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
               b"Content-Length: 5\r\n\r\n")
        resp, body = c.response()
        assert body == b"slow"
        while not c.conn.trailing_data[0].endswith(b"\r\n\r\n"):
            c.conn.receive_data(c.sock.recv(4096))
        assert c.conn.trailing_data[0] == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.send(b"hello")
        resp, body = c.response("POST")
        assert (resp.status_code, body) == (200, b"hello")


def test_no_408_while_the_server_itself_holds_off_reading():
    # 18 pipelined requests: reading pauses at 16 queued; the POST after them was sent whole
    with TestClient(upload_app(request_timeout=1.0)) as client, \
            RawClient(client.port, timeout=8) as c:
        c.send(b"GET /slow?s=0.15 HTTP/1.1\r\nHost: t\r\n\r\n" * 18
               + b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello")
        c.send(b"world")
        for _ in range(18):
            assert c.response()[1] == b"slow"
        resp, body = c.response("POST")
        assert (resp.status_code, body) == (200, b"helloworld")


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


def test_head_and_get_agree_on_a_wrong_content_length():
    app = Catzilla()

    @app.route("/short", methods=["GET", "HEAD"])
    def short(request: Request) -> Response:
        return Response(b"0123456789", headers={"Content-Length": "3"})

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"HEAD /short HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response("HEAD")[0].status_code == 500
        c.send(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response()[0].status_code == 500
