"""Micro-benchmarks of the SSE encoder (catzilla._sse) against sse-starlette's (pytest-benchmark).

    python -m pytest bench/micro/test_sse_bench.py --benchmark-only

Each case encodes the same event three ways: ``format_sse(...)`` (the fast path),
``ServerSentEvent(...).encode()`` and sse-starlette's ``ServerSentEvent(...).encode()`` (its
``JSONServerSentEvent`` for dict data, which applies the same compact JSON settings). The
sse-starlette cases are skipped when it is not installed (``pip install sse-starlette``).
"""
from __future__ import annotations

import pytest

from catzilla._sse import ServerSentEvent, format_sse

pytest.importorskip("pytest_benchmark")

try:
    from sse_starlette.sse import ServerSentEvent as StarletteSSE
except ImportError:  # pragma: no cover - depends on the environment
    StarletteSSE = None
try:
    from sse_starlette.event import JSONServerSentEvent as StarletteJSONSSE
except ImportError:  # pragma: no cover - older sse-starlette, or not installed
    StarletteJSONSSE = None

CASES = {
    "short-str": {"data": "hello world", "event": "tick", "id": "42"},
    "multi-line-str": {
        "data": "line one\nline two\r\nline three\rline four\nline five",
        "event": "multi",
        "id": "43",
    },
    "dict-json": {
        "data": {"user": "alice", "id": 42, "tags": ["a", "b"], "score": 9.5, "ok": True},
        "event": "json",
        "id": "44",
    },
}


def _lines(raw: bytes) -> list[bytes]:
    """The event's lines whatever the line ending and field order (to compare the encoders)."""
    return sorted(raw.replace(b"\r\n", b"\n").split(b"\n"))


def _ours_object(**kwargs) -> bytes:
    return ServerSentEvent(**kwargs).encode()


def _starlette(**kwargs) -> bytes:
    return StarletteSSE(**kwargs).encode()


def _starlette_json(**kwargs) -> bytes:
    return StarletteJSONSSE(**kwargs).encode()


@pytest.mark.parametrize("case", list(CASES))
def test_catzilla_format_sse(benchmark, case):
    benchmark.group = case
    kwargs = CASES[case]
    assert format_sse(**kwargs).endswith(b"\n\n")
    benchmark(format_sse, **kwargs)


@pytest.mark.parametrize("case", list(CASES))
def test_catzilla_event_object(benchmark, case):
    benchmark.group = case
    kwargs = CASES[case]
    assert _ours_object(**kwargs) == format_sse(**kwargs)
    benchmark(_ours_object, **kwargs)


@pytest.mark.parametrize("case", list(CASES))
def test_sse_starlette(benchmark, case):
    benchmark.group = case
    kwargs = CASES[case]
    if StarletteSSE is None:
        pytest.skip("sse-starlette is not installed (pip install sse-starlette): no peer to run")
    encode = _starlette
    if not isinstance(kwargs["data"], str):
        if StarletteJSONSSE is None:
            pytest.skip("this sse-starlette has no JSONServerSentEvent (added in 2.x)")
        encode = _starlette_json
    # the same event on the wire (sse-starlette ends lines with CRLF and orders fields otherwise)
    assert _lines(encode(**kwargs)) == _lines(format_sse(**kwargs))
    benchmark(encode, **kwargs)
