"""Micro-benchmarks of the response writer: head serialisation and chunk framing.

    pytest bench/micro --benchmark-only
"""

from __future__ import annotations

import pytest

from catzilla import _core

pytest.importorskip("pytest_benchmark")

PLAIN_HEADERS = [(b"Content-Type", b"text/plain; charset=utf-8")]
SSE_HEADERS = [(b"Content-Type", b"text/event-stream; charset=utf-8"),
               (b"Cache-Control", b"no-cache"), (b"X-Accel-Buffering", b"no")]


def test_head_plaintext(benchmark):
    out = benchmark(_core.serialise_head, 200, PLAIN_HEADERS, 13)
    assert out.endswith(b"Content-Length: 13\r\n\r\n")


def test_head_stream_three_headers(benchmark):
    out = benchmark(_core.serialise_head, 200, SSE_HEADERS, -1, True, False, True)
    assert b"Transfer-Encoding: chunked" in out


def test_frame_100_small_chunks(benchmark):
    chunks = [b'{"id": %d, "data": "Record"}\n' % i for i in range(100)]
    out = benchmark(_core.frame_chunks, chunks)
    assert out.endswith(b"0\r\n\r\n")


def test_frame_one_64k_chunk(benchmark):
    chunks = [b"x" * 65536]
    out = benchmark(_core.frame_chunks, chunks)
    assert out.startswith(b"10000\r\n")
