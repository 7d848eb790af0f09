"""Value types that need no server: query parsing and JSON rendering agree with the stdlib."""

import json
import math
import random
from urllib.parse import parse_qsl

import pytest

from catzilla import JSONResponse
from catzilla.datastructures import QueryParams, parse_query


def test_parse_query_matches_parse_qsl_on_random_strings():
    rng = random.Random(7)
    alphabet = "ab=&%+2041éCF;x "
    for _ in range(20_000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16)))
        assert parse_query(raw) == parse_qsl(raw, keep_blank_values=True, errors="replace"), raw


def test_query_params_multi_values_and_decoding():
    q = QueryParams(b"a=1&a=2&b=x+y&c=%C3%A9&d&=e&f=%zz")
    assert q["a"] == "2" and q.getlist("a") == ["1", "2"]
    assert q["b"] == "x y" and q["c"] == "é" and q["d"] == "" and q[""] == "e"
    assert q["f"] == "%zz"


@pytest.mark.parametrize("value", [
    {"message": "Hello, World!"}, [1, "é", None, True, 1.5], "x", 0, {1: 2, "k": [{}]}, (1, 2),
])
def test_json_response_matches_json_dumps(value):
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert JSONResponse(value).body == expected.encode("utf-8")


@pytest.mark.parametrize("value, exc", [
    (math.nan, ValueError), ({"a": object()}, TypeError), ({(1, 2): 3}, TypeError),
])
def test_json_response_refuses_what_json_refuses(value, exc):
    with pytest.raises(exc):
        JSONResponse(value)


def test_json_response_refuses_a_cycle():
    cycle = []
    cycle.append(cycle)
    with pytest.raises((ValueError, RecursionError)):
        JSONResponse(cycle)


def test_json_response_unaffected():
    assert JSONResponse({"a": "é"}).body == '{"a":"é"}'.encode()
