"""HTTP/1.1 framing over real loopback sockets, checked with h11 (an independent parser)."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time

import pytest
from _served import framing_app, head_lines, parse, read_all
from conftest import RawClient, fast_and_llhttp, header

from catzilla import (
    Catzilla,
    FileResponse,
    HTTPException,
    JSONResponse,
    Response,
    StreamingResponse,
)
from catzilla.testing import TestClient


def make_app(**kw) -> Catzilla:
    app = Catzilla(**kw)

    @app.get("/")
    def home(request):
        return Response(b"hello")

    @app.post("/echo")
    def echo(request):
        return Response(request.body, media_type="application/octet-stream",
                        headers={"X-Method": request.method})

    @app.get("/slow")
    async def slow(request):
        await asyncio.sleep(0.05)
        return Response(b"slow")

    @app.get("/n/{i:int}")
    def number(request):
        return JSONResponse({"i": request.path_params["i"]})

    @app.get("/boom")
    def boom(request):
        raise RuntimeError("kaboom")

    @app.get("/teapot")
    def teapot(request):
        raise HTTPException(418)

    @app.get("/big")
    def big(request):
        return Response(b"x" * 3_000_000)

    @app.get("/empty")
    def empty(request):
        return Response(status_code=204)

    @app.get("/close")
    def close(request):
        return Response(b"bye", headers={"Connection": "close"})

    @app.get("/badheader")
    def badheader(request):
        return Response(b"x", headers={"X-Evil": "a\r\nSet-Cookie: pwned=1"})

    return app


@pytest.fixture(scope="module")
def client():
    from catzilla import _core

    with TestClient(make_app()) as c:
        yield c
    assert _core.live_handles() == 0, "the module's server left libuv handles open"


@pytest.fixture(autouse=True)
def no_leaks():
    # The module-scoped server outlives single tests, so conftest's per-test leak check
    # would count it; the `client` fixture checks for leaks when the module ends.
    yield


def raw(client) -> RawClient:
    return RawClient(client.port)


def test_keep_alive_serves_many_requests_on_one_connection(client):
    with raw(client) as c:
        for _ in range(3):
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            resp, body = c.response()
            assert resp.status_code == 200 and body == b"hello"
            assert header(resp, "content-length") == "5"
            assert header(resp, "server") == "catzilla"
            assert header(resp, "date").endswith(" GMT")
            assert header(resp, "connection") is None


def test_pipelined_requests_are_answered_in_order_even_across_async_handlers(client):
    with raw(client) as c:
        c.send(b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
               b"GET /n/1 HTTP/1.1\r\nHost: t\r\n\r\n"
               b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
               b"GET /n/2 HTTP/1.1\r\nHost: t\r\n\r\n")
        bodies = [c.response(m)[1] for m in ("GET", "GET", "POST", "GET")]
        assert bodies == [b"slow", b'{"i":1}', b"abc", b'{"i":2}']


def test_many_pipelined_requests_in_one_write(client):
    with raw(client) as c:
        c.send(b"".join(b"GET /n/%d HTTP/1.1\r\nHost: t\r\n\r\n" % i for i in range(200)))
        for i in range(200):
            assert c.response()[1] == b'{"i":%d}' % i


def test_head_sends_headers_without_body(client):
    with raw(client) as c:
        c.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response("HEAD")
        assert resp.status_code == 200 and body == b""
        assert header(resp, "content-length") == "5"
        # the next response starts right after the head: nothing of a body was sent
        assert c.response()[1] == b"hello"


def test_http10_closes_after_response(client):
    with raw(client) as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        data = c.read_until_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\nConnection: close" in head
    assert body == b"hello"


def test_http10_keep_alive_is_honoured(client):
    with raw(client) as c:
        c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        data = b""
        while b"hello" not in data:
            data += c.sock.recv(4096)
        assert b"\r\nConnection: keep-alive\r\n" in data
        c.send(b"GET /n/7 HTTP/1.0\r\n\r\n")
        rest = c.read_until_closed()
        assert rest.endswith(b'{"i":7}')


def test_connection_close_request_header(client):
    with raw(client) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        resp, body = c.response()
        assert body == b"hello" and header(resp, "connection") == "close"
        assert c.is_closed_by_server()


def test_connection_close_response_header_closes(client):
    with raw(client) as c:
        c.send(b"GET /close HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert body == b"bye" and header(resp, "connection") == "close"
        assert c.is_closed_by_server()


def test_expect_100_continue(client):
    with raw(client) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
               b"Expect: 100-continue\r\n\r\n")
        interim = c.sock.recv(4096)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.send(b"12345")
        resp, body = c.response("POST")
        assert resp.status_code == 200 and body == b"12345"


def test_unsupported_expectation_gets_417(client):
    with raw(client) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nExpect: magic\r\n\r\nx")
        resp, _ = c.response("POST")
        assert resp.status_code == 417
        assert c.is_closed_by_server()


def test_chunked_request_body(client):
    with raw(client) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1;ext=1\r\n \r\n5\r\nworld\r\n0\r\nTrailer: x\r\n\r\n")
        resp, body = c.response("POST")
        assert resp.status_code == 200 and body == b"hello world"


def test_request_body_split_across_many_writes(client):
    payload = os.urandom(200_000)
    with raw(client) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % len(payload))
        for i in range(0, len(payload), 7919):
            c.send(payload[i:i + 7919])
        resp, body = c.response("POST")
        assert body == payload


def test_large_response_body_arrives_whole(client):
    with raw(client) as c:
        c.send(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert header(resp, "content-length") == "3000000" and body == b"x" * 3_000_000


@pytest.mark.parametrize("request_line", [
    b"GET /huge HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    b"GET /huge HTTP/1.0\r\n\r\n",
], ids=["connection-close", "http10"])
def test_a_client_that_half_closes_after_its_request_gets_all_of_a_closing_response(
        request_line):
    """A response after which the server closes, too big for the socket buffers, reaches a
    client that sent its FIN right after the request (as an HTTP/1.0 client or `nc -N` may):
    the FIN arrives while most of the response waits in libuv's queue, and must not drop it."""
    body = bytes(range(256)) * (64 * 1024)   # 16 MiB: far more than the kernel's buffers
    app = Catzilla()
    app.add_route("/huge", lambda r: Response(body))
    with TestClient(app) as server, RawClient(server.port, rcvbuf=65536) as c:
        c.send(request_line)
        c.sock.shutdown(socket.SHUT_WR)
        data = c.read_until_closed()
    head, _, got = data.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(body) in head
    assert len(got) == len(body) and got == body


def test_204_has_no_body_and_no_length(client):
    with raw(client) as c:
        c.send(b"GET /empty HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert resp.status_code == 204 and body == b""
        assert header(resp, "content-length") is None
        assert c.response()[1] == b"hello"


@pytest.mark.parametrize(
    "request_bytes, status",
    [
        (b"this is not http\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 12abc\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx", 400),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        (b"BREW /pot HTTP/1.1\r\nHost: t\r\n\r\n", 501),
        (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
        (b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 40000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150)) + b"\r\n", 431),
        (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n", 413),
    ],
    ids=["garbage", "bad-header-line", "bad-content-length", "double-content-length",
         "bad-chunk-size", "unknown-method", "long-url", "big-header", "too-many-headers",
         "huge-content-length"],
)
def test_bad_requests_get_4xx_or_501_and_the_connection_closes(client, request_bytes, status):
    with raw(client) as c:
        c.send(request_bytes)
        data = c.read_until_closed()
    assert data.startswith(b"HTTP/1.1 %d " % status), data[:80]
    assert b"\r\nConnection: close\r\n" in data
    # and the server still serves
    assert client.get("/").content == b"hello"


def test_header_sent_slowly_over_limit_gets_431(client):
    with raw(client) as c:
        c.send(b"GET / HTTP/1.1\r\nX-Slow: ")
        try:
            for _ in range(20):
                c.send(b"v" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = c.read_until_closed()
    assert data.startswith(b"HTTP/1.1 431 ")


def test_an_oversize_header_field_arriving_in_one_read_gets_431(client):
    # 60 KB of one unfinished header value in one write (one read on loopback): the parser
    # holds the field unfinished, so only counting the read itself catches it
    with raw(client) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: " + b"v" * 60000)
        resp, _ = c.response()
        assert resp.status_code == 431


def test_a_head_under_the_limit_split_over_several_reads_is_served(client):
    # 24 KB of headers (the limit is 32 KiB) in three writes, as a slow network delivers them
    fields = b"".join(b"X-F%03d: %s\r\n" % (i, b"v" * 400) for i in range(60))
    head = b"GET / HTTP/1.1\r\nHost: t\r\n" + fields + b"\r\n"
    with raw(client) as c:
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(0, len(head), 8000):
            c.send(head[i:i + 8000])
            time.sleep(0.05)            # shaping the traffic into separate reads
        resp, _ = c.response()
        assert resp.status_code == 200


def test_chunked_body_over_limit_gets_413():
    app = make_app(max_body_size=1000)
    with TestClient(app) as client, raw(client) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(5):
                c.send(b"190\r\n" + b"z" * 400 + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = c.read_until_closed()
        assert data.startswith(b"HTTP/1.1 413 ")


def test_handler_exception_gives_500_without_trace_and_keeps_serving(client, caplog):
    with raw(client) as c:
        c.send(b"GET /boom HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert resp.status_code == 500
        assert body == b'{"detail":"Internal Server Error"}'
        assert b"kaboom" not in body
        # same connection still works
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert c.response()[1] == b"hello"
    assert any("kaboom" in (r.exc_text or "") or (r.exc_info and "kaboom" in str(r.exc_info[1]))
               for r in caplog.records)


def test_debug_mode_shows_the_traceback():
    with TestClient(make_app(debug=True)) as client:
        r = client.get("/boom")
        assert r.status == 500
        assert "RuntimeError: kaboom" in r.text and "Traceback" in r.text


def test_http_exception_status_and_reason(client):
    with raw(client) as c:
        c.send(b"GET /teapot HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert resp.status_code == 418 and resp.reason == b"I'm a Teapot"
        assert body == b'{"detail":"I\'m a Teapot"}'


def test_response_header_injection_is_refused(client):
    r = client.get("/badheader")
    assert r.status == 500
    assert "X-Evil" not in r.headers and "Set-Cookie" not in r.headers


def test_absolute_form_target(client):
    with raw(client) as c:
        c.send(b"GET http://example.test/n/3 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        assert c.response()[1] == b'{"i":3}'


def test_random_garbage_never_crashes_the_server(client):
    rng = random.Random(1234)
    for _ in range(60):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        if rng.random() < 0.5:
            junk = b"GET /" + junk
        with raw(client) as c:
            try:
                c.send(junk + b"\r\n\r\n")
                c.sock.shutdown(socket.SHUT_WR)
                data = c.read_until_closed()
            except ConnectionResetError:
                data = b""
        assert data == b"" or data.startswith(b"HTTP/1.1 ")
    assert client.get("/").content == b"hello"


def test_client_that_vanishes_mid_request_is_cleaned_up(client):
    before = len(client.server.connections)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", client.port))
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly-part")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()  # RST
    # a request after them is served, and their registry entries are gone by then
    with raw(client) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        c.response()
        assert len(client.server.connections) == before + 1


def test_idle_keep_alive_connection_is_closed_after_timeout():
    app = make_app(keep_alive_timeout=0.5)
    with TestClient(app) as client, raw(client) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        c.response()
        c.sock.settimeout(5)
        assert c.is_closed_by_server()


def test_shutdown_closes_idle_keep_alive_connections():
    app = make_app()
    with TestClient(app) as client:
        conns = [raw(client) for _ in range(5)]
        for c in conns:
            c.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            c.response()
    for c in conns:
        assert c.is_closed_by_server()
        c.close()


def test_reason_phrase_for_every_standard_status_code():
    from http import HTTPStatus

    app = Catzilla()

    @app.get("/status/{code:int}")
    def status(request):
        return Response(status_code=request.path_params["code"])

    codes = [s for s in HTTPStatus if s >= 200]
    with TestClient(app) as client, raw(client) as c:
        c.send(b"".join(b"GET /status/%d HTTP/1.1\r\nHost: t\r\n\r\n" % s for s in codes))
        for s in codes:
            resp, _ = c.response()
            assert resp.status_code == s
            assert resp.reason.decode() == s.phrase, s


def test_non_bytes_raw_header_is_a_500_not_a_crash():
    app = Catzilla()

    @app.get("/h")
    def h(request):
        r = Response("x")
        r.raw_headers.append(("X-Str", "not bytes"))   # raw headers must be byte pairs
        return r

    with TestClient(app) as client:
        assert client.get("/h").status == 500
        assert client.get("/h").status == 500


# -- a Content-Length the handler sets --------------------------------------------------------

@pytest.fixture(scope="module")
def servers():
    with fast_and_llhttp(framing_app) as clients:
        yield clients


@pytest.mark.parametrize("kind", ["", "/stream"])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("path, ok", [
    ("/cl/one", True), ("/cl/same", True), ("/cl/differ", False), ("/cl/plus", False),
    ("/cl/underscore", False), ("/cl/space", False), ("/cl/list", False), ("/cl/empty", False),
])
def test_a_response_content_length_is_plain_digits_and_one_value(servers, kind, method, path,
                                                                 ok, caplog):
    fast, _ = servers
    caplog.set_level(logging.ERROR)
    request = b"%s %s HTTP/1.1\r\nHost: t\r\n\r\n" % (method.encode(), (kind + path).encode())
    raw = read_all(fast.port, request + b"GET /next HTTP/1.1\r\nHost: t\r\nConnection: close"
                   b"\r\n\r\n")
    (first, nxt), rest = parse(raw, [method, "GET"])
    lengths = head_lines(raw, b"content-length")
    if ok:
        # several equal fields frame the body like one, and one line says it
        assert first == (200, b"0123" if method == "GET" else b"")
        assert lengths == [b"Content-Length: 4"]
    else:
        # the app's error, like a Content-Length that does not match the body: a logged 500
        assert first[0] == 500
        assert len(lengths) == 1 and lengths[0] != b"Content-Length: 4"
        assert any("Content-Length" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    # the connection is still in step
    assert nxt[0] == 200 and b'"path":"/next"' in nxt[1] and rest == b""


# -- 204, 304, bad bodies and header values, streams cut short --------------------------------

@pytest.fixture(scope="module")
def odd_responses(tmp_path_factory):
    path = tmp_path_factory.mktemp("files") / "f.bin"
    path.write_bytes(b"x" * 1000)
    app = Catzilla()

    @app.get("/204/length")
    def length_204(request):
        return Response(status_code=204, headers={"Content-Length": "5"})

    @app.get("/204/chunked")
    def chunked_204(request):
        return Response(status_code=204, headers={"Transfer-Encoding": "chunked"})

    @app.get("/204/file")
    def file_204(request):
        return FileResponse(str(path), status_code=204)

    @app.get("/304/length")
    def length_304(request):
        return Response(status_code=304, headers={"Content-Length": "1000", "ETag": '"a"'})

    @app.get("/int-body")
    def int_body(request):
        r = Response(b"")
        r.body = 12   # bytes(12) would be twelve NULs
        return r

    @app.get("/none-header")
    def none_header(request):
        return Response(b"x", headers={"X-Maybe": None})

    @app.get("/ok")
    def ok(request):
        return Response(b"fine")

    def parts(fail):
        yield b"part1;"
        if fail:
            raise RuntimeError("the producer fails")
        yield b"part2;"

    @app.get("/stream/{how}")
    def stream(request):
        return StreamingResponse(parts(request.path_params["how"] == "fail"))

    with TestClient(app) as c:
        yield c


def head_of(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[0].lower()


@pytest.mark.parametrize("path", ["/204/length", "/204/chunked", "/204/file"])
def test_a_204_carries_no_framing_header_and_the_connection_goes_on(odd_responses, path):
    # RFC 9110 8.6 and RFC 9112 6.1: no Content-Length, no Transfer-Encoding on a 204
    with socket.create_connection(("127.0.0.1", odd_responses.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\nGET /ok HTTP/1.1\r\nHost: t\r\n"
                     "Connection: close\r\n\r\n".encode())
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    first, _, rest = raw.partition(b"\r\n\r\n")
    assert first.startswith(b"HTTP/1.1 204 ")
    assert b"content-length" not in first.lower() and b"transfer-encoding" not in first.lower()
    assert rest.startswith(b"HTTP/1.1 200 ") and rest.endswith(b"\r\n\r\nfine")


def test_a_304_keeps_its_content_length(odd_responses):
    with RawClient(odd_responses.port) as c:
        c.send(b"GET /304/length HTTP/1.1\r\nHost: t\r\n\r\n")
        resp, body = c.response()
        assert resp.status_code == 304 and body == b""
        assert (b"content-length", b"1000") in resp.headers


@pytest.mark.parametrize("path", ["/int-body", "/none-header"])
def test_a_bad_body_or_header_value_is_a_500(odd_responses, path, caplog):
    with RawClient(odd_responses.port) as c:
        c.send(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        resp, body = c.response()
        assert resp.status_code == 500 and b"\x00" not in body
    assert any(r.levelname == "ERROR" for r in caplog.records)


def read_until_end(sock: socket.socket) -> tuple[bytes, str]:
    raw = b""
    try:
        while chunk := sock.recv(65536):
            raw += chunk
    except ConnectionResetError:
        return raw, "reset"
    return raw, "fin"


def test_an_http10_stream_cut_short_ends_with_a_reset(odd_responses):
    # a close-delimited body has no other way to say it is incomplete (RFC 9112 8)
    for how, end, body in (("ok", "fin", b"part1;part2;"), ("fail", "reset", b"part1;")):
        with socket.create_connection(("127.0.0.1", odd_responses.port), timeout=10) as sock:
            sock.sendall(f"GET /stream/{how} HTTP/1.0\r\nHost: t\r\n\r\n".encode())
            raw, how_it_ended = read_until_end(sock)
        assert how_it_ended == end, (how, raw)
        assert b"transfer-encoding" not in head_of(raw)
        if end == "fin":
            assert raw.endswith(b"\r\n\r\n" + body)


def test_an_http11_stream_cut_short_still_ends_with_a_fin(odd_responses):
    # (chunked framing says it: no last chunk)
    with socket.create_connection(("127.0.0.1", odd_responses.port), timeout=10) as sock:
        sock.sendall(b"GET /stream/fail HTTP/1.1\r\nHost: t\r\n\r\n")
        raw, how_it_ended = read_until_end(sock)
    assert how_it_ended == "fin"
    assert raw.endswith(b"6\r\npart1;\r\n") and not raw.endswith(b"0\r\n\r\n")
