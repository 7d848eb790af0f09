"""HTTP/1.1 framing findings of a review: a response's own Content-Length headers, Upgrade
requests we ignore, HEAD requests the server rejects, Proxy-Connection and the status of a
request line with an invalid method. Real loopback sockets; responses are checked as raw
bytes and parsed by h11. Where the parser path matters, one app runs on two servers: with
the fast path for plain heads and without it (llhttp only), and both must answer the same."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import time

import h11
import pytest
from conftest import RawClient, fast_and_llhttp

from catzilla import Catzilla, JSONResponse, Response, StreamingResponse, _core
from catzilla.testing import TestClient

NEXT = b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n"


def make_app() -> Catzilla:
    app = Catzilla()

    def cl(*values: str):
        return [("Content-Length", v) for v in values]

    # a handler that sets its own Content-Length (e.g. forwarding an upstream's headers)
    framed = {
        "/cl/one": cl("4"),
        "/cl/same": cl("4", "4"),
        "/cl/differ": cl("4", "40"),
        "/cl/plus": cl("+4"),
        "/cl/underscore": cl("0_4"),
        "/cl/space": cl(" 4"),
        "/cl/list": cl("4, 4"),
        "/cl/empty": cl(""),
    }
    for path, headers in framed.items():
        app.route(path, methods=["GET", "HEAD"])(
            lambda request, h=headers: Response(b"0123", headers=h))
        app.route("/stream" + path, methods=["GET", "HEAD"])(
            lambda request, h=headers: StreamingResponse(iter([b"01", b"23"]), headers=h))

    @app.route("/slow", methods=["GET", "HEAD"])
    async def slow(request):
        await asyncio.sleep(0)   # busy while the rest of the read is parsed
        return Response(b"slow")

    @app.route("/{rest:path}", methods=["GET", "HEAD", "POST"])
    def echo(request):
        return JSONResponse({"method": request.method, "path": request.raw_path.decode(),
                             "body": request.body.decode("latin-1")})

    return app


@pytest.fixture(scope="module")
def servers():
    with fast_and_llhttp(make_app) as clients:
        yield clients


@pytest.fixture(autouse=True)
def no_leaks():
    yield   # module-scoped servers; TestClient checks its own shutdown


def read_all(port: int, data: bytes) -> bytes:
    """Send data (no half-close: the server must close by itself) and read until it does."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def parse(raw: bytes, methods: list[str]) -> tuple[list[tuple[int, bytes]], bytes]:
    """The responses in raw to requests made with methods, parsed by h11, and the bytes
    after the last of them."""
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(raw)
    out = []
    for method in methods:
        if conn.our_state is h11.DONE:
            conn.start_next_cycle()
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
        conn.send(h11.EndOfMessage())
        status, body = None, b""
        while True:
            event = conn.next_event()
            assert event is not h11.NEED_DATA, "incomplete response in %r" % raw
            if isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                break
        out.append((status, body))
    return out, conn.trailing_data[0]


def head_lines(raw: bytes, name: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line.lower().startswith(name + b":")]


# -- 1. a response's own Content-Length -----------------------------------------------------


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


def test_serialise_head_writes_one_content_length_of_equal_fields():
    head = _core.serialise_head(200, [(b"Content-Length", b"7"), (b"content-length", b"7")])
    assert head.lower().count(b"content-length") == 1 and b"Content-Length: 7\r\n" in head
    for headers in ([(b"Content-Length", b"7"), (b"Content-Length", b"8")],
                    [(b"Content-Length", b"-1")], [(b"Content-Length", b"7 ")],
                    [(b"Content-Length", b"1" * 30)]):
        with pytest.raises(ValueError):
            _core.serialise_head(200, headers)


# -- 2. an Upgrade request we ignore --------------------------------------------------------


@pytest.mark.parametrize("request_", [
    b"GET /a HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"Content-Length: 0\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n"
    b"Content-Length: 2\r\n\r\nhi",
], ids=["h2c-get", "post-empty", "post-body"])
def test_an_ignored_upgrade_is_served_as_http11_and_the_connection_goes_on(servers, request_):
    method = request_.split(b" ", 1)[0].decode()
    for srv in servers:
        with RawClient(srv.port) as c:
            c.send(request_ + NEXT)   # pipelined
            resp, body = c.response(method)
            assert resp.status_code == 200 and b'"path":"/a"' in body
            assert resp.headers and (b"connection", b"close") not in resp.headers
            assert b'"path":"/next"' in c.response()[1]
            c.send(request_)           # and reused after its response, as curl --http2 does
            assert b'"path":"/a"' in c.response(method)[1]
            c.send(NEXT)
            assert b'"path":"/next"' in c.response()[1]


def test_many_ignored_upgrades_in_one_read_are_all_answered(servers):
    upgrade = b"GET /u HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
    for srv in servers:
        raw = read_all(srv.port, upgrade * 300 + b"GET /last HTTP/1.1\r\nHost: t\r\n"
                       b"Connection: close\r\n\r\n")
        responses, rest = parse(raw, ["GET"] * 301)
        assert [b'"path":"/u"' in body for _, body in responses[:300]] == [True] * 300
        assert b'"path":"/last"' in responses[300][1] and rest == b""


def test_connect_is_still_refused_and_closes(servers):
    for srv in servers:
        raw = read_all(srv.port, b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n" + NEXT)
        (resp,), rest = parse(raw, ["CONNECT"])
        assert resp[0] == 501 and rest == b""


# -- 3. a HEAD request the server rejects ---------------------------------------------------


@pytest.mark.parametrize("head, status", [
    (b"HEAD /x HTTP/1.1\r\n\r\n", 400),                                   # no Host
    (b"HEAD /x HTTP/1.1\r\nHost: a b\r\n\r\n", 400),                      # invalid Host
    (b"HEAD /x HTTP/1.1\r\nHost: t\r\nExpect: magic\r\n\r\n", 417),
    (b"HEAD /x HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999\r\n\r\n", 413),
    (b"HEAD /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: t\r\n\r\n", 414),
    (b"HEAD /x HTTP/1.1\r\nHost: t\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(101))
     + b"\r\n", 431),
    (b"HEAD /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
], ids=["no-host", "bad-host", "expect", "too-large", "long-target", "many-fields", "coding"])
def test_a_rejected_head_request_gets_no_body(servers, head, status):
    for srv in servers:
        raw = read_all(srv.port, head)
        assert raw.startswith(b"HTTP/1.1 %d " % status)
        assert raw.endswith(b"\r\n\r\n"), raw   # the head and nothing after it
        assert b"connection: close" in raw.lower()
        # ... also when it waits for the answer to a busy request before it
        raw = read_all(srv.port, b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n" + head)
        (first, second), rest = parse(raw, ["GET", "HEAD"])
        assert first == (200, b"slow") and second == (status, b"") and rest == b""


def test_a_rejected_request_of_unknown_method_keeps_its_body(servers):
    for srv in servers:
        raw = read_all(srv.port, b"G\x01T /x HTTP/1.1\r\nHost: t\r\n\r\n")
        (resp,), rest = parse(raw, ["GET"])
        assert resp[0] == 400 and b"detail" in resp[1] and rest == b""


def test_a_head_request_that_times_out_gets_no_body():
    with TestClient(make_app()) as client, RawClient(client.port) as c:
        client.server.request_timeout = 0.5
        c.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n")   # the head never ends
        raw = c.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 408 ") and raw.endswith(b"\r\n\r\n"), raw


# -- 4. Proxy-Connection ----------------------------------------------------------------


def test_proxy_connection_close_gets_the_same_answer_on_both_paths(servers):
    fast, slow = servers
    data = (b"GET /a HTTP/1.1\r\nHost: t\r\nProxy-Connection: close\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
    raws = [read_all(srv.port, data) for srv in (fast, slow)]
    for raw in raws:
        (resp,), rest = parse(raw, ["GET"])   # llhttp reads it as Connection: close
        assert b'"path":"/a"' in resp[1] and rest == b""
    assert head_lines(raws[0], b"connection") == head_lines(raws[1], b"connection")


# -- 5. 400 or 501 for an invalid method -------------------------------------------------------


def test_the_status_of_an_invalid_method_depends_on_its_own_line(servers):
    good = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
    bad = b"G\x01T /b HTTP/1.1\r\nHost: t\r\n\r\n"      # not a request line: 400
    unknown = b"FOO /b HTTP/1.1\r\nHost: t\r\n\r\n"     # a method we do not implement: 501
    for srv in servers:
        for before in (b"", b"\r\n", good):
            # (when llhttp read the GET, the well-formed line before must not be what is judged)
            raw = read_all(srv.port, before + bad)
            assert raw.count(b"HTTP/1.1 400 ") == 1 and b"HTTP/1.1 501" not in raw, before
        for before in (b"", b"\r\n"):
            raw = read_all(srv.port, before + unknown)
            assert raw.startswith(b"HTTP/1.1 501 "), before
    # behind a request the fast path took, the line starts its own read of llhttp
    raw = read_all(servers[0].port, good + unknown)
    assert b"HTTP/1.1 200 " in raw and b"HTTP/1.1 501 " in raw


def read_all_in_pieces(port: int, pieces: list[bytes]) -> bytes:
    """Send pieces apart (TCP_NODELAY, a pause between them, so that the server reads them
    apart) and read until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(0.05)
            sock.sendall(piece)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("cut", [1, 3, 4, 6, 9, 14, 16])
@pytest.mark.parametrize("before", [b"", b"\r\n"])   # (an empty line llhttp skips)
def test_an_unknown_method_split_across_reads_is_still_501(servers, cut, before):
    unknown = before + b"FOO /b HTTP/1.1\r\nHost: t\r\n\r\n"
    cut += len(before)
    for srv in servers:
        raw = read_all_in_pieces(srv.port, [unknown[:cut], unknown[cut:]])
        assert raw.startswith(b"HTTP/1.1 501 "), (cut, raw[:40])


def test_a_garbled_line_split_across_reads_is_400(servers):
    for srv in servers:
        for pieces in ([b"FOO", b" /b XTTP/1.1\r\nHost: t\r\n\r\n"],
                       [b"FOO /b", b"\x01 HTTP/1.1\r\nHost: t\r\n\r\n"],
                       [b"FO", b"O", b" ", b"/b HTTP/x.1\r\n\r\n"]):
            raw = read_all_in_pieces(srv.port, pieces)
            assert raw.startswith(b"HTTP/1.1 400 "), (pieces, raw[:40])


def test_an_unknown_method_with_an_endless_target_is_400(servers):
    # the line is judged at max_url_size (8 KiB): it is not buffered without end
    for srv in servers:
        raw = read_all_in_pieces(srv.port, [b"FOO /", b"a" * 9000])
        assert raw.startswith(b"HTTP/1.1 400 "), raw[:40]


# -- the head-size limit, in one read or several ---------------------------------------------

LIMIT = 2048


def small_head_app() -> Catzilla:
    app = make_app()
    app.limits["max_header_size"] = LIMIT
    return app


@pytest.fixture(scope="module")
def small_servers():
    with fast_and_llhttp(small_head_app) as clients:
        yield clients


def sized_head(total: int) -> bytes:
    """A GET head whose target and fields count `total` bytes as the limit counts them: the
    target, and each field's name and value plus 4 (": " and CRLF)."""
    target = b"/h"
    fields = [(b"Host", b"t"), (b"Connection", b"close")]
    counted = len(target) + sum(len(n) + len(v) + 4 for n, v in fields)
    fields.append((b"X-Pad", b"v" * (total - counted - len(b"X-Pad") - 4)))
    return (b"GET " + target + b" HTTP/1.1\r\n"
            + b"".join(n + b": " + v + b"\r\n" for n, v in fields) + b"\r\n")


@pytest.mark.parametrize("total,status", [(LIMIT, b"200"), (LIMIT + 1, b"431")])
def test_the_head_size_limit_does_not_depend_on_how_the_head_is_split(small_servers, total,
                                                                      status):
    head = sized_head(total)
    assert head.count(b"\r\n") == 5
    for srv in small_servers:
        assert srv.server.max_header_size == LIMIT
        for pieces in ([head], [head[:600], head[600:1400], head[1400:]], [head[:-1], head[-1:]]):
            raw = read_all_in_pieces(srv.port, pieces)
            assert raw.startswith(b"HTTP/1.1 " + status + b" "), (len(pieces), raw[:40])


# -- findings of a differential fuzz (fast path against llhttp, one read against pieces) ----

GET_A = b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
POST_A = b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
UNKNOWN = b"FOO /b HTTP/1.1\r\nHost: t\r\n\r\n"
CHUNKED_A = (b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
             b"2;x=1\r\nhi\r\n0\r\nT: v\r\n\r\n")


@pytest.mark.parametrize("before", [GET_A, POST_A, GET_A + POST_A])
def test_an_unknown_method_behind_requests_in_the_same_read_is_501(servers, before):
    # llhttp reads the requests before it in the same read: where they end is found again
    for srv in servers:
        for pieces in ([before + UNKNOWN], [before, UNKNOWN]):
            raw = read_all_in_pieces(srv.port, pieces)
            statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)
            assert statuses == [b"200"] * before.count(b"HTTP/1.1") + [b"501"], (pieces, raw)


@pytest.mark.parametrize("cut", [8, 30, 49])   # in the request line, in a field, in the body
def test_an_unknown_method_after_a_request_that_began_in_an_earlier_read_is_501(servers, cut):
    stream = POST_A + UNKNOWN
    assert stream[48:50] == b"hi"
    for srv in servers:
        raw = read_all_in_pieces(srv.port, [stream[:cut], stream[cut:]])
        assert re.findall(rb"HTTP/1\.1 (\d{3}) ", raw) == [b"200", b"501"], (cut, raw)


def test_a_rejected_head_request_has_no_body_however_it_is_read(servers):
    head = b"HEAD h:80 HTTP/1.1\r\nHost: t\r\n\r\n"   # the target fails in llhttp
    for srv in servers:
        for pieces in ([head], [head[:6], head[6:]]):
            raw = read_all_in_pieces(srv.port, pieces)
            assert raw.startswith(b"HTTP/1.1 400 ") and raw.endswith(b"\r\n\r\n"), raw
            assert b"Content-Length: " in raw   # (the length a GET would have had, no body)


@pytest.mark.parametrize("how", ["one read", "pieces"])
def test_whitespace_counts_toward_the_head_limit_however_the_head_is_split(small_servers, how):
    # 3,500 bytes of optional whitespace: within max_header_size (2 KiB) by fields, past it
    # and its 1 KiB of slack in raw bytes; and a head of fields within the limit, padded to
    # the raw bound exactly
    padded = b"GET /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX:" + b" " * 3500 + b"v\r\n\r\n"
    fits = b"GET /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\nX:%s v\r\n\r\n"
    fits = fits % (b" " * (LIMIT + 1024 - len(fits % b"")))
    assert len(fits) == LIMIT + 1024
    for srv in small_servers:
        for head, status in ((padded, b"431"), (fits, b"200")):
            pieces = [head] if how == "one read" else [head[:900], head[900:1900], head[1900:]]
            raw = read_all_in_pieces(srv.port, pieces)
            assert raw.startswith(b"HTTP/1.1 " + status + b" "), (len(head), raw[:40])


def test_empty_lines_before_a_request_do_not_count_toward_its_head(small_servers):
    lead = b"\r\n" * 2000   # 4,000 bytes: past the raw bound of a head
    head = b"GET /h HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    for srv in small_servers:
        for pieces in ([lead + head], [lead + head[:16], head[16:]], [lead, head]):
            raw = read_all_in_pieces(srv.port, pieces)
            assert raw.startswith(b"HTTP/1.1 200 "), raw[:40]


def test_a_long_chunk_extension_gets_the_same_answer_in_one_read_or_in_pieces(small_servers):
    # llhttp skips chunk extensions without buffering them: time bounds them (408), not the
    # head limit, however they arrive; a trailer field in pieces is still bounded (431, see
    # test_request_validation)
    head = b"POST /e HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    size_line = b"1;" + b"x" * 4000 + b"\r\n"
    rest = b"a\r\n0\r\n\r\n"
    for srv in small_servers:
        for pieces in ([head + size_line + rest], [head, size_line, rest],
                       [head, size_line[:2000], size_line[2000:], rest]):
            raw = read_all_in_pieces(srv.port, pieces)
            assert raw.startswith(b"HTTP/1.1 200 ") and b'"body":"a"' in raw, raw[:60]


@pytest.mark.parametrize("pieces", [
    [GET_A + POST_A[:20], POST_A[20:] + UNKNOWN],        # behind a head that began behind GET_A
    [GET_A + b"FO", b"O /b HTT", b"P/1.1\r\nHost: t\r\n\r\n"],   # a line in pieces behind GET_A
    [POST_A + b"\r\nFOO /b", b" HTTP/1.1\r\nHost: t\r\n\r\n"],
    # behind a chunked body that began in an earlier read
    [CHUNKED_A[:60], CHUNKED_A[60:] + UNKNOWN],
])
def test_an_unknown_method_behind_requests_is_judged_on_its_own_line_in_pieces(servers, pieces):
    # where the requests before it end in the read is known, so its line is found and kept
    for srv in servers:
        raw = read_all_in_pieces(srv.port, pieces)
        statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", raw)
        assert statuses[-1:] == [b"501"] and b"400" not in statuses, (pieces, raw)
