"""Micro-benchmarks of catzilla._router.Router.match (pytest-benchmark).

    python -m pytest bench/micro/test_router_bench.py --benchmark-only
"""
from __future__ import annotations

import pytest

from catzilla._router import Router

pytest.importorskip("pytest_benchmark")


def _endpoint(request=None):
    return None


@pytest.fixture(scope="module")
def small_router() -> Router:
    router = Router()
    router.add("/", _endpoint, ["GET"])
    router.add("/health", _endpoint, ["GET"])
    router.add("/api/v1/status", _endpoint, ["GET"])
    router.add("/users/{uid:int}", _endpoint, ["GET", "DELETE"])
    router.add("/users/{uid:int}/posts/{slug}", _endpoint, ["GET"])
    router.add("/static/{p:path}", _endpoint, ["GET"])
    return router


@pytest.fixture(scope="module")
def big_router() -> Router:
    """1,000 routes: 500 static, 500 with parameters, in the order a large app might have."""
    router = Router()
    for i in range(500):
        router.add(f"/service{i}/status", _endpoint, ["GET"])
        router.add(f"/service{i}/items/{{item_id:int}}/{{field}}", _endpoint, ["GET", "PUT"])
    return router


def test_static_match(benchmark, small_router):
    assert small_router.match("GET", "/api/v1/status") == (200, _endpoint, {})
    benchmark(small_router.match, "GET", "/api/v1/status")


def test_two_param_match(benchmark, small_router):
    expected = (200, _endpoint, {"uid": 12345, "slug": "hello-world"})
    assert small_router.match("GET", "/users/12345/posts/hello-world") == expected
    benchmark(small_router.match, "GET", "/users/12345/posts/hello-world")


def test_two_param_match_percent_encoded(benchmark, small_router):
    expected = (200, _endpoint, {"uid": 12345, "slug": "h\u00e9llo w"})
    assert small_router.match("GET", "/users/12345/posts/h%C3%A9llo%20w") == expected
    benchmark(small_router.match, "GET", "/users/12345/posts/h%C3%A9llo%20w")


def test_1000_routes_static_near_end(benchmark, big_router):
    assert big_router.match("GET", "/service498/status") == (200, _endpoint, {})
    benchmark(big_router.match, "GET", "/service498/status")


def test_1000_routes_params_near_end(benchmark, big_router):
    expected = (200, _endpoint, {"item_id": 77, "field": "name"})
    assert big_router.match("PUT", "/service499/items/77/name") == expected
    benchmark(big_router.match, "PUT", "/service499/items/77/name")


def test_not_found(benchmark, small_router):
    assert small_router.match("GET", "/users/12345/comments") == (404, None, None)
    benchmark(small_router.match, "GET", "/users/12345/comments")


def test_not_found_1000_routes(benchmark, big_router):
    assert big_router.match("GET", "/service1000/items/1/x") == (404, None, None)
    benchmark(big_router.match, "GET", "/service1000/items/1/x")


def test_method_not_allowed(benchmark, small_router):
    assert small_router.match("POST", "/users/7") == (405, "DELETE, GET, HEAD", None)
    benchmark(small_router.match, "POST", "/users/7")
