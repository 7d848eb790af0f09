"""Tests for catzilla._router (the trie router), without sockets; at the end, its int and float
converters over real sockets."""
from __future__ import annotations

import logging
import math
import random
from urllib.parse import unquote

import pytest
from _served import errors

from catzilla import Catzilla
from catzilla._router import Route, Router
from catzilla.testing import TestClient

NOT_FOUND = (404, None, None)


def endpoint(label: str):
    """A distinct, recognisable endpoint object."""

    def handler(request=None):
        return label

    handler.__name__ = label
    return handler


def router_with(*specs) -> Router:
    """Build a router from (path, endpoint, methods) triples."""
    router = Router()
    for path, ep, methods in specs:
        router.add(path, ep, methods)
    return router


# -- static routes ---------------------------------------------------------------------------------


def test_static_routes_match_exactly():
    root, users, deep = endpoint("root"), endpoint("users"), endpoint("deep")
    router = router_with(
        ("/", root, ["GET"]),
        ("/users", users, ["GET"]),
        ("/a/b/c", deep, ["GET"]),
    )
    assert router.match("GET", "/") == (200, root, {})
    assert router.match("GET", "/users") == (200, users, {})
    assert router.match("GET", "/a/b/c") == (200, deep, {})
    assert router.match("GET", "/a/b") == NOT_FOUND
    assert router.match("GET", "/a/b/c/d") == NOT_FOUND
    assert router.match("GET", "/user") == NOT_FOUND
    assert router.match("GET", "/Users") == NOT_FOUND


def test_match_returns_exact_tuple_types():
    ep = endpoint("x")
    router = router_with(("/x/{a}", ep, ["GET"]))
    ok = router.match("GET", "/x/1")
    assert type(ok) is tuple and len(ok) == 3
    assert ok == (200, ep, {"a": "1"}) and type(ok[2]) is dict
    assert router.match("GET", "/y") == NOT_FOUND
    assert router.match("POST", "/x/1") == (405, "GET, HEAD", None)


def test_params_dict_is_fresh_per_match():
    router = router_with(("/s", endpoint("s"), ["GET"]), ("/p/{a}", endpoint("p"), ["GET"]))
    first = router.match("GET", "/s")[2]
    first["polluted"] = True
    assert router.match("GET", "/s")[2] == {}
    second = router.match("GET", "/p/1")[2]
    second["a"] = "changed"
    assert router.match("GET", "/p/1")[2] == {"a": "1"}


def test_trailing_slash_is_a_different_path():
    a, a_slash = endpoint("a"), endpoint("a/")
    router = router_with(("/a", a, ["GET"]))
    assert router.match("GET", "/a/") == NOT_FOUND
    router.add("/a/", a_slash, ["GET"])
    assert router.match("GET", "/a") == (200, a, {})
    assert router.match("GET", "/a/") == (200, a_slash, {})
    only_slash = router_with(("/b/", endpoint("b/"), ["GET"]))
    assert only_slash.match("GET", "/b") == NOT_FOUND


def test_request_path_not_starting_with_slash_is_not_found():
    router = router_with(("/", endpoint("root"), ["GET"]), ("/{p:path}", endpoint("all"), ["GET"]))
    for path in ["", "*", "a", "http://example.com/", " /"]:
        assert router.match("GET", path) == NOT_FOUND, path


def test_static_only_router_405_and_404_without_trie():
    ep = endpoint("ep")
    router = router_with(("/only", ep, ["POST"]))
    assert router.match("POST", "/only") == (200, ep, {})
    assert router.match("GET", "/only") == (405, "POST", None)
    assert router.match("GET", "/other") == NOT_FOUND


# -- parameters and converters ---------------------------------------------------------------------


def test_str_parameter():
    ep = endpoint("user")
    router = router_with(("/users/{name}", ep, ["GET"]))
    status, got, params = router.match("GET", "/users/alice")
    assert (status, got, params) == (200, ep, {"name": "alice"})
    assert type(params["name"]) is str
    # {name} and {name:str} are the same converter
    router2 = router_with(("/users/{name:str}", ep, ["GET"]))
    assert router2.match("GET", "/users/42") == (200, ep, {"name": "42"})


def test_two_parameters_in_order():
    ep = endpoint("post")
    router = router_with(("/users/{uid:int}/posts/{slug}", ep, ["GET"]))
    status, got, params = router.match("GET", "/users/7/posts/hello-world")
    assert (status, got) == (200, ep)
    assert params == {"uid": 7, "slug": "hello-world"}
    assert list(params) == ["uid", "slug"]
    assert router.match("GET", "/users/7/posts") == NOT_FOUND
    assert router.match("GET", "/users/x/posts/a") == NOT_FOUND


@pytest.mark.parametrize(
    "segment, expected",
    [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("007", 7),
        ("-0", 0),
        ("999999999999999999", 999999999999999999),              # 18 digits, C fast path
        ("-999999999999999999", -999999999999999999),
        ("9223372036854775807", 9223372036854775807),            # 19 digits, Python int
        ("-9223372036854775809", -9223372036854775809),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("%31%32", 12),                                          # decoded before converting
    ],
)
def test_int_converter_accepts(segment, expected):
    ep = endpoint("n")
    router = router_with(("/n/{v:int}", ep, ["GET"]))
    status, got, params = router.match("GET", "/n/" + segment)
    assert (status, got) == (200, ep)
    assert params["v"] == expected and type(params["v"]) is int


@pytest.mark.parametrize(
    "segment",
    ["-", "+1", "1.0", "1e3", "0x10", "1_000", "%201", "1%20", "%D9%A1",  # U+0661 ARABIC-INDIC ONE
     "--1", "1-", "abc", "%EF%BC%91"],                                       # U+FF11 FULLWIDTH ONE
)
def test_int_converter_rejects(segment):
    router = router_with(("/n/{v:int}", endpoint("n"), ["GET"]))
    assert router.match("GET", "/n/" + segment) == NOT_FOUND


@pytest.mark.parametrize(
    "segment, expected",
    [
        ("1.5", 1.5),
        ("-2", -2.0),
        ("+3.25", 3.25),
        (".5", 0.5),
        ("5.", 5.0),
        ("1e3", 1000.0),
        ("1E-2", 0.01),
        ("-0.0", -0.0),
        ("1e308", 1e308),
    ],
)
def test_float_converter_accepts(segment, expected):
    ep = endpoint("f")
    router = router_with(("/f/{v:float}", ep, ["GET"]))
    status, got, params = router.match("GET", "/f/" + segment)
    assert (status, got) == (200, ep)
    assert params["v"] == expected and type(params["v"]) is float


@pytest.mark.parametrize(
    "segment",
    ["inf", "-inf", "Infinity", "nan", "NaN", "-nan", "1e999", "-1e999",   # non-finite
     "%201.5", "1.5%20", "1.5%0A", "%091", "1.5%C2%A0",                    # whitespace
     "abc", "1.2.3", "1__0", "_1", "0x1p3", "e5", "1e", "--1",
     "1_000.5", "\u0661\u0662", "\uff11"],                      # ASCII digits only, as {x:int}
)
def test_float_converter_rejects(segment):
    router = router_with(("/f/{v:float}", endpoint("f"), ["GET"]))
    assert router.match("GET", "/f/" + segment) == NOT_FOUND


def test_converter_failure_falls_through_to_next_branch():
    num, other = endpoint("num"), endpoint("other")
    router = router_with(("/v/{n:int}", num, ["GET"]), ("/v/{rest:path}", other, ["GET"]))
    assert router.match("GET", "/v/12") == (200, num, {"n": 12})
    assert router.match("GET", "/v/12x") == (200, other, {"rest": "12x"})


def test_path_converter():
    files = endpoint("files")
    router = router_with(("/files/{p:path}", files, ["GET"]))
    assert router.match("GET", "/files/a.txt") == (200, files, {"p": "a.txt"})
    assert router.match("GET", "/files/a/b/c.txt") == (200, files, {"p": "a/b/c.txt"})
    assert router.match("GET", "/files/") == (200, files, {"p": ""})          # may be empty
    assert router.match("GET", "/files/a/") == (200, files, {"p": "a/"})
    assert router.match("GET", "/files/a//b") == (200, files, {"p": "a//b"})
    assert router.match("GET", "/files") == NOT_FOUND                        # needs the '/'
    assert router.match("GET", "/filesx/a") == NOT_FOUND


def test_path_converter_decodes_each_segment():
    files = endpoint("files")
    router = router_with(("/files/{p:path}", files, ["GET"]))
    assert router.match("GET", "/files/a%20b/c%2Fd") == (200, files, {"p": "a b/c/d"})
    assert router.match("GET", "/files/%E6%97%A5/x") == (200, files, {"p": "\u65e5/x"})


def test_path_converter_after_other_parameters():
    ep = endpoint("ep")
    router = router_with(("/u/{uid:int}/{rest:path}", ep, ["GET"]))
    assert router.match("GET", "/u/3/a/b") == (200, ep, {"uid": 3, "rest": "a/b"})
    assert router.match("GET", "/u/x/a/b") == NOT_FOUND


def test_root_catch_all():
    ep = endpoint("all")
    router = router_with(("/{p:path}", ep, ["GET"]))
    assert router.match("GET", "/") == (200, ep, {"p": ""})
    assert router.match("GET", "/a/b") == (200, ep, {"p": "a/b"})
    assert router.match("GET", "//") == (200, ep, {"p": "/"})


# -- percent-decoding ------------------------------------------------------------------------------


def test_encoded_slash_does_not_split_a_segment():
    name, ab = endpoint("name"), endpoint("ab")
    router = router_with(("/files/{name}", name, ["GET"]), ("/files/a/b", ab, ["GET"]))
    assert router.match("GET", "/files/a%2Fb") == (200, name, {"name": "a/b"})
    assert router.match("GET", "/files/a%2fb") == (200, name, {"name": "a/b"})
    assert router.match("GET", "/files/a/b") == (200, ab, {})
    only_static = router_with(("/files/a/b", ab, ["GET"]))
    assert only_static.match("GET", "/files/a%2Fb") == NOT_FOUND


def test_static_segments_compare_against_decoded_text():
    users, cafe = endpoint("users"), endpoint("cafe")
    router = router_with(("/users", users, ["GET"]), ("/caf\u00e9", cafe, ["GET"]))
    assert router.match("GET", "/us%65rs") == (200, users, {})
    assert router.match("GET", "/caf%C3%A9") == (200, cafe, {})
    assert router.match("GET", "/caf%c3%a9") == (200, cafe, {})
    assert router.match("GET", "/caf%E9") == NOT_FOUND   # latin-1 escape is invalid UTF-8


def test_static_route_text_is_literal():
    spaced, pct = endpoint("spaced"), endpoint("pct")
    router = router_with(("/a b", spaced, ["GET"]), ("/x%20y", pct, ["GET"]))
    assert router.match("GET", "/a%20b") == (200, spaced, {})
    assert router.match("GET", "/x%2520y") == (200, pct, {})
    assert router.match("GET", "/x%20y") == NOT_FOUND


@pytest.mark.parametrize(
    "raw, decoded",
    [
        ("%C3%A9t%C3%A9", "\u00e9t\u00e9"),
        ("%E6%97%A5%E6%9C%AC", "\u65e5\u672c"),
        ("%F0%9F%98%80", "\U0001F600"),
        ("a%20b", "a b"),
        ("%25", "%"),
        ("%2541", "%41"),        # decoded once only
        ("100%", "100%"),        # invalid escapes stay as they are
        ("%zz", "%zz"),
        ("%4", "%4"),
        ("%", "%"),
        ("a%2", "a%2"),
        ("%%41", "%A"),
        ("%3f%23", "?#"),
    ],
)
def test_percent_decoding_of_parameter_values(raw, decoded):
    ep = endpoint("ep")
    router = router_with(("/x/{v}", ep, ["GET"]))
    assert router.match("GET", "/x/" + raw) == (200, ep, {"v": decoded})


@pytest.mark.parametrize(
    "raw, decoded",
    [
        ("%FF", "\ufffd"),
        ("%C3", "\ufffd"),                  # truncated sequence
        ("a%C3%28", "a\ufffd("),            # bad continuation byte
        ("%ED%A0%80", "\ufffd\ufffd\ufffd"),  # encoded surrogate
        ("%C0%AF", "\ufffd\ufffd"),         # overlong '/'
        ("ok%80ok", "ok\ufffdok"),
    ],
)
def test_invalid_utf8_becomes_replacement_character(raw, decoded):
    ep = endpoint("ep")
    router = router_with(("/x/{v}", ep, ["GET"]))
    assert router.match("GET", "/x/" + raw) == (200, ep, {"v": decoded})


def test_raw_non_ascii_is_read_as_latin1_bytes():
    # The server decodes the request line as latin-1, so raw UTF-8 bytes arrive as latin-1
    # characters; the router reads them back as bytes.
    cafe, ep = endpoint("cafe"), endpoint("ep")
    router = router_with(("/caf\u00e9", cafe, ["GET"]), ("/x/{v}", ep, ["GET"]))
    raw = "/caf\u00e9".encode("utf-8").decode("latin-1")
    assert router.match("GET", raw) == (200, cafe, {})
    assert router.match("GET", "/x/\u00ff") == (200, ep, {"v": "\ufffd"})
    # characters above U+00FF cannot be latin-1 bytes: they stand for themselves
    assert router.match("GET", "/x/\u65e5%20") == (200, ep, {"v": "\u65e5 "})


def test_long_encoded_segment():
    ep = endpoint("ep")
    router = router_with(("/x/{v}", ep, ["GET"]))
    value = "\u00e9\U0001F600/ " * 300
    raw = "".join(f"%{b:02X}" for b in value.encode("utf-8"))
    assert router.match("GET", "/x/" + raw) == (200, ep, {"v": value})
    assert router.match("GET", "/x/" + "\u65e5" * 1000) == (200, ep, {"v": "\u65e5" * 1000})


# -- empty segments --------------------------------------------------------------------------------


def test_empty_segments_never_match_parameters():
    ep = endpoint("ep")
    router = router_with(("/a/{x}/b", ep, ["GET"]), ("/n/{v:int}", ep, ["GET"]),
                         ("/f/{v:float}", ep, ["GET"]), ("/s/{v}", ep, ["GET"]))
    assert router.match("GET", "/a//b") == NOT_FOUND
    assert router.match("GET", "/a/x/b") == (200, ep, {"x": "x"})
    assert router.match("GET", "/n/") == NOT_FOUND
    assert router.match("GET", "/f/") == NOT_FOUND
    assert router.match("GET", "/s/") == NOT_FOUND


def test_empty_static_segments_are_literal():
    ep = endpoint("ep")
    router = router_with(("/a//b", ep, ["GET"]))
    assert router.match("GET", "/a//b") == (200, ep, {})
    assert router.match("GET", "/a/b") == NOT_FOUND


# -- precedence and backtracking -------------------------------------------------------------------


def test_static_beats_parameter_beats_catch_all():
    me, user, rest = endpoint("me"), endpoint("user"), endpoint("rest")
    router = Router()
    # registration order must not matter
    router.add("/users/{p:path}", rest, ["GET"])
    router.add("/users/{id}", user, ["GET"])
    router.add("/users/me", me, ["GET"])
    assert router.match("GET", "/users/me") == (200, me, {})
    assert router.match("GET", "/users/42") == (200, user, {"id": "42"})
    assert router.match("GET", "/users/42/x") == (200, rest, {"p": "42/x"})
    assert router.match("GET", "/users/") == (200, rest, {"p": ""})


def test_backtracks_from_static_to_parameter():
    abc, ad = endpoint("abc"), endpoint("ad")
    router = router_with(("/a/b/c", abc, ["GET"]), ("/a/{x}/d", ad, ["GET"]))
    assert router.match("GET", "/a/b/c") == (200, abc, {})
    assert router.match("GET", "/a/b/d") == (200, ad, {"x": "b"})
    assert router.match("GET", "/a/b/e") == NOT_FOUND


def test_backtracks_to_catch_all_without_stale_values():
    deep, everything = endpoint("deep"), endpoint("all")
    router = router_with(("/{a}/{b:int}/c", deep, ["GET"]), ("/{x:path}", everything, ["GET"]))
    assert router.match("GET", "/p/1/c") == (200, deep, {"a": "p", "b": 1})
    assert router.match("GET", "/p/1/z") == (200, everything, {"x": "p/1/z"})
    assert router.match("GET", "/p/q/c") == (200, everything, {"x": "p/q/c"})


def test_backtracking_keeps_parameter_values_aligned():
    one, two = endpoint("one"), endpoint("two")
    router = router_with(
        ("/x/{a}/{b}/end", one, ["GET"]),
        ("/x/s/{c}/{d}/other", two, ["GET"]),
    )
    assert router.match("GET", "/x/s/1/2/other") == (200, two, {"c": "1", "d": "2"})
    assert router.match("GET", "/x/s/1/end") == (200, one, {"a": "s", "b": "1"})


def test_method_aware_backtracking_and_allow_union():
    me, delete_user = endpoint("me"), endpoint("delete_user")
    router = router_with(("/users/me", me, ["GET"]), ("/users/{id}", delete_user, ["DELETE"]))
    assert router.match("GET", "/users/me") == (200, me, {})
    # the static route lacks DELETE: the parameter route still gets it
    assert router.match("DELETE", "/users/me") == (200, delete_user, {"id": "me"})
    # neither has PATCH: Allow covers every route whose path matched
    assert router.match("PATCH", "/users/me") == (405, "DELETE, GET, HEAD", None)
    assert router.match("PATCH", "/users/7") == (405, "DELETE", None)


def test_method_aware_backtracking_with_percent_encoded_path():
    me, other = endpoint("me"), endpoint("other")
    router = router_with(("/users/me", me, ["GET"]), ("/users/{id}", other, ["POST"]))
    assert router.match("POST", "/users/m%65") == (200, other, {"id": "me"})
    assert router.match("GET", "/users/m%65") == (200, me, {})
    assert router.match("PUT", "/users/m%65") == (405, "GET, HEAD, POST", None)


# -- methods, 404 / 405, HEAD ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "methods, allow",
    [
        (["GET"], "GET, HEAD"),
        (["POST"], "POST"),
        (["GET", "POST"], "GET, HEAD, POST"),
        (["PUT", "DELETE", "GET"], "DELETE, GET, HEAD, PUT"),
        (["HEAD"], "HEAD"),
        (["OPTIONS", "PATCH"], "OPTIONS, PATCH"),
        (["GET", "HEAD"], "GET, HEAD"),
    ],
)
def test_405_allow_header(methods, allow):
    router = router_with(("/r", endpoint("r"), methods), ("/p/{x}", endpoint("p"), methods))
    assert router.match("TRACE", "/r") == (405, allow, None)
    assert router.match("TRACE", "/p/1") == (405, allow, None)
    assert router.match("TRACE", "/nowhere") == NOT_FOUND


def test_404_when_no_path_matches_even_if_prefix_does():
    router = router_with(("/a/{x:int}", endpoint("a"), ["GET"]))
    assert router.match("GET", "/a") == NOT_FOUND
    assert router.match("GET", "/a/x") == NOT_FOUND
    assert router.match("POST", "/a/x") == NOT_FOUND
    assert router.match("POST", "/a/1") == (405, "GET, HEAD", None)


def test_allow_merges_registrations_on_one_path():
    router = Router()
    router.add("/r", endpoint("get"), ["GET"])
    assert router.match("PUT", "/r") == (405, "GET, HEAD", None)
    router.add("/r", endpoint("post"), ["POST"])
    assert router.match("PUT", "/r") == (405, "GET, HEAD, POST", None)


def test_different_endpoints_per_method_on_one_path():
    get, post = endpoint("get"), endpoint("post")
    router = Router()
    router.add("/items/{id:int}", get, ["GET"])
    router.add("/items/{id:int}", post, ["POST"])
    assert router.match("GET", "/items/1") == (200, get, {"id": 1})
    assert router.match("POST", "/items/1") == (200, post, {"id": 1})
    assert router.match("HEAD", "/items/1") == (200, get, {"id": 1})


def test_head_falls_back_to_get():
    get = endpoint("get")
    router = router_with(("/r", get, ["GET"]), ("/p/{x}", get, ["GET"]))
    assert router.match("HEAD", "/r") == (200, get, {})
    assert router.match("HEAD", "/p/1") == (200, get, {"x": "1"})


@pytest.mark.parametrize("head_first", [False, True])
def test_explicit_head_wins_over_get(head_first):
    get, head = endpoint("get"), endpoint("head")
    router = Router()
    regs = [("/r", head, ["HEAD"]), ("/r", get, ["GET"])]
    for path, ep, methods in regs if head_first else reversed(regs):
        router.add(path, ep, methods)
    assert router.match("HEAD", "/r") == (200, head, {})
    assert router.match("GET", "/r") == (200, get, {})
    assert router.match("POST", "/r") == (405, "GET, HEAD", None)


def test_head_without_get_is_405():
    router = router_with(("/r", endpoint("post"), ["POST"]))
    assert router.match("HEAD", "/r") == (405, "POST", None)


def test_methods_are_normalised_to_upper_case():
    ep = endpoint("ep")
    router = Router()
    route = router.add("/r", ep, ["get", "Post", "GET"])
    assert route.methods == frozenset({"GET", "POST"})
    assert router.match("GET", "/r") == (200, ep, {})
    assert router.match("POST", "/r") == (200, ep, {})
    # the request method is compared as sent: HTTP methods are case-sensitive
    assert router.match("get", "/r") == (405, "GET, HEAD, POST", None)


def test_methods_accepts_any_iterable_and_a_single_string():
    ep = endpoint("ep")
    router = Router()
    assert router.add("/a", ep, ("GET",)).methods == frozenset({"GET"})
    assert router.add("/b", ep, {"PUT", "PATCH"}).methods == frozenset({"PUT", "PATCH"})
    assert router.add("/c", ep, (m for m in ["DELETE"])).methods == frozenset({"DELETE"})
    assert router.add("/d", ep, "post").methods == frozenset({"POST"})   # not 'P', 'O', ...


@pytest.mark.parametrize("methods", [[], [""], ["GE T"], ["G/T"], ["G\u00c9T"], "", ["GET\r\n"]])
def test_invalid_methods_are_rejected(methods):
    with pytest.raises(ValueError, match="'/r'"):
        Router().add("/r", endpoint("r"), methods)


def test_non_str_method_is_type_error():
    with pytest.raises(TypeError):
        Router().add("/r", endpoint("r"), [b"GET"])
    with pytest.raises(TypeError):
        Router().add("/r", endpoint("r"), None)


# -- Route objects and the routes list -------------------------------------------------------------


def test_add_returns_route_with_readonly_attributes():
    ep = endpoint("ep")
    router = Router()
    route = router.add("/u/{uid:int}/{rest:path}", ep, ["get"], name="u")
    assert isinstance(route, Route)
    assert route.path == "/u/{uid:int}/{rest:path}"
    assert route.endpoint is ep
    assert route.methods == frozenset({"GET"}) and type(route.methods) is frozenset
    assert route.name == "u"
    assert route.param_names == ("uid", "rest")
    for attr in ("path", "endpoint", "methods", "name", "param_names"):
        with pytest.raises(AttributeError):
            setattr(route, attr, None)
    assert "'/u/{uid:int}/{rest:path}'" in repr(route)
    static = router.add("/s", ep, ["GET"])
    assert static.name is None and static.param_names == ()


def test_route_is_not_constructed_directly():
    with pytest.raises(TypeError):
        Route()


def test_routes_in_registration_order():
    router = Router()
    added = [
        router.add("/b", endpoint("b"), ["GET"]),
        router.add("/a/{x}", endpoint("a"), ["GET"]),
        router.add("/b", endpoint("b2"), ["POST"]),
        router.add("/", endpoint("root"), ["GET"]),
    ]
    assert router.routes == added
    assert len(router) == 4
    router.routes.clear()                      # a copy: the router keeps its routes
    assert router.routes == added


# -- registration errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "users", "users/{id}", " /users", "{id}"])
def test_path_must_start_with_slash(path):
    with pytest.raises(ValueError, match="must start with '/'") as info:
        Router().add(path, endpoint("x"), ["GET"])
    assert repr(path) in str(info.value)


@pytest.mark.parametrize(
    "path",
    ["/{id", "/id}", "/a{id}", "/{id}x", "/x{id}y", "/{{id}}", "/{a}{b}", "/{", "/}", "/a/{b/c}"],
)
def test_malformed_braces(path):
    with pytest.raises(ValueError, match="malformed parameter segment") as info:
        Router().add(path, endpoint("x"), ["GET"])
    assert repr(path) in str(info.value)


@pytest.mark.parametrize("path", ["/{}", "/{1a}", "/{a-b}", "/{ id}", "/{id }", "/{:int}",
                                  "/{a.b}", "/{a b:int}"])
def test_bad_parameter_names(path):
    with pytest.raises(ValueError, match="invalid parameter name") as info:
        Router().add(path, endpoint("x"), ["GET"])
    assert repr(path) in str(info.value)


def test_duplicate_parameter_names():
    message = r"duplicate parameter name 'a' in route path '/x/\{a\}/y/\{a:int\}'"
    with pytest.raises(ValueError, match=message):
        Router().add("/x/{a}/y/{a:int}", endpoint("x"), ["GET"])


@pytest.mark.parametrize("path, conv", [("/{a:uuid}", "uuid"), ("/{a:}", ""), ("/{a:INT}", "INT"),
                                        ("/{a:int:x}", "int:x")])
def test_unknown_converter(path, conv):
    with pytest.raises(ValueError, match="unknown converter") as info:
        Router().add(path, endpoint("x"), ["GET"])
    assert repr(conv) in str(info.value) and repr(path) in str(info.value)


@pytest.mark.parametrize("path", ["/{p:path}/x", "/{p:path}/", "/a/{p:path}/{q}"])
def test_path_converter_must_be_last(path):
    with pytest.raises(ValueError, match="must be the last segment") as info:
        Router().add(path, endpoint("x"), ["GET"])
    assert repr(path) in str(info.value)


def test_same_path_and_method_twice():
    router = Router()
    router.add("/u/{id}", endpoint("one"), ["GET", "POST"])
    with pytest.raises(ValueError, match=r"'/u/\{id\}' is already registered for GET"):
        router.add("/u/{id}", endpoint("two"), ["GET"])
    # {id:str} is the same definition as {id}
    with pytest.raises(ValueError, match=r"already registered for POST \(by route '/u/\{id\}'\)"):
        router.add("/u/{id:str}", endpoint("two"), ["post"])


def test_explicit_head_after_get_is_not_a_duplicate():
    router = Router()
    router.add("/r", endpoint("get"), ["GET"])
    router.add("/r", endpoint("head"), ["HEAD"])
    with pytest.raises(ValueError, match="already registered for HEAD"):
        router.add("/r", endpoint("head2"), ["HEAD"])


@pytest.mark.parametrize(
    "first, second",
    [
        ("/u/{id:int}", "/u/{name}"),
        ("/u/{id:int}", "/u/{id}"),
        ("/u/{id}", "/u/{id:float}"),
        ("/u/{id}/a", "/u/{uid}/b"),
        ("/u/{id}", "/u/{uid}/b"),
        ("/f/{p:path}", "/f/{q:path}"),
    ],
)
def test_conflicting_parameter_definitions(first, second):
    router = Router()
    router.add(first, endpoint("first"), ["GET"])
    with pytest.raises(ValueError, match="conflicts with") as info:
        router.add(second, endpoint("second"), ["POST"])
    message = str(info.value)
    assert repr(second) in message and repr(first) in message


def test_parameter_and_catch_all_at_same_position_do_not_conflict():
    router = Router()
    router.add("/u/{id}", endpoint("a"), ["GET"])
    router.add("/u/{rest:path}", endpoint("b"), ["GET"])
    router.add("/u/me", endpoint("c"), ["GET"])
    assert len(router.routes) == 3


def test_failed_add_leaves_router_unchanged():
    first = endpoint("first")
    router = Router()
    router.add("/a/{x}/b", first, ["GET"], name="first")
    with pytest.raises(ValueError):
        router.add("/a/{y}/c", endpoint("bad"), ["GET"], name="bad")
    with pytest.raises(ValueError):
        router.add("/a/{x}/b", endpoint("dup"), ["POST", "GET"])
    with pytest.raises(ValueError):
        router.add("/new/{p:path}/x", endpoint("bad"), ["GET"])
    assert len(router.routes) == 1
    assert router.match("GET", "/a/q/c") == NOT_FOUND
    assert router.match("POST", "/a/q/b") == (405, "GET, HEAD", None)
    assert router.match("GET", "/new/x") == NOT_FOUND
    with pytest.raises(KeyError):
        router.url_path_for("bad")
    # the position is still usable with the original definition
    router.add("/a/{x}/c", endpoint("ok"), ["GET"])
    assert router.match("GET", "/a/q/c")[0] == 200


def test_name_reuse():
    router = Router()
    router.add("/u/{id}", endpoint("get"), ["GET"], name="user")
    router.add("/u/{id:str}", endpoint("put"), ["PUT"], name="user")     # same path
    assert router.url_path_for("user", id="7") == "/u/7"
    # one handler on several paths (the app names routes after their handler)
    router.add("/users/{id}", endpoint("get"), ["GET"], name="user")
    router.add("/people/{uid:int}/{tab}", endpoint("get"), ["GET"], name="user")
    router.add("/me", endpoint("get"), ["GET"], name="user")
    # the first registration whose parameter names are exactly those given
    assert router.url_path_for("user", id="7") == "/u/7"
    assert router.url_path_for("user", tab="x", uid=3) == "/people/3/x"
    assert router.url_path_for("user") == "/me"
    # no fit: reported against the first registration with that name
    with pytest.raises(ValueError, match=r"unexpected path parameter\(s\) other .*'/u/\{id\}'"):
        router.url_path_for("user", id="7", other=1)
    with pytest.raises(ValueError, match=r"missing path parameter\(s\) id .*'/u/\{id\}'"):
        router.url_path_for("user", uid=3)


def test_path_must_be_str():
    with pytest.raises(TypeError):
        Router().add(None, endpoint("x"), ["GET"])
    with pytest.raises(TypeError):
        Router().add(b"/x", endpoint("x"), ["GET"])


# -- url_path_for ----------------------------------------------------------------------------------


def test_url_path_for_static_and_params():
    router = Router()
    router.add("/", endpoint("root"), ["GET"], name="root")
    router.add("/users/{uid:int}/posts/{slug}", endpoint("post"), ["GET"], name="post")
    router.add("/files/{p:path}", endpoint("file"), ["GET"], name="file")
    router.add("/price/{v:float}", endpoint("price"), ["GET"], name="price")
    assert router.url_path_for("root") == "/"
    assert router.url_path_for("post", uid=3, slug="hello") == "/users/3/posts/hello"
    assert router.url_path_for("post", uid="-3", slug="a b") == "/users/-3/posts/a%20b"
    assert router.url_path_for("file", p="a b/c.txt") == "/files/a%20b/c.txt"
    assert router.url_path_for("file", p="") == "/files/"
    assert router.url_path_for("price", v=1.5) == "/price/1.5"
    assert router.url_path_for("price", v=2) == "/price/2.0"
    assert router.url_path_for("price", v="1e3") == "/price/1e3"


@pytest.mark.parametrize(
    "value, encoded",
    [
        ("a/b", "a%2Fb"),
        ("100%", "100%25"),
        ("a?b#c", "a%3Fb%23c"),
        ("caf\u00e9", "caf%C3%A9"),
        ("\U0001F600", "%F0%9F%98%80"),
        ("a:b@c+d", "a:b@c+d"),
        ("~user.name_1-2", "~user.name_1-2"),
        ("..", ".."),
    ],
)
def test_url_path_for_encodes_str_params(value, encoded):
    router = Router()
    ep = endpoint("ep")
    router.add("/x/{v}", ep, ["GET"], name="x")
    path = router.url_path_for("x", v=value)
    assert path == "/x/" + encoded
    assert router.match("GET", path) == (200, ep, {"v": value})


def test_url_path_for_quotes_static_segments():
    router = Router()
    ep = endpoint("ep")
    router.add("/a b/caf\u00e9/{v}", ep, ["GET"], name="x")
    path = router.url_path_for("x", v="1")
    assert path == "/a%20b/caf%C3%A9/1"
    assert router.match("GET", path) == (200, ep, {"v": "1"})


def test_url_path_for_errors():
    router = Router()
    router.add("/u/{uid:int}/{slug}", endpoint("u"), ["GET"], name="u")
    router.add("/f/{v:float}", endpoint("f"), ["GET"], name="f")
    with pytest.raises(KeyError, match="nope"):
        router.url_path_for("nope")
    with pytest.raises(ValueError, match="missing path parameter.*slug"):
        router.url_path_for("u", uid=1)
    with pytest.raises(ValueError, match="missing path parameter.*uid, slug"):
        router.url_path_for("u")
    with pytest.raises(ValueError, match="unexpected path parameter.*extra"):
        router.url_path_for("u", uid=1, slug="s", extra=2)
    for bad in [True, "x", "1.5", 1.5, None, "", "+1"]:
        with pytest.raises(ValueError, match=r"\{uid:int\}"):
            router.url_path_for("u", uid=bad, slug="s")
    with pytest.raises(ValueError, match=r"\{slug\}"):
        router.url_path_for("u", uid=1, slug="")
    for bad in [math.inf, -math.inf, math.nan, "inf", "nan", "x", False, " 1", None]:
        with pytest.raises(ValueError, match=r"\{v:float\}"):
            router.url_path_for("f", v=bad)


def test_url_path_for_round_trips_random_values():
    rng = random.Random(1234)
    alphabet = "ab/ %?#&=+:@~.-_\u00e9\u65e5\U0001F600\\\"'<>0123456789"
    router = Router()
    eps = {}
    for name, path in [("s", "/s/{a}"), ("i", "/i/{a:int}/{b:float}"), ("p", "/p/{a}/{rest:path}"),
                       ("m", "/m/{a:int}/x/{b}")]:
        eps[name] = endpoint(name)
        router.add(path, eps[name], ["GET"], name=name)

    def text(min_len=1):
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(min_len, 12)))

    for _ in range(2000):
        kind = rng.choice("sipm")
        if kind == "s":
            params = {"a": text()}
        elif kind == "i":
            b = rng.choice([rng.uniform(-1e6, 1e6), rng.random() * 10 ** rng.randint(-320, 308),
                            -0.0, 5e-324, 1.7976931348623157e308])
            params = {"a": rng.randint(-(10 ** 30), 10 ** 30), "b": b}
        elif kind == "p":
            params = {"a": text(), "rest": text(min_len=0)}
        else:
            params = {"a": rng.randint(-5, 5), "b": text()}
        path = router.url_path_for(kind, **params)
        assert path.isascii() and " " not in path and "?" not in path and "#" not in path
        status, ep, got = router.match("GET", path)
        assert (status, ep) == (200, eps[kind]), path
        assert got == params, path
        assert [type(v) for v in got.values()] == [type(v) for v in params.values()]


# -- differential test against a brute-force reference ---------------------------------------------

CONVERTERS = {"str", "int", "float", "path"}


def _ref_parse(path):
    parts = []
    for seg in path.split("/")[1:]:
        if seg.startswith("{"):
            name, _, conv = seg[1:-1].partition(":")
            parts.append((conv or "str", name))
        else:
            parts.append(("static", seg))
    return parts


def _ref_convert(conv, seg):
    if conv == "str":
        return seg
    if conv == "int":
        body = seg.removeprefix("-")
        return int(seg) if body and all("0" <= c <= "9" for c in body) else None
    if any(c.isspace() for c in seg):
        return None
    try:
        value = float(seg)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _ref_path_match(parts, segs):
    """(rank key, params) when the route's path matches the decoded segments, else None."""
    key, params = [], {}
    for k, (conv, text) in enumerate(parts):
        if conv == "path":
            if k >= len(segs):
                return None
            params[text] = "/".join(segs[k:])
            key.append(2)
            return tuple(key), params
        if k >= len(segs):
            return None
        seg = segs[k]
        if conv == "static":
            if seg != text:
                return None
            key.append(0)
        else:
            value = _ref_convert(conv, seg) if seg else None
            if value is None:
                return None
            params[text] = value
            key.append(1)
    if len(parts) != len(segs):
        return None
    return tuple(key), params


def reference_match(registrations, method, path):
    """Brute force over all routes: the rules of the module docstring, no trie."""
    if not path.startswith("/"):
        return NOT_FOUND
    segs = [unquote(s, errors="replace") for s in path.split("/")[1:]]
    leaves = {}                        # normalised parts -> {method: endpoint}
    for path_template, ep, methods in registrations:
        parts = tuple(_ref_parse(path_template))
        for m in methods:
            leaves.setdefault(parts, {})[m] = ep
    best, allowed, matched = None, set(), False
    for parts, handlers in leaves.items():
        handlers = dict(handlers)
        if "GET" in handlers and "HEAD" not in handlers:
            handlers["HEAD"] = handlers["GET"]
        hit = _ref_path_match(parts, segs)
        if hit is None:
            continue
        matched = True
        allowed.update(handlers)
        if method in handlers and (best is None or hit[0] < best[0]):
            best = (hit[0], handlers[method], hit[1])
    if best is not None:
        return (200, best[1], best[2])
    if matched:
        return (405, ", ".join(sorted(allowed)), None)
    return NOT_FOUND


def test_matches_brute_force_reference_on_random_tables():
    rng = random.Random(20240601)
    statics = ["a", "b", "1", ""]
    params = ["{p%d}", "{p%d:int}", "{p%d:float}", "{p%d:str}"]
    request_segments = ["a", "b", "1", "-2", "1.5", "", "x", "a%2Fb", "%61", "%31", "inf", "%FF",
                        "1e3"]
    methods_pool = ["GET", "POST", "HEAD", "PUT"]
    checked = 0
    for _table in range(60):
        router = Router()
        registrations = []
        for _ in range(rng.randint(1, 25)):
            depth = rng.randint(0, 4)
            segs = []
            for k in range(depth):
                r = rng.random()
                if r < 0.55:
                    segs.append(rng.choice(statics))
                elif r < 0.9 or k < depth - 1:
                    segs.append(rng.choice(params) % k)
                else:
                    segs.append("{rest:path}")
            if depth == 0:
                segs = [""]
            path = "/" + "/".join(segs)
            methods = rng.sample(methods_pool, rng.randint(1, 2))
            ep = endpoint(f"{path} {methods}")
            before = router.routes
            try:
                router.add(path, ep, methods)
            except ValueError:
                assert router.routes == before
                continue
            registrations.append((path, ep, methods))
        for _ in range(150):
            path = "/" + "/".join(rng.choice(request_segments) for _ in range(rng.randint(0, 5)))
            method = rng.choice(methods_pool + ["DELETE"])
            assert router.match(method, path) == reference_match(registrations, method, path), (
                method, path, registrations)
            checked += 1
    assert checked == 60 * 150


# -- the int and float converters over real sockets -------------------------------------------

def converter_app():
    app = Catzilla()
    app.add_route("/n/{n:int}", lambda r: {"n": str(r.path_params["n"])[:8]})
    app.add_route("/price/{p:float}", lambda r: {"p": r.path_params["p"]})
    return app


def test_int_with_more_digits_than_python_converts_is_404(caplog):
    with caplog.at_level(logging.WARNING, logger="catzilla"), TestClient(converter_app()) as c:
        assert c.get("/n/" + "9" * 4300).status == 200
        for digits in (4301, 5000):
            r = c.get("/n/" + "9" * digits)
            assert r.status == 404 and r.json() == {"detail": "Not Found"}
        assert c.get("/n/-" + "1" * 30).json() == {"n": "-1111111"}
    assert errors(caplog) == []


@pytest.mark.parametrize("raw,value", [
    ("1.5", 1.5), ("-2", -2.0), ("+2", 2.0), (".5", 0.5), ("5.", 5.0), ("1e3", 1000.0),
    ("-1.5E-2", -0.015), ("007", 7.0),
    ("1_000", None), ("%D9%A1%D9%A2", None), ("%EF%BC%91", None), ("nan", None),
    ("inf", None), ("-Infinity", None), ("1e400", None), ("%201", None), ("1%20", None),
    ("0x10", None), ("1e", None), ("1.2.3", None), ("-", None), ("e5", None),
])
def test_float_accepts_only_ascii_decimal_forms(raw, value):
    with TestClient(converter_app()) as c:
        r = c.get("/price/" + raw)
        if value is None:
            assert r.status == 404
        else:
            assert r.status == 200 and r.json() == {"p": value}


def test_int_and_float_agree_on_odd_forms():
    with TestClient(converter_app()) as c:
        for raw in ("1_000", "%D9%A1%D9%A2", "%EF%BC%91%EF%BC%92"):
            assert c.get("/n/" + raw).status == 404
            assert c.get("/price/" + raw).status == 404
