"""The response writer without sockets: heads, header checks, chunk framing (parsed by h11)."""

from __future__ import annotations

import h11
import pytest

from catzilla import _core


def parse_response(data: bytes, method: str = "GET"):
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "t")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    head = conn.next_event()
    body = b""
    while True:
        ev = conn.next_event()
        if isinstance(ev, h11.Data):
            body += bytes(ev.data)
        elif isinstance(ev, h11.EndOfMessage):
            return head, body
        else:
            raise AssertionError(ev)


def test_head_with_length_and_user_headers():
    head = _core.serialise_head(201, [(b"X-A", b"1"), (b"Content-Type", b"text/plain")], 5)
    resp, body = parse_response(head + b"hello")
    assert resp.status_code == 201 and resp.reason == b"Created" and body == b"hello"
    names = [k for k, _ in resp.headers]
    assert names == [b"x-a", b"content-type", b"server", b"date", b"content-length"]


def test_user_length_server_date_are_not_doubled():
    head = _core.serialise_head(200, [(b"content-length", b"3"), (b"Server", b"mine"),
                                      (b"DATE", b"x")], 99)
    assert head.count(b"ength:") == 1 and head.count(b"erver:") == 1
    assert b"Server: mine" in head and b"catzilla" not in head


def test_connection_header_is_decided_by_the_writer():
    closing = _core.serialise_head(200, [(b"Connection", b"keep-alive")], 0, keep_alive=False)
    assert b"Connection: close\r\n" in closing and b"keep-alive" not in closing
    http10 = _core.serialise_head(200, [], 0, http10=True)
    assert b"Connection: keep-alive\r\n" in http10
    plain = _core.serialise_head(200, [(b"Connection", b"Close")], 0)
    assert b"Connection: close\r\n" in plain


def test_chunked_head_and_user_transfer_encoding():
    head = _core.serialise_head(200, [], chunked=True)
    assert b"Transfer-Encoding: chunked\r\n" in head and b"Content-Length" not in head
    user = _core.serialise_head(200, [(b"Transfer-Encoding", b"chunked")], chunked=True)
    assert user.lower().count(b"transfer-encoding") == 1
    http10 = _core.serialise_head(200, [(b"Transfer-Encoding", b"chunked")], chunked=False,
                                  http10=True)
    assert b"transfer-encoding" not in http10.lower()


@pytest.mark.parametrize("name, value", [
    (b"X-Bad", b"a\r\nInjected: 1"), (b"X-Bad", b"a\nb"), (b"X-Bad", b"a\x00b"),
    (b"Bad Name", b"v"), (b"Bad:Name", b"v"), (b"", b"v"),
])
def test_invalid_headers_are_refused(name, value):
    with pytest.raises(ValueError):
        _core.serialise_head(200, [(name, value)], 0)


def test_status_range_is_checked():
    with pytest.raises(ValueError):
        _core.serialise_head(600, [], 0)


def test_chunk_framing_parses_and_skips_empty_chunks():
    chunks = [b"a", b"", b"x" * 4095, b"y" * 70000, b"\r\n0\r\n\r\n"]
    framed = _core.frame_chunks(chunks)
    head = _core.serialise_head(200, [], chunked=True)
    _, body = parse_response(head + framed)
    assert body == b"".join(chunks)
    assert framed.startswith(b"1\r\na\r\nfff\r\n")


# -- Content-Length fields and header values --------------------------------------------------

def test_serialise_head_writes_one_content_length_of_equal_fields():
    head = _core.serialise_head(200, [(b"Content-Length", b"7"), (b"content-length", b"7")])
    assert head.lower().count(b"content-length") == 1 and b"Content-Length: 7\r\n" in head
    for headers in ([(b"Content-Length", b"7"), (b"Content-Length", b"8")],
                    [(b"Content-Length", b"-1")], [(b"Content-Length", b"7 ")],
                    [(b"Content-Length", b"1" * 30)]):
        with pytest.raises(ValueError):
            _core.serialise_head(200, headers)


def test_header_values_refuse_every_control_but_htab():
    bad = [c for c in range(32) if c != 9] + [127]
    for c in range(256):
        for value in (bytes([c]), b"abcdefghij" + bytes([c]) + b"k", b"x" * 17 + bytes([c])):
            if c in bad:
                with pytest.raises(ValueError, match="response header b'X'"):
                    _core.serialise_head(200, [(b"X", value)], 0)
            else:
                assert b"\r\nX: " + value + b"\r\n" in _core.serialise_head(200, [(b"X", value)], 0)
    with pytest.raises(ValueError, match="control character 0x1b"):
        _core.serialise_head(200, [(b"X", b"\ta\x1b")], 0)
    with pytest.raises(ValueError, match="CR, LF or NUL"):
        _core.serialise_head(200, [(b"X", b"a\tb" * 10 + b"\n")], 0)
