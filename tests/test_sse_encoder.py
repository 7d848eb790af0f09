"""Tests for catzilla._sse (the Server-Sent Events encoder), without sockets.

The output is parsed by two SSE clients we did not write: httpx-sse's ``SSELineDecoder`` +
``SSEDecoder`` (a line-by-line port of the WHATWG "event stream interpretation" algorithm) and
sseclient-py's ``SSEClient`` (fed an iterable of byte chunks, the way it reads a response).
"""
from __future__ import annotations

import enum
import json
import pickle
import re
from collections import OrderedDict

import pytest
from httpx_sse._decoders import SSEDecoder, SSELineDecoder
from hypothesis import given, settings
from hypothesis import strategies as st
from sseclient import SSEClient

from catzilla._sse import ServerSentEvent, encode_item, format_sse

BOM = b"\xef\xbb\xbf"
PREFIXES = (b": ", b"event: ", b"id: ", b"retry: ", b"data: ")


# -- the two third-party parsers -------------------------------------------------------------------


def _pieces(seq, cuts):
    """Split seq at the given (sorted, in-range) positions."""
    out, start = [], 0
    for cut in cuts:
        out.append(seq[start:cut])
        start = cut
    out.append(seq[start:])
    return [p for p in out if p]


def parse_httpx_sse(raw: bytes, cuts=()) -> list[dict]:
    """Decode with httpx-sse, the text arriving in pieces cut at `cuts` (character offsets)."""
    text = raw.decode("utf-8")  # strict: the output must be valid UTF-8
    lines, decoder, events = SSELineDecoder(), SSEDecoder(), []
    for piece in _pieces(text, sorted(c for c in cuts if 0 < c < len(text))):
        for line in lines.decode(piece):
            # httpx-sse also dispatches a blank line that ends no data field (after a keep-alive
            # comment, once an id was seen); WHATWG step 2 and browsers drop it, and so do we.
            had_data = bool(decoder._data)
            sse = decoder.decode(line)
            if sse is not None and had_data:
                events.append({"event": sse.event, "data": sse.data, "id": sse.id,
                               "retry": sse.retry})
    for line in lines.flush():
        sse = decoder.decode(line)
        assert sse is None, "an event was dispatched without its blank line"
    return events


def parse_sseclient(raw: bytes, cuts=()) -> list[dict]:
    """Decode with sseclient-py, the bytes arriving as chunks cut at `cuts` (byte offsets)."""
    chunks = _pieces(raw, sorted(c for c in cuts if 0 < c < len(raw)))
    return [
        {"event": ev.event, "data": ev.data, "id": ev.id, "retry": ev.retry}
        for ev in SSEClient(iter(chunks)).events()
    ]


def normalise(text: str) -> str:
    """What a client reconstructs from data containing CRLF / CR / LF: LF-joined lines."""
    return re.sub(r"\r\n?", "\n", text)


def check_wire_format(raw: bytes) -> None:
    """UTF-8, no BOM, no CR, every line `known-field: value`, exactly one trailing blank line."""
    assert isinstance(raw, bytes)
    raw.decode("utf-8")
    assert not raw.startswith(BOM)
    assert b"\r" not in raw
    assert raw.endswith(b"\n\n")
    lines = raw.split(b"\n")
    assert lines[-2:] == [b"", b""]
    for line in lines[:-2]:
        assert line.startswith(PREFIXES), line


# -- strategies ------------------------------------------------------------------------------------

# Characters that matter to the format, mixed with arbitrary (surrogate-free) Unicode.
_SPECIAL = st.sampled_from([
    "\r", "\n", "\r\n", "\n\r", "\x00", "\U0001f600", "\u00e9", "\u4e2d", "\ufeff", " ", ":",
    "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "data: x", "event: y",
])
texts = st.lists(st.one_of(_SPECIAL, st.characters(codec="utf-8")), max_size=40).map("".join)
single_line = texts.map(lambda s: s.replace("\r", "").replace("\n", ""))
event_names = single_line | st.sampled_from(["", "message", "update", "\u00e9v\u00e9nement"])
ids = single_line.map(lambda s: s.replace("\x00", "")) | st.integers(-(2**70), 2**70)
retries = st.integers(0, 2**70)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def events(draw):
    """Keyword arguments for one event that carries data (so both clients dispatch it)."""
    kwargs = {"data": draw(texts)}
    for name, strategy in (("event", event_names), ("id", ids), ("retry", retries),
                           ("comment", texts)):
        if draw(st.booleans()):
            kwargs[name] = draw(strategy)
    return kwargs


def expected(kwargs: dict, last_id: str | None) -> dict:
    """The event a client reports, in httpx-sse's terms (id: the last one seen, or "")."""
    own_id = kwargs.get("id")
    return {
        "event": kwargs.get("event") or "message",
        "data": normalise(kwargs["data"]),
        "id": str(own_id) if own_id is not None else (last_id or ""),
        "retry": kwargs.get("retry"),
    }


# -- round trips through both clients --------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(kwargs=events(), cut=st.integers(0, 10_000))
def test_round_trip_one_event(kwargs, cut):
    raw = format_sse(**kwargs)
    check_wire_format(raw)
    want = expected(kwargs, None)
    assert parse_httpx_sse(raw) == [want]
    assert parse_httpx_sse(raw, [cut % (len(raw) + 1)]) == [want]
    # sseclient-py: id None when absent, retry as the text it read
    want_sc = dict(want, id=None if kwargs.get("id") is None else want["id"],
                   retry=None if want["retry"] is None else str(want["retry"]))
    assert parse_sseclient(raw) == [want_sc]
    assert parse_sseclient(raw, [cut % (len(raw) + 1)]) == [want_sc]
    assert encode_item(kwargs) == raw
    assert ServerSentEvent(**kwargs).encode() == raw


@settings(max_examples=100, deadline=None)
@given(batch=st.lists(events(), min_size=1, max_size=6),
       keepalives=st.lists(st.booleans(), min_size=6, max_size=6),
       cuts=st.lists(st.integers(0, 10_000), max_size=8))
def test_round_trip_stream(batch, keepalives, cuts):
    """A stream of events, keep-alive comments between them, delivered in arbitrary chunks."""
    parts, want, want_sc, last_id = [], [], [], None
    for kwargs, keepalive in zip(batch, keepalives, strict=False):
        if keepalive:
            parts.append(format_sse(comment="keep-alive"))
        parts.append(encode_item(ServerSentEvent(**kwargs)))
        want.append(expected(kwargs, last_id))
        if kwargs.get("id") is not None:
            last_id = str(kwargs["id"])
        retry = kwargs.get("retry")
        want_sc.append(dict(want[-1], id=None if kwargs.get("id") is None else want[-1]["id"],
                            retry=None if retry is None else str(retry)))
    raw = b"".join(parts)
    assert parse_httpx_sse(raw, cuts) == want
    assert parse_sseclient(raw, cuts) == want_sc


def test_byte_by_byte_delivery():
    raw = format_sse(data="h\u00e9\U0001f600\r\nx", event="\u00e9", id="\U0001f600", retry=5)
    raw += format_sse(data="second")
    every_byte = range(1, len(raw))
    parsed = parse_sseclient(raw, every_byte)
    assert [e["data"] for e in parsed] == ["h\u00e9\U0001f600\nx", "second"]
    assert parse_httpx_sse(raw, range(1, len(raw.decode()))) == [
        {"event": "\u00e9", "data": "h\u00e9\U0001f600\nx", "id": "\U0001f600", "retry": 5},
        {"event": "message", "data": "second", "id": "\U0001f600", "retry": None},
    ]


@settings(max_examples=150, deadline=None)
@given(value=json_values.filter(lambda v: v is not None and not isinstance(v, str)))
def test_json_data_round_trip(value):
    raw = format_sse(data=value, event="json")
    check_wire_format(raw)
    assert raw.count(b"\ndata: ") + raw.startswith(b"data: ") == 1  # JSON stays on one line
    (parsed,) = parse_httpx_sse(raw)
    assert json.loads(parsed["data"]) == value
    assert parsed["data"] == json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    (parsed_sc,) = parse_sseclient(raw)
    assert json.loads(parsed_sc["data"]) == value


@settings(max_examples=150, deadline=None)
@given(data=texts)
def test_bytes_data_same_as_str(data):
    raw = format_sse(data=data)
    assert format_sse(data=data.encode()) == raw
    assert format_sse(data=bytearray(data.encode())) == raw
    assert format_sse(data=memoryview(data.encode())) == raw


@settings(max_examples=150, deadline=None)
@given(comment=texts)
def test_comments_are_invisible_to_clients(comment):
    raw = format_sse(comment=comment)
    check_wire_format(raw)
    assert raw.count(b"\n") == len(normalise(comment).split("\n")) + 1
    assert parse_httpx_sse(raw) == []
    assert parse_sseclient(raw + format_sse(data="after")) == [
        {"event": "message", "data": "after", "id": None, "retry": None}
    ]


# -- exact bytes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "wire"),
    [
        ({"data": "hello"}, b"data: hello\n\n"),
        ({"data": "hello", "event": "greeting", "id": 7},
         b"event: greeting\nid: 7\ndata: hello\n\n"),
        ({"data": "a\r\nb\rc\nd"}, b"data: a\ndata: b\ndata: c\ndata: d\n\n"),
        ({"data": "a\n"}, b"data: a\ndata: \n\n"),
        ({"data": "\r\n\r"}, b"data: \ndata: \ndata: \n\n"),
        ({"data": "\n\r"}, b"data: \ndata: \ndata: \n\n"),
        ({"data": " lead"}, b"data:  lead\n\n"),
        ({"data": {"x": [1, 2]}, "retry": 0}, b'retry: 0\ndata: {"x":[1,2]}\n\n'),
        ({"comment": "keep-alive"}, b": keep-alive\n\n"),
        ({"comment": "two\r\nlines"}, b": two\n: lines\n\n"),
        ({"retry": 3000}, b"retry: 3000\n\n"),
        ({"id": ""}, b"id: \n\n"),
        ({"data": "caf\u00e9 \U0001f600"}, "data: caf\u00e9 \U0001f600\n\n".encode()),
        (
            {"data": "d1\nd2", "event": "e", "id": "i", "retry": 10, "comment": "c1\nc2"},
            b": c1\n: c2\nevent: e\nid: i\nretry: 10\ndata: d1\ndata: d2\n\n",
        ),
    ],
)
def test_exact_bytes(kwargs, wire):
    assert format_sse(**kwargs) == wire
    assert ServerSentEvent(**kwargs).encode() == wire
    assert encode_item(kwargs) == wire


def test_field_order_does_not_depend_on_argument_order():
    wire = b": c\nevent: e\nid: 1\nretry: 2\ndata: d\n\n"
    assert format_sse(retry=2, data="d", comment="c", id=1, event="e") == wire
    assert format_sse("d", "e", 1, 2, "c") == wire
    assert encode_item({"data": "d", "retry": 2, "id": 1, "event": "e", "comment": "c"}) == wire
    assert ServerSentEvent("d", "e", 1, 2, "c").encode() == wire


def test_falsy_values_are_kept():
    assert format_sse(data="") == b"data: \n\n"
    assert format_sse(data=0) == b"data: 0\n\n"
    assert format_sse(data=False) == b"data: false\n\n"
    assert format_sse(data=[]) == b"data: []\n\n"
    assert format_sse(data={}) == b"data: {}\n\n"
    assert format_sse(data=0.0) == b"data: 0.0\n\n"
    assert format_sse(data=b"") == b"data: \n\n"
    assert format_sse(retry=0) == b"retry: 0\n\n"
    assert format_sse(id=0) == b"id: 0\n\n"
    assert format_sse(event="") == b"event: \n\n"
    assert format_sse(comment="") == b": \n\n"
    assert format_sse(data="", event="", id="", retry=0, comment="") == (
        b": \nevent: \nid: \nretry: 0\ndata: \n\n"
    )
    # the clients agree: an empty data line is an event with empty data
    assert parse_httpx_sse(format_sse(data="")) == [
        {"event": "message", "data": "", "id": "", "retry": None}
    ]
    assert parse_sseclient(format_sse(data="", retry=0)) == [
        {"event": "message", "data": "", "id": None, "retry": "0"}
    ]


def test_none_means_absent():
    assert format_sse(data="x", event=None, id=None, retry=None, comment=None) == b"data: x\n\n"
    assert format_sse(event="only") == b"event: only\n\n"


def test_only_cr_and_lf_split_lines():
    """U+2028, U+2029, NEL, VT, FF and the file/group/record separators are not line breaks in
    SSE (str.splitlines would split on them)."""
    data = "a\u2028b\u2029c\x85d\x0be\x0cf\x1cg\x1dh\x1ei"
    raw = format_sse(data=data)
    assert raw == b"data: " + data.encode() + b"\n\n"
    assert parse_httpx_sse(raw)[0]["data"] == data
    assert parse_sseclient(raw)[0]["data"] == data
    assert format_sse(comment=data) == b": " + data.encode() + b"\n\n"


def test_nul_and_bom_in_data_are_data():
    raw = format_sse(data="\ufeff\x00x")
    assert raw == b"data: " + BOM + b"\x00x\n\n"
    assert not raw.startswith(BOM)
    assert parse_httpx_sse(raw)[0]["data"] == "\ufeff\x00x"
    assert parse_sseclient(raw)[0]["data"] == "\ufeff\x00x"


def test_non_ascii_utf8_never_bom():
    for kwargs in ({"data": "\u00e9"}, {"event": "\u00e9"}, {"id": "\u00e9"},
                   {"comment": "\u00e9"}, {"data": {"k": "\u00e9"}}):
        raw = format_sse(**kwargs)
        assert "\u00e9".encode() in raw
        assert BOM not in raw


def test_long_data_many_lines():
    data = "\r\n".join(f"line {i} \u00e9" for i in range(10_000))
    raw = format_sse(data=data, event="big")
    check_wire_format(raw)
    assert raw.count(b"\ndata: ") == 10_000
    assert parse_httpx_sse(raw)[0]["data"] == normalise(data)
    assert parse_sseclient(raw)[0]["data"] == normalise(data)
    plain = "x" * 1_000_000
    assert format_sse(data=plain) == b"data: " + plain.encode() + b"\n\n"


# -- data conversion -------------------------------------------------------------------------------


def test_json_data_is_compact_and_not_ascii_escaped():
    value = {"name": "Zo\u00eb", "emoji": "\U0001f600", "n": [1, 2.5, None, True], "nl": "a\nb"}
    raw = format_sse(data=value)
    assert raw == b"data: " + json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    ).encode() + b"\n\n"
    assert b"\\u" not in raw and b", " not in raw and b": " not in raw[6:]
    assert b'"a\\nb"' in raw  # a newline inside a JSON string is escaped, so one data line


@pytest.mark.parametrize(
    ("value", "wire"),
    [(1, b"1"), (-7, b"-7"), (2.5, b"2.5"), (True, b"true"), ([1, "a"], b'[1,"a"]'),
     ((1, 2), b"[1,2]"), ({"a": {"b": None}}, b'{"a":{"b":null}}'), ({1: 2}, b'{"1":2}')],
)
def test_non_text_data_becomes_json(value, wire):
    assert format_sse(data=value) == b"data: " + wire + b"\n\n"


def test_bytes_data_is_utf8_text():
    assert format_sse(data=b"a\r\nb") == b"data: a\ndata: b\n\n"
    assert format_sse(data="\u00e9".encode()) == "data: \u00e9\n\n".encode()
    assert format_sse(data=b'{"already":"json"}') == b'data: {"already":"json"}\n\n'


def test_str_subclasses_are_read_as_text():
    class Text(str):
        def __str__(self):
            return "not this"

    assert format_sse(data=Text("a\nb"), event=Text("e"), id=Text("i"), comment=Text("c")) == (
        b": c\nevent: e\nid: i\ndata: a\ndata: b\n\n"
    )
    assert format_sse(data=Text("caf\u00e9")) == "data: caf\u00e9\n\n".encode()
    with pytest.raises(ValueError):
        format_sse(event=Text("x\ny"))


def test_id_int_and_int_subclasses_are_decimal():
    class Color(enum.IntEnum):
        RED = 3

    class Weird(int):
        def __repr__(self):
            return "weird"

        __str__ = __repr__

    assert format_sse(id=42) == b"id: 42\n\n"
    assert format_sse(id=-1) == b"id: -1\n\n"
    assert format_sse(id=2**100) == b"id: " + str(2**100).encode() + b"\n\n"
    assert format_sse(id=-(2**63)) == b"id: -9223372036854775808\n\n"
    assert format_sse(id=Color.RED) == b"id: 3\n\n"
    assert format_sse(id=Weird(5), retry=Weird(6)) == b"id: 5\nretry: 6\n\n"
    assert format_sse(retry=2**64) == b"retry: 18446744073709551616\n\n"
    assert ServerSentEvent(id=Color.RED).id == "3"


# -- rejections ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"data": None, "event": None, "id": None, "retry": None, "comment": None},
        {"event": "a\nb"}, {"event": "a\rb"}, {"event": "a\r\n"}, {"event": "\n"},
        {"id": "a\nb"}, {"id": "a\rb"}, {"id": "\r\n"}, {"id": "a\x00b"}, {"id": "\x00"},
        {"data": "x", "id": "1\n"},
        {"retry": -1}, {"retry": -(2**80)},
        {"data": b"\xff"}, {"data": b"\xc3"}, {"data": bytearray(b"\xed\xa0\x80")},
        {"data": memoryview(b"ok \x80")},
        {"data": float("nan")}, {"data": float("inf")}, {"data": {"x": [float("-inf")]}},
    ],
)
def test_value_errors(kwargs):
    with pytest.raises(ValueError):
        format_sse(**kwargs)
    with pytest.raises(ValueError):
        ServerSentEvent(**kwargs)
    with pytest.raises(ValueError):
        encode_item(kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": 1}, {"event": b"bytes"}, {"event": ["x"]},
        {"id": True}, {"id": False}, {"id": 1.0}, {"id": b"1"}, {"id": ["1"]},
        {"retry": True}, {"retry": False}, {"retry": 1.0}, {"retry": 1.5}, {"retry": "1000"},
        {"retry": b"1"},
        {"comment": 1}, {"comment": b"c"},
        {"data": object()}, {"data": {"s": {1, 2}}}, {"data": {(1, 2): 3}},
    ],
)
def test_type_errors(kwargs):
    with pytest.raises(TypeError):
        format_sse(**kwargs)
    with pytest.raises(TypeError):
        ServerSentEvent(**kwargs)
    with pytest.raises(TypeError):
        encode_item(kwargs)


def test_error_messages_name_the_field():
    with pytest.raises(ValueError, match="event"):
        format_sse(event="a\nb")
    with pytest.raises(ValueError, match="NUL"):
        format_sse(id="a\x00")
    with pytest.raises(ValueError, match="negative"):
        format_sse(retry=-5)
    with pytest.raises(TypeError, match="retry"):
        format_sse(retry=True)
    with pytest.raises(ValueError, match="UTF-8"):
        format_sse(data=b"\xff")
    with pytest.raises(ValueError, match="at least one"):
        format_sse()


def test_lone_surrogates_are_rejected():
    for kwargs in ({"data": "\ud800"}, {"event": "\udfff"}, {"id": "a\ud800"},
                   {"comment": "\ud800"}, {"data": {"k": "\ud800"}}):
        with pytest.raises(UnicodeEncodeError):  # a ValueError
            format_sse(**kwargs)


def test_reference_cycle_in_json_data():
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="cycle"):
        format_sse(data=cycle)
    assert format_sse(data=[1]) == b"data: [1]\n\n"  # nothing left in a bad state


# -- encode_item -----------------------------------------------------------------------------------


def test_encode_item_passes_text_through_untouched():
    hand_written = "event: tick\ndata: x\r\n\r\n"
    assert encode_item(hand_written) == hand_written.encode()
    assert encode_item("data: caf\u00e9\n\n") == "data: caf\u00e9\n\n".encode()
    assert encode_item("") == b""
    assert encode_item("no trailing blank line") == b"no trailing blank line"

    class Text(str):
        pass

    assert encode_item(Text("data: s\n\n")) == b"data: s\n\n"


def test_encode_item_passes_bytes_through_untouched():
    payload = b"data: x\r\r"
    assert encode_item(payload) is payload
    assert encode_item(bytearray(payload)) == payload
    assert type(encode_item(bytearray(payload))) is bytes
    assert encode_item(memoryview(payload)) == payload
    assert type(encode_item(memoryview(payload))) is bytes
    assert encode_item(b"\xff\xfe") == b"\xff\xfe"  # not validated: the bytes are the caller's

    class Raw(bytes):
        pass

    assert type(encode_item(Raw(b"x"))) is bytes


def test_encode_item_dicts():
    assert encode_item({"data": "x"}) == b"data: x\n\n"
    assert encode_item({"data": {"nested": True}, "event": "j"}) == (
        b'event: j\ndata: {"nested":true}\n\n'
    )
    assert encode_item({"data": "x", "id": None}) == b"data: x\n\n"
    assert encode_item(OrderedDict(id=1, data="x")) == b"id: 1\ndata: x\n\n"
    with pytest.raises(ValueError, match="unknown SSE field.*'name'"):
        encode_item({"data": "x", "name": "y"})
    with pytest.raises(ValueError, match="unknown"):
        encode_item({"data": "x", 1: "y"})
    with pytest.raises(ValueError, match="unknown"):
        encode_item({"Data": "x"})
    with pytest.raises(ValueError, match="unknown"):
        encode_item({"sep": "\n"})  # sse-starlette has it; the format here is fixed


@pytest.mark.parametrize("item", [None, 1, 1.5, True, ["data: x"], ("data",), object(), {"x"}])
def test_encode_item_rejects_other_types(item):
    with pytest.raises(TypeError, match="ServerSentEvent, dict, str or bytes"):
        encode_item(item)


def test_encode_item_event_and_subclass():
    ev = ServerSentEvent("x", event="e")
    assert encode_item(ev) is ev.encode()

    class Upper(ServerSentEvent):
        def encode(self):
            return super().encode().upper()

    assert encode_item(Upper("x")) == b"DATA: X\n\n"


# -- ServerSentEvent -------------------------------------------------------------------------------


def test_event_attributes_are_readonly():
    ev = ServerSentEvent(data={"a": 1}, event="e", id=5, retry=10, comment="c")
    assert (ev.data, ev.event, ev.id, ev.retry, ev.comment) == ({"a": 1}, "e", "5", 10, "c")
    for name in ("data", "event", "id", "retry", "comment"):
        with pytest.raises(AttributeError):
            setattr(ev, name, None)
    empty = ServerSentEvent(comment="only")
    assert (empty.data, empty.event, empty.id, empty.retry) == (None, None, None, None)


def test_event_is_encoded_once():
    data = {"n": 1}
    ev = ServerSentEvent(data)
    first = ev.encode()
    data["n"] = 2
    assert ev.encode() is first and first == b'data: {"n":1}\n\n'


def test_event_repr():
    assert repr(ServerSentEvent("hi")) == "ServerSentEvent(data='hi')"
    assert repr(ServerSentEvent(data={"a": 1}, event="e", id=3, retry=0, comment="")) == (
        "ServerSentEvent(data={'a': 1}, event='e', id='3', retry=0, comment='')"
    )


def test_event_equality_and_hash():
    a = ServerSentEvent("x", event="e", id=1)
    b = ServerSentEvent("x", event="e", id="1")
    assert a == b and not (a != b) and hash(a) == hash(b)
    assert a != ServerSentEvent("x", event="f", id=1)
    assert a != ServerSentEvent("x", event="e")
    assert ServerSentEvent(1) != ServerSentEvent(True)  # 1 == True, but "1" != "true"
    assert ServerSentEvent("1") != ServerSentEvent(1)  # same bytes, different fields
    assert ServerSentEvent({"a": 1}) == ServerSentEvent({"a": 1})
    assert a != "x" and a != b"data: x\n\n"
    assert len({a, b, ServerSentEvent("y")}) == 2
    with pytest.raises(TypeError):
        hash(ServerSentEvent({"a": 1}))  # as unhashable as its data


def test_event_pickles():
    ev = ServerSentEvent(data=[1, "\u00e9"], event="e", id=9, retry=5, comment="c")
    back = pickle.loads(pickle.dumps(ev))
    assert back == ev and back.encode() == ev.encode()


def test_event_positional_signature():
    assert ServerSentEvent("d", "e", "i", 1, "c") == ServerSentEvent(
        data="d", event="e", id="i", retry=1, comment="c"
    )
    with pytest.raises(TypeError):
        ServerSentEvent("d", "e", "i", 1, "c", "extra")
    with pytest.raises(TypeError):
        format_sse(sep="\n")
