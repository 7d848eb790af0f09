"""Request validation over real sockets: trailers, Transfer-Encoding, Host, versions, targets,
Upgrade and CONNECT, rejected HEAD requests, Proxy-Connection, methods (400 or 501), the
head-size limit. Where the parser path matters, one app runs on two servers: with the fast
path for plain heads and without it (llhttp only), and both must answer the same; where
TCP's segmentation matters, requests go in one read and in pieces."""

from __future__ import annotations

import json
import re
import socket
import time

import pytest
from _served import framing_app, head_lines, parse, read_all
from conftest import RawClient, exchange, fast_and_llhttp

from catzilla import Catzilla, JSONResponse, Response
from catzilla.testing import TestClient


def make_app() -> Catzilla:
    app = Catzilla()

    @app.route("/{rest:path}", methods=["GET", "HEAD", "POST", "OPTIONS"])
    def echo(request):
        return JSONResponse({
            "path": request.raw_path.decode("latin-1"),
            "query": request.query_string.decode("latin-1"),
            "version": request.http_version,
            "user": request.headers.get("x-user"),
            "hosts": request.headers.getlist("host"),
            "url": request.url,
            "trailers": list(getattr(request, "trailers", {}).items()),
            "body": request.body.decode("latin-1"),
        })

    return app


@pytest.fixture(scope="module")
def port():
    with TestClient(make_app()) as client:
        yield client.port


@pytest.fixture(autouse=True)
def no_leaks():
    yield   # module-scoped server; TestClient checks its own shutdown


def status_of(out: bytes) -> int:
    assert out.startswith(b"HTTP/1.1 "), out[:80]
    return int(out[9:12])


def body_of(out: bytes) -> dict:
    return json.loads(out.split(b"\r\n\r\n", 1)[1])


# -- trailers ---------------------------------------------------------------------------------

def test_trailer_fields_are_not_merged_into_the_headers(port):
    out = exchange(port, b"POST /who HTTP/1.1\r\nHost: good.example\r\nX-User: alice\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n"
                         b"3\r\nabc\r\n0\r\nX-User: admin\r\nHost: evil.example\r\n\r\n")
    assert status_of(out) == 200
    got = body_of(out)
    assert got["user"] == "alice"
    assert got["hosts"] == ["good.example"]
    assert got["url"] == "http://good.example/who"
    assert got["body"] == "abc"
    assert got["trailers"] == [["x-user", "admin"], ["host", "evil.example"]]


def test_a_trailer_expect_field_does_not_turn_the_request_into_417(port):
    out = exchange(port, b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                         b"1\r\na\r\n0\r\nExpect: foo\r\n\r\n")
    assert status_of(out) == 200


def _send_until_answered(port: int, first: bytes, more: bytes, limit: int) -> bytes:
    """Send first, then more again and again (up to limit bytes) until the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(first)
        sock.setblocking(False)
        sent = 0
        out = b""
        while sent < limit:
            try:
                sent += sock.send(more)
            except BlockingIOError:
                pass
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                out = sock.recv(65536)
                break
            except BlockingIOError:
                pass
        sock.settimeout(5)
        try:
            while chunk := sock.recv(65536):
                out += chunk
        except ConnectionResetError:
            pass
    return out


_CHUNKED_HEAD = b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_an_endless_trailer_field_gets_431_as_it_arrives(port):
    out = _send_until_answered(port, _CHUNKED_HEAD + b"3\r\nabc\r\n0\r\nX-Flood: ",
                               b"a" * 16384, 8 << 20)
    assert status_of(out) == 431
    assert b"\r\nConnection: close\r\n" in out


def test_a_complete_trailer_over_the_head_limit_gets_431(port):
    out = exchange(port, _CHUNKED_HEAD + b"3\r\nabc\r\n0\r\nX-Big: " + b"v" * 40000 + b"\r\n\r\n")
    assert status_of(out) == 431


def test_too_many_trailer_fields_get_431(port):
    fields = b"".join(b"X-%d: 1\r\n" % i for i in range(150))
    out = exchange(port, _CHUNKED_HEAD + b"3\r\nabc\r\n0\r\n" + fields + b"\r\n")
    assert status_of(out) == 431


def test_many_tiny_chunks_with_a_trailer_in_one_write_are_fine(port):
    # lots of chunk framing in a read is not mistaken for an oversized trailer
    chunks = b"1\r\nz\r\n" * 20000
    out = exchange(port, _CHUNKED_HEAD + chunks + b"0\r\nX-T: 1\r\n\r\n")
    assert status_of(out) == 200
    got = body_of(out)
    assert got["body"] == "z" * 20000 and got["trailers"] == [["x-t", "1"]]


# -- Transfer-Encoding ------------------------------------------------------------------------

@pytest.mark.parametrize("head", [
    b"POST /t HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"POST /t HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
])
def test_transfer_encoding_in_http10_gets_400_and_close(port, head):
    out = exchange(port, head + b"3\r\nabc\r\n0\r\n\r\nGET /next HTTP/1.0\r\n\r\n")
    assert status_of(out) == 400
    assert b"\r\nConnection: close\r\n" in out
    assert out.count(b"HTTP/1.1 ") == 1   # nothing after it is answered


@pytest.mark.parametrize("te", [b"gzip, chunked", b"deflate,chunked",
                                b"gzip\r\nTransfer-Encoding: chunked"])
def test_a_coding_before_chunked_gets_501_and_close(port, te):
    out = exchange(port, b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: " + te
                         + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert status_of(out) == 501
    assert b"\r\nConnection: close\r\n" in out


@pytest.mark.parametrize("te", [b"gzip", b"chunked, gzip"])
def test_chunked_not_final_stays_400(port, te):
    out = exchange(port, b"POST /t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: " + te
                         + b"\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    assert status_of(out) == 400


# -- HTTP versions ----------------------------------------------------------------------------

@pytest.mark.parametrize("version", [b"HTTP/2.0", b"HTTP/3.0", b"HTTP/9.9", b"HTTP/0.9"])
def test_other_major_versions_get_505_and_close(port, version):
    out = exchange(port, b"GET / " + version + b"\r\nHost: t\r\n\r\n"
                         b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status_of(out) == 505
    assert b"\r\nConnection: close\r\n" in out and out.count(b"HTTP/1.1 ") == 1


@pytest.mark.parametrize("version", [b"HTTP/1.2", b"HTTP/1.9"])
def test_higher_minor_versions_are_served_as_http11(port, version):
    # keep-alive as in 1.1: both requests are answered on one connection
    out = exchange(port, b"GET /a " + version + b"\r\nHost: t\r\n\r\n"
                         b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
    assert status_of(out) == 200
    first, second = out.split(b"HTTP/1.1 200 ")[1:]
    assert b'"version":"1.1"' in first and b'"path":"/a"' in first
    assert b'"path":"/b"' in second


def test_the_http2_preface_still_gets_400(port):
    out = exchange(port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert status_of(out) == 400


# -- request targets --------------------------------------------------------------------------

@pytest.mark.parametrize("target, path, query", [
    (b"http://h?x=/admin", "/", "x=/admin"),
    (b"http://h", "/", ""),
    (b"HTTP://h:80/a/b?c=/d", "/a/b", "c=/d"),
    (b"https://h/a?x=1", "/a", "x=1"),
])
def test_absolute_form_takes_the_path_after_the_authority(port, target, path, query):
    out = exchange(port, b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status_of(out) == 200
    got = body_of(out)
    assert (got["path"], got["query"]) == (path, query)


@pytest.mark.parametrize("request_line, status", [
    (b"GET * HTTP/1.1", 400),
    (b"POST * HTTP/1.1", 400),
    (b"GET ftp://h/x HTTP/1.1", 400),
    (b"GET http:///x HTTP/1.1", 400),
    (b"GET http://u@h/x HTTP/1.1", 400),
    (b"CONNECT example.com:443 HTTP/1.1", 501),
    (b"CONNECT /x HTTP/1.1", 501),   # an origin form is no way round it
])
def test_targets_we_do_not_serve_are_refused(port, request_line, status):
    out = exchange(port, request_line + b"\r\nHost: example.com:443\r\nContent-Length: 0\r\n\r\n")
    assert status_of(out) == status
    assert b"\r\nConnection: close\r\n" in out


def test_options_asterisk_is_still_routed(port):
    out = exchange(port, b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    assert status_of(out) != 400


# -- Host -------------------------------------------------------------------------------------

_HOST_CASES = [
    # (the head's header lines, status); the same with a non-ASCII header goes through llhttp
    (b"", 400),
    (b"Host: a.example\r\nHost: b.example\r\n", 400),
    (b"Host: a.example\r\nHost: a.example\r\n", 400),
    (b"Host: a b/c@d\r\n", 400),
    (b"Host: a.example/x\r\n", 400),
    (b"Host: u@a.example\r\n", 400),
    (b"Host: a.example:80x\r\n", 400),
    (b"Host: [::1\r\n", 400),
    (b"Host: %zz\r\n", 400),
    (b"Host: a.example\r\n", 200),
    (b"Host: a.example:8080\r\n", 200),
    (b"Host: 127.0.0.1:1\r\n", 200),
    (b"Host: [::1]:8080\r\n", 200),
    (b"Host: [fe80::1%25eth0]\r\n", 200),
    (b"Host: caf%C3%A9.example\r\n", 200),
    (b"Host: a.example:\r\n", 200),
    (b"Host:\r\n", 200),   # empty: allowed when the target has no authority
]


@pytest.mark.parametrize("lines, status", _HOST_CASES)
@pytest.mark.parametrize("extra", [b"", b"X-Latin: caf\xe9\r\n"], ids=["fast", "llhttp"])
def test_http11_host_must_be_one_valid_field(port, lines, status, extra):
    out = exchange(port, b"GET / HTTP/1.1\r\n" + lines + extra + b"\r\n")
    assert status_of(out) == status, out[:200]
    if status == 400:
        assert b"\r\nConnection: close\r\n" in out


def test_http10_without_host_is_served(port):
    out = exchange(port, b"GET / HTTP/1.0\r\n\r\n")
    assert status_of(out) == 200


@pytest.mark.parametrize("lines", [b"Host: a\r\nHost: b\r\n", b"Host: a b\r\n"])
def test_http10_with_a_bad_host_gets_400(port, lines):
    out = exchange(port, b"GET / HTTP/1.0\r\n" + lines + b"\r\n")
    assert status_of(out) == 400


def test_request_url_of_an_absolute_form_target_uses_the_targets_host():
    app = Catzilla()

    @app.get("/p")
    def p(request):
        return Response(request.url)

    with TestClient(app) as client, RawClient(client.port) as c:
        c.send(b"GET http://example.org:8080/p?q=1 HTTP/1.1\r\nHost: other\r\n\r\n")
        assert c.response()[1] == b"http://example.org:8080/p?q=1"   # RFC 9112 3.2.2
        c.send(b"GET /p HTTP/1.1\r\nHost: other\r\n\r\n")
        assert c.response()[1] == b"http://other/p"


# -- one app on two servers: the fast path and llhttp only ------------------------------------

@pytest.fixture(scope="module")
def servers():
    with fast_and_llhttp(framing_app) as clients:
        yield clients


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


# -- Upgrade and CONNECT ----------------------------------------------------------------------

NEXT = b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n"


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


# -- rejected HEAD requests get no body -------------------------------------------------------

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
    with TestClient(framing_app()) as client, RawClient(client.port) as c:
        client.server.request_timeout = 0.5
        c.send(b"HEAD /x HTTP/1.1\r\nHost: t\r\n")   # the head never ends
        raw = c.read_until_closed()
    assert raw.startswith(b"HTTP/1.1 408 ") and raw.endswith(b"\r\n\r\n"), raw


def test_a_rejected_head_request_has_no_body_however_it_is_read(servers):
    head = b"HEAD h:80 HTTP/1.1\r\nHost: t\r\n\r\n"   # the target fails in llhttp
    for srv in servers:
        for pieces in ([head], [head[:6], head[6:]]):
            raw = read_all_in_pieces(srv.port, pieces)
            assert raw.startswith(b"HTTP/1.1 400 ") and raw.endswith(b"\r\n\r\n"), raw
            assert b"Content-Length: " in raw   # (the length a GET would have had, no body)


# -- Proxy-Connection -------------------------------------------------------------------------

def test_proxy_connection_close_gets_the_same_answer_on_both_paths(servers):
    fast, slow = servers
    data = (b"GET /a HTTP/1.1\r\nHost: t\r\nProxy-Connection: close\r\n\r\n"
            b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n")
    raws = [read_all(srv.port, data) for srv in (fast, slow)]
    for raw in raws:
        (resp,), rest = parse(raw, ["GET"])   # llhttp reads it as Connection: close
        assert b'"path":"/a"' in resp[1] and rest == b""
    assert head_lines(raws[0], b"connection") == head_lines(raws[1], b"connection")


# -- methods: 400 or 501 ----------------------------------------------------------------------

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


# -- the head-size limit, in one read or several ----------------------------------------------

LIMIT = 2048


def small_head_app() -> Catzilla:
    app = framing_app()
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
    # test_an_endless_trailer_field_gets_431_as_it_arrives)
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


# -- the request line: its parts separated by exactly one SP ---------------------------------
# RFC 9112 3 lets a recipient split a request line on any whitespace; llhttp takes runs of SP.
# A proxy that splits a line otherwise than the server behind it can smuggle a request past its
# checks, so anything but one SP between the parts is refused, on the fast path and llhttp's
# alike, however the line arrives.

_NEXT = b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n"
_H = b"\r\nHost: t\r\n\r\n"

_BAD_LINES = {
    "two-sp-after-method": b"GET  /x HTTP/1.1",
    "two-sp-before-version": b"GET /x  HTTP/1.1",
    "three-sp": b"GET   /x HTTP/1.1",
    "tab-after-method": b"GET\t/x HTTP/1.1",
    "tab-before-version": b"GET /x\tHTTP/1.1",
    "sp-tab": b"GET \t/x HTTP/1.1",
    "vt": b"GET\x0b/x HTTP/1.1",
    "ff": b"GET /x\x0cHTTP/1.1",
    "bare-cr-after-method": b"GET\r/x HTTP/1.1",
    "bare-cr-before-version": b"GET /x\rHTTP/1.1",
    "bare-cr-before-crlf": b"GET /x HTTP/1.1\r",
    "sp-before-method": b" GET /x HTTP/1.1",
    "tab-before-method": b"\tGET /x HTTP/1.1",
    "sp-after-an-empty-line": b"\r\n GET /x HTTP/1.1",
    "bare-cr-before-method": b"\rGET /x HTTP/1.1",
    "bare-cr-and-an-empty-line": b"\r\r\nGET /x HTTP/1.1",
    "sp-before-crlf": b"GET /x HTTP/1.1 ",
    "tab-before-crlf": b"GET /x HTTP/1.1\t",
    "post-two-sp": b"POST  /x HTTP/1.1",
    "http10-sp-before-crlf": b"GET /x HTTP/1.0 ",
    "head-two-sp": b"HEAD /x  HTTP/1.1",
}


def make_split_app() -> Catzilla:
    app = Catzilla()

    @app.route("/{rest:path}", methods=["GET", "HEAD", "POST"])
    def echo(request):
        return JSONResponse({"path": request.raw_path.decode("latin-1"),
                             "body": request.body.decode("latin-1")})

    return app


@pytest.fixture(scope="module")
def ports():
    with fast_and_llhttp(make_split_app) as (fast, slow):
        yield {"fast": fast.port, "llhttp": slow.port}


def send_in_pieces(port: int, pieces: list[bytes]) -> tuple[bytes, bool]:
    """Send the pieces apart (TCP_NODELAY and a pause: the server reads them apart), then read
    what the server sends; returns it and whether the server closed the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(0.001)
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break   # closed after its 400: what it sent is still read
        sock.settimeout(1.0)
        out = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except socket.timeout:
                return out, False
            except ConnectionResetError:
                return out, True
            if not chunk:
                return out, True
            out += chunk


def sent(data: bytes, how: str) -> list[bytes]:
    return [data] if how == "one send" else [data[i:i + 1] for i in range(len(data))]


def statuses(out: bytes) -> list[int]:
    return [int(s) for s in re.findall(rb"HTTP/1\.1 (\d{3}) ", out)]


def line_fields(head: bytes) -> bytes:
    """The fields after a request line; a POST gets an empty body."""
    if head.lstrip(b"\r\n \t").startswith(b"POST"):
        return b"\r\nHost: t\r\nContent-Length: 0\r\n\r\n"
    return _H


@pytest.mark.parametrize("how", ["one send", "byte by byte"])
@pytest.mark.parametrize("path", ["fast", "llhttp"])
@pytest.mark.parametrize("line", list(_BAD_LINES.values()), ids=list(_BAD_LINES))
def test_a_request_line_not_split_by_single_spaces_gets_400_and_close(ports, path, how, line):
    # a request pipelined after it is not answered: the connection closes after the 400
    out, closed = send_in_pieces(ports[path], sent(line + line_fields(line) + _NEXT, how))
    assert statuses(out) == [400], out
    assert b"\r\nConnection: close\r\n" in out and closed
    if line.startswith(b"HEAD"):
        assert out.endswith(b"\r\n\r\n")   # no body for a HEAD
    else:
        assert out.endswith(b'{"detail":"Invalid request line"}')


# requests before a bad line, in one read with it or not: each is answered first
_BEFORE = {
    "fast-get": b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n",
    "llhttp-get": b"GET /a HTTP/1.1\r\nHost: t\r\nX-Latin: caf\xe9\r\n\r\n",
    "llhttp-head": b"HEAD /a HTTP/1.1\r\nHost: t\r\nX-Latin: caf\xe9\r\n\r\n",
    "post": b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nab  c",
    "chunked": (b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"3;ext=\"a b\"\r\n  \r\r\n0\r\nX-T: a  b\r\n\r\n"),
    "two": (b"POST /a HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\nab\r\n0\r\n\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\n\r\n"),
}


@pytest.mark.parametrize("how", ["one send", "byte by byte"])
@pytest.mark.parametrize("path", ["fast", "llhttp"])
@pytest.mark.parametrize("line", [b"GET  /x HTTP/1.1", b"GET /x HTTP/1.1 ", b"\rGET /x HTTP/1.1",
                                  b"\r\n GET /x HTTP/1.1", b"POST /x\tHTTP/1.1"],
                         ids=["two-sp", "sp-before-crlf", "bare-cr", "sp-after-empty-line",
                              "tab"])
@pytest.mark.parametrize("before", list(_BEFORE.values()), ids=list(_BEFORE))
def test_a_bad_request_line_behind_other_requests_gets_400_after_their_answers(
        ports, path, how, line, before):
    answered = before.count(b"HTTP/1.1\r\n")
    out, closed = send_in_pieces(ports[path], sent(before + line + _H + _NEXT, how))
    assert statuses(out) == [200] * answered + [400], out
    assert b'"path":"/next"' not in out and closed
    assert out.endswith(b'{"detail":"Invalid request line"}')   # (not a HEAD's: a body)
    if before.startswith(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length"):
        assert b'"body":"ab  c"' in out


_GOOD_LINES = [
    b"GET /x HTTP/1.1" + _H,
    b"HEAD /x HTTP/1.1" + _H,
    b"GET /x?a=b%20c HTTP/1.1" + _H,
    b"GET http://t/x HTTP/1.1" + _H,
    b"GET /x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET /x HTTP/1.1\r\nHost: t\r\nX-A: a  b\r\nX-B:  c \r\n\r\n",   # (spaces in fields)
    b"\r\nGET /x HTTP/1.1" + _H,                 # empty lines before a request are skipped
    b"\r\n\r\n\nGET /x HTTP/1.1" + _H,
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\n  \r\n",
    b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nab\r\n",   # + an empty line
    b"POST /x HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"1;a=\"b  c\"\r\n \r\n10\r\n0123456789\r\n\r\n  \r\n0\r\nT:  t\r\n\r\n",
]


@pytest.mark.parametrize("how", ["one send", "byte by byte"])
@pytest.mark.parametrize("path", ["fast", "llhttp"])
def test_well_separated_request_lines_are_still_served(ports, path, how):
    # all in one stream, then a request behind them on the same connection
    data = b"".join(_GOOD_LINES) + _NEXT
    out, closed = send_in_pieces(ports[path], sent(data, how))
    assert statuses(out) == [200] * (len(_GOOD_LINES) + 1), out
    assert not closed and out.endswith(b'{"path":"/next","body":""}')
    assert b'"body":" 0123456789\\r\\n\\r\\n  "' in out   # (the chunked one)


@pytest.mark.parametrize("how", ["one send", "byte by byte"])
@pytest.mark.parametrize("path", ["fast", "llhttp"])
@pytest.mark.parametrize("line, status", [
    (b"FOO /x HTTP/1.1", 501),
    (b"\r\nFOO /x HTTP/1.1", 501),
    (b"FOO /x HTTP/1.1 ", 400),
    (b"FOO /x HTTP/1.1\t", 400),
    (b"FOO /x HTTP/1.1\r", 400),
    (b"FOO  /x HTTP/1.1", 400),
    (b"FOO /x  HTTP/1.1", 400),
    (b" FOO /x HTTP/1.1", 400),
    (b"\rFOO /x HTTP/1.1", 400),
    (b"FOO /x HTTP/1.10", 400),
])
def test_an_unknown_method_gets_501_only_on_a_well_formed_line(ports, path, how, line, status):
    out, closed = send_in_pieces(ports[path], sent(line + _H + _NEXT, how))
    assert statuses(out) == [status] and closed, out


@pytest.mark.parametrize("path", ["fast", "llhttp"])
@pytest.mark.parametrize("size, status", [(8192, 400), (8193, 414)])
def test_a_target_past_max_url_size_gets_414_whatever_follows_it(ports, path, size, status):
    # the line is judged up to the limit the same however it is split: past it, llhttp's 414
    line = b"GET /" + b"a" * (size - 1) + b"  HTTP/1.1" + _H
    for pieces in ([line], [line[:4000], line[4000:]], [line[:size + 4], line[size + 4:]],
                   [line[:size + 5], line[size + 5:]]):
        out, closed = send_in_pieces(ports[path], pieces)
        assert statuses(out) == [status] and closed, ([len(p) for p in pieces], out[:80])
