"""Requests on one connection, over real loopback sockets: pipelined requests behind a busy one
are answered in order (a 400, a 100 Continue, a request that closes the connection, each in its
turn), a request keeps a body that comes after its head, and request_timeout does not cut a
request that waits for its turn or for the server to read on."""

from __future__ import annotations

import asyncio

import pytest
from conftest import RawClient, header, wait_for

from catzilla import Catzilla, Request, Response, StreamingResponse
from catzilla.testing import TestClient

# -- pipelined behind a busy request ----------------------------------------------------------

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


# -- bodies that come later, and request_timeout ----------------------------------------------

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
