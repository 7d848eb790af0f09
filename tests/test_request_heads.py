"""Request heads: complete plain heads are read without llhttp (the fast path); every head must
get the same answer either way. Two servers of one app, one with the fast path and one without,
get the same bytes over real sockets and must send back the same bytes (but for Date)."""

from __future__ import annotations

import random
import re
import socket

import pytest
from conftest import exchange as _exchange
from conftest import fast_and_llhttp

from catzilla import Catzilla, JSONResponse


def make_app() -> Catzilla:
    app = Catzilla()

    @app.route("/{rest:path}", methods=["GET", "HEAD", "POST"])
    def echo(request):
        return JSONResponse({
            "method": request.method,
            "path": request.raw_path.decode("latin-1"),
            "query": request.query_string.decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")]
                        for k, v in request.raw_headers],
            "version": request.http_version,
            "keep_alive": request.keep_alive,
            "body": request.body.decode("latin-1"),
        })

    return app


@pytest.fixture(scope="module")
def servers():
    with fast_and_llhttp(make_app) as (fast, slow):
        yield fast.port, slow.port


@pytest.fixture(autouse=True)
def no_leaks():
    yield   # module-scoped servers; TestClient checks its own shutdown


_DATE = re.compile(rb"\r\ndate: [^\r]*", re.I)


def exchange(port: int, data: bytes) -> bytes:
    """conftest.exchange with the Date header taken out (it differs between servers)."""
    return _DATE.sub(b"", _exchange(port, data))


def both(servers, data: bytes) -> bytes:
    fast_port, slow_port = servers
    got = exchange(fast_port, data)
    want = exchange(slow_port, data)
    assert got == want, f"fast path and llhttp differ for {data!r}"
    return got


def test_plain_request_is_answered(servers):
    out = both(servers, b"GET /a/b?x=1&y=%20 HTTP/1.1\r\nHost: t\r\nX-Two: a b\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 ")
    body = out.split(b"\r\n\r\n", 1)[1]
    assert b'"path":"/a/b","query":"x=1&y=%20"' in body
    assert b'"headers":[["Host","t"],["X-Two","a b"]]' in body


def test_pipelined_fast_and_slow_requests_keep_their_order(servers):
    data = (b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /2 HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /3 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"HEAD /4 HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /5 HTTP/1.1\r\nHost: t\r\n\r\n")
    out = both(servers, data)
    assert out.count(b"HTTP/1.1 200 ") == 5
    paths = re.findall(rb'"path":"(/\d)"', out)
    assert paths == [b"/1", b"/2", b"/3", b"/5"]   # HEAD's answer has no body
    assert b'"body":"abc"' in out


def test_nothing_after_a_connection_close_request_is_answered(servers):
    out = both(servers, b"GET /1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
                        b"GET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert out.count(b"HTTP/1.1 ") == 1 and b'"path":"/1"' in out
    assert b"connection: close" in out.lower()


def test_head_split_across_reads_is_parsed_whole(servers):
    fast_port, _ = servers
    with socket.create_connection(("127.0.0.1", fast_port), timeout=10) as sock:
        sock.sendall(b"GET /split HTTP/1.1\r\nHo")
        sock.sendall(b"st: t\r\n\r\nGET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    assert re.findall(rb'"path":"(/\w+)"', out) == [b"/split", b"/next"]


@pytest.mark.parametrize("head", [
    b"GET /x HTTP/1.1\r\nHost:  two-spaces\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: trailing \r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost:\tt\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost:t\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nEmpty:\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nBad Name: v\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost : t\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nFold: a\r\n b\r\n\r\n",
    b"GET /x HTTP/1.1\nHost: t\n\n",
    b"GET /x HTTP/1.0\r\n\r\n",
    b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /x HTTP/1.2\r\nHost: t\r\n\r\n",
    b"GET /x HTTP/2.0\r\nHost: t\r\n\r\n",
    b"GET /x http/1.1\r\n\r\n",
    b"GET  /x HTTP/1.1\r\n\r\n",
    b"get /x HTTP/1.1\r\n\r\n",
    b"GET x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET http://h/abs?q HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /a#frag HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /a\x7fb HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nX: caf\xc3\xa9\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nX: a\x00b\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: Close\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: close, te\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
    # llhttp reads Proxy-Connection as Connection: the fast path leaves it to llhttp
    b"GET /x HTTP/1.1\r\nHost: t\r\nProxy-Connection: close\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nProxy-Connection: keep-alive\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi",
    b"GET /x HTTP/1.1\r\nHost: t\r\nContent-Length: nope\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nExpect: something\r\n\r\n",
    b"\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
    b"GET /x HTTP/1.1\r\n" + b"".join(b"H%d: v\r\n" % i for i in range(101)) + b"\r\n",
    b"GET /x HTTP/1.1\r\nBig: " + b"v" * 33000 + b"\r\n\r\n",
])
def test_odd_heads_get_the_same_answer(servers, head):
    out = both(servers, head)
    assert out.startswith(b"HTTP/1.")


@pytest.mark.parametrize("head, status", [
    # Host (RFC 9112 3.2): exactly one valid Host in HTTP/1.1
    (b"GET /x HTTP/1.1\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nX-A: 1\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nhost: a\r\n\r\n", 400),
    (b"HEAD /x HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a b/c@d\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a.example:80x\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: [::1\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHost: a%2\r\n\r\n", 400),
    (b"GET /x HTTP/1.0\r\nHost: a b\r\n\r\n", 400),
    (b"GET /x HTTP/1.1\r\nHOST: a.example:8080\r\n\r\n", 200),
    (b"GET /x HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", 200),
    (b"GET /x HTTP/1.1\r\nHost: a.example:\r\n\r\n", 200),
    (b"GET /x HTTP/1.1\r\nHost:\r\n\r\n", 200),
    (b"GET /x HTTP/1.0\r\n\r\n", 200),
    # versions, targets, framing
    (b"GET /x HTTP/1.2\r\nHost: t\r\n\r\n", 200),
    (b"GET /x HTTP/1.9\r\nHost: t\r\n\r\n", 200),
    (b"GET /x HTTP/2.0\r\nHost: t\r\n\r\n", 505),
    (b"GET /x HTTP/3.0\r\nHost: t\r\n\r\n", 505),
    (b"GET /x HTTP/0.9\r\nHost: t\r\n\r\n", 505),
    (b"GET http://h?x=/admin HTTP/1.1\r\nHost: h\r\n\r\n", 200),
    (b"GET * HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"GET ftp://h/x HTTP/1.1\r\nHost: t\r\n\r\n", 400),
    (b"CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n", 501),
    (b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
])
def test_invalid_heads_get_the_same_status_either_way(servers, head, status):
    out = both(servers, head)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:80]
    if head.startswith(b"GET http://h?x=/admin"):
        assert b'"path":"/","query":"x=/admin"' in out


_TARGET_CHARS = (b"abcXYZ019-._~!$&'()*+,;=:@/?%" + b"#\"<>\\^`{|}[] \t\x7f\x80\xff")
_NAMES = [b"Host", b"X-A", b"accept", b"Connection", b"CONNECTION", b"User-Agent", b"X@Y",
          b"X Y", b"", b"content-length", b"Expect", b"x_y", b"A" * 40, b"Proxy-Connection"]
_VALUES = [b"t", b"a b", b"close", b"keep-alive", b"Keep-Alive", b"upgrade", b" lead", b"trail ",
           b"\ttab", b"", b"\xe9", b"0", b"5", b"100-continue", b"a\tb", b"x" * 300]
_SEPS = [b": ", b":", b":  ", b" : ", b":\t"]


def _random_head(rng: random.Random) -> bytes:
    method = rng.choice([b"GET", b"GET", b"GET", b"HEAD", b"POST", b"get", b"DELETE"])
    target = b"/" + bytes(rng.choice(_TARGET_CHARS[:29]) if rng.random() < 0.93
                          else rng.choice(_TARGET_CHARS) for _ in range(rng.randrange(12)))
    version = rng.choice([b"HTTP/1.1"] * 8 + [b"HTTP/1.0", b"HTTP/1.2", b"HTTP/1.1 "])
    eol = b"\r\n" if rng.random() < 0.95 else b"\n"
    lines = [method + b" " + target + b" " + version]
    for _ in range(rng.randrange(6)):
        name = rng.choice(_NAMES[:6]) if rng.random() < 0.8 else rng.choice(_NAMES)
        value = rng.choice(_VALUES[:4]) if rng.random() < 0.7 else rng.choice(_VALUES)
        sep = _SEPS[0] if rng.random() < 0.85 else rng.choice(_SEPS)
        lines.append(name + sep + value)
    if rng.random() < 0.9 and not any(line[:5].lower() == b"host:" for line in lines):
        lines.insert(1, b"Host: t")   # most have one, as HTTP/1.1 requires
    return eol.join(lines) + eol + eol


def test_random_heads_get_the_same_answer_either_way(servers):
    rng = random.Random(20261125)
    answered = 0
    for _ in range(600):
        head = _random_head(rng)
        # a second, plain request behind it shows whether the connection stayed usable
        out = both(servers, head + b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        answered += out.startswith(b"HTTP/1.1 200 ")
    assert answered > 200   # most random heads are plain enough to be served
