# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Server-Sent Events encoder, following the WHATWG HTML "Server-sent events" section.

    format_sse(data="hello", event="greeting", id=7)
    # b"event: greeting\\nid: 7\\ndata: hello\\n\\n"
    format_sse(data="a\\r\\nb\\rc\\nd")
    # b"data: a\\ndata: b\\ndata: c\\ndata: d\\n\\n"   (the client joins the lines with LF)
    format_sse(data={"x": [1, 2]}, retry=0)
    # b'retry: 0\\ndata: {"x":[1,2]}\\n\\n'
    format_sse(comment="keep-alive")
    # b": keep-alive\\n\\n"

Field order is: comment lines, ``event:``, ``id:``, ``retry:``, ``data:`` lines, blank line.
Every line is ``field: value`` (one space, also when the value is empty) ended by LF; the
output is UTF-8 without a BOM and ends with exactly one blank line.

``data`` is a str, bytes-like (must be UTF-8) or any other value, which is sent as compact JSON
(``separators=(",", ":")``, ``ensure_ascii=False``, ``allow_nan=False``, like ``JSONResponse``).
It is split on CRLF, lone CR and lone LF (and on nothing else: U+2028, form feed etc. stay in the
line) into one ``data:`` line each. ``event`` is a str, ``id`` a str or an int; neither may
contain CR or LF, and ``id`` may not contain NUL (a client ignores such an id). ``retry`` is a
non-negative int (not bool). ``comment`` is a str; each of its lines becomes ``: line``.
A value that is not None is always sent, falsy or not: ``data=""``, ``data=0``, ``event=""``,
``id=""`` (which resets the client's last event ID) and ``retry=0`` all appear.
Wrong types raise TypeError, wrong values ValueError (UnicodeError for lone surrogates).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_GetItem
from cpython.long cimport PyLong_AsLongLongAndOverflow
from cpython.ref cimport PyObject
from cpython.unicode cimport (
    PyUnicode_AsUTF8String,
    PyUnicode_DATA,
    PyUnicode_DecodeUTF8,
    PyUnicode_GET_LENGTH,
)
from libc.string cimport memchr, memcpy

import json as _json
import json.encoder as _json_encoder

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)

__all__ = ["ServerSentEvent", "encode_item", "format_sse"]

cdef enum:
    _LF = 10
    _CR = 13

# The output of catzilla.responses.JSONResponse's encoder (ensure_ascii=False, allow_nan=False,
# compact separators). The C encoder is built once and has no cycle check (`markers` None: a
# shared markers dict would not be thread-safe, and a new encoder per call costs ~0.5 us), so
# a reference cycle ends as RecursionError, reported as ValueError.
cdef object _json_encode = _json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":")
).encode


def _json_default(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


cdef object _c_json = None
if _json_encoder.c_make_encoder is not None:
    _c_json = _json_encoder.c_make_encoder(
        None, _json_default, _json_encoder.encode_basestring, None, ":", ",", False, False, False
    )


cdef str _to_json(object obj):
    if _c_json is None:
        return _json_encode(obj)
    try:
        return "".join(_c_json(obj, 0))
    except RecursionError:
        raise ValueError("SSE data is nested too deeply or contains a reference cycle") from None


cdef tuple _FIELD_NAMES = ("data", "event", "id", "retry", "comment")


# -- UTF-8 text views ------------------------------------------------------------------------------

cdef struct _Text:
    const char* ptr     # UTF-8 bytes, owned by a Python object the caller keeps alive
    Py_ssize_t size
    Py_ssize_t lines    # lines once split on CRLF / CR / LF (set by _scan_lines)
    Py_ssize_t chars    # bytes that are not line breaks (set by _scan_lines)
    bint has_cr

cdef _Text _NO_TEXT     # all zero (a C global)


cdef inline object _view_str(object s, _Text* t):
    """Point t at the UTF-8 form of the str s; return the object owning those bytes.

    ASCII strings are read in place; others are encoded into a temporary bytes object (so the
    caller's string does not keep a cached UTF-8 copy alive).
    """
    cdef object b
    if PyUnicode_IS_ASCII(s):
        t.ptr = <const char*>PyUnicode_DATA(s)
        t.size = PyUnicode_GET_LENGTH(s)
        return s
    b = PyUnicode_AsUTF8String(s)
    t.ptr = PyBytes_AS_STRING(b)
    t.size = PyBytes_GET_SIZE(b)
    return b


cdef inline object _view_bytes(object b, _Text* t, str what):
    """Point t at a bytes object, after checking it is valid UTF-8."""
    t.ptr = PyBytes_AS_STRING(b)
    t.size = PyBytes_GET_SIZE(b)
    try:
        PyUnicode_DecodeUTF8(t.ptr, t.size, NULL)
    except UnicodeDecodeError as exc:
        raise ValueError(f"SSE {what} bytes are not valid UTF-8: {exc}") from None
    return b


cdef inline Py_ssize_t _format_int(long long v, char* buf) noexcept nogil:
    """Write the decimal digits of v into buf (24 bytes); return their count."""
    cdef char tmp[24]
    cdef Py_ssize_t n = 0, i
    cdef unsigned long long u
    cdef bint negative = v < 0
    if negative:
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    while True:
        tmp[n] = <char>(48 + u % 10)
        n += 1
        u //= 10
        if u == 0:
            break
    if negative:
        tmp[n] = b'-'
        n += 1
    for i in range(n):
        buf[i] = tmp[n - 1 - i]
    return n


cdef object _view_int(object value, _Text* t, char* buf):
    """Point t at the decimal text of the int value, written into buf when it fits."""
    cdef int overflow = 0
    cdef long long v = PyLong_AsLongLongAndOverflow(value, &overflow)
    if overflow == 0:
        t.ptr = buf
        t.size = _format_int(v, buf)
        return None
    return _view_str(int.__repr__(value), t)


cdef inline bint _has(const _Text* t, int c) noexcept nogil:
    return t.size > 0 and memchr(t.ptr, c, <size_t>t.size) != NULL


cdef inline const char* _find_break(const char* p, const char* end,
                                    bint has_cr) noexcept nogil:
    """The first CR or LF in [p, end), or end."""
    cdef const char* q
    if p >= end:
        return end
    if not has_cr:
        q = <const char*>memchr(p, _LF, <size_t>(end - p))
        return q if q != NULL else end
    while p < end and p[0] != _CR and p[0] != _LF:
        p += 1
    return p


cdef inline const char* _after_break(const char* q, const char* end) noexcept nogil:
    """Skip the line break at q: CRLF, CR or LF."""
    if q[0] == _CR and q + 1 < end and q[1] == _LF:
        return q + 2
    return q + 1


cdef void _scan_lines(_Text* t) noexcept nogil:
    """Count the lines of t as the WHATWG parser splits them (CRLF, CR, LF) and their bytes.

    _put_lines walks the text with the same two helpers, so it writes exactly what is counted.
    """
    cdef const char* p = t.ptr
    cdef const char* end = p + t.size
    cdef const char* q
    t.has_cr = _has(t, _CR)
    t.lines = 1
    t.chars = 0
    while True:
        q = _find_break(p, end, t.has_cr)
        t.chars += q - p
        if q == end:
            return
        t.lines += 1
        p = _after_break(q, end)


cdef inline char* _put(char* out, const char* src, Py_ssize_t n) noexcept nogil:
    if n > 0:
        memcpy(out, src, <size_t>n)
    return out + n


cdef inline char* _put_line(char* out, const char* prefix, Py_ssize_t plen,
                            const char* src, Py_ssize_t n) noexcept nogil:
    out = _put(out, prefix, plen)
    out = _put(out, src, n)
    out[0] = _LF
    return out + 1


cdef char* _put_lines(char* out, const char* prefix, Py_ssize_t plen,
                      const _Text* t) noexcept nogil:
    """Write ``prefix + line + LF`` for every line of t (scanned by _scan_lines)."""
    cdef const char* p = t.ptr
    cdef const char* end = p + t.size
    cdef const char* q
    while True:
        q = _find_break(p, end, t.has_cr)
        out = _put_line(out, prefix, plen, p, q - p)
        if q == end:
            return out
        p = _after_break(q, end)


# -- the encoder -----------------------------------------------------------------------------------

cdef inline str _tname(object o):
    return type(o).__name__


cdef bytes encode_event(object data, object event, object id, object retry, object comment):
    """One event as wire bytes (the implementation of ``format_sse``)."""
    cdef _Text c = _NO_TEXT, e = _NO_TEXT, i = _NO_TEXT, r = _NO_TEXT, d = _NO_TEXT
    cdef char id_buf[24]
    cdef char retry_buf[24]
    # Owners of the bytes the views point into: they must outlive the copy below.
    cdef object _c_own = None, _e_own = None, _i_own = None, _r_own = None, _d_own = None
    cdef Py_ssize_t total = 1        # the blank line
    cdef bytes out
    cdef char* w

    if comment is not None:
        if not isinstance(comment, str):
            raise TypeError(f"SSE comment must be str, not {_tname(comment)}")
        _c_own = _view_str(comment, &c)
        _scan_lines(&c)
        total += c.lines * 3 + c.chars                      # ": " line LF

    if event is not None:
        if not isinstance(event, str):
            raise TypeError(f"SSE event must be str, not {_tname(event)}")
        _e_own = _view_str(event, &e)
        if _has(&e, _CR) or _has(&e, _LF):
            raise ValueError(f"SSE event must not contain CR or LF: {event!r}")
        total += 8 + e.size                                 # "event: " value LF

    if id is not None:
        if isinstance(id, str):
            _i_own = _view_str(id, &i)
        elif isinstance(id, int) and type(id) is not bool:
            _i_own = _view_int(id, &i, id_buf)
        else:
            raise TypeError(f"SSE id must be str or int, not {_tname(id)}")
        if _has(&i, _CR) or _has(&i, _LF) or _has(&i, 0):
            raise ValueError(f"SSE id must not contain CR, LF or NUL: {id!r}")
        total += 5 + i.size                                 # "id: " value LF

    if retry is not None:
        if not isinstance(retry, int) or type(retry) is bool:
            raise TypeError(f"SSE retry must be an int (milliseconds), not {_tname(retry)}")
        if retry < 0:
            raise ValueError(f"SSE retry must not be negative: {retry!r}")
        _r_own = _view_int(retry, &r, retry_buf)
        total += 8 + r.size                                 # "retry: " digits LF

    if data is not None:
        if isinstance(data, str):
            _d_own = _view_str(data, &d)
        elif isinstance(data, bytes):
            _d_own = _view_bytes(data, &d, "data")
        elif isinstance(data, (bytearray, memoryview)):
            _d_own = _view_bytes(bytes(data), &d, "data")
        else:
            _d_own = _view_str(_to_json(data), &d)
        _scan_lines(&d)
        total += d.lines * 7 + d.chars                      # "data: " line LF
    elif comment is None and event is None and id is None and retry is None:
        raise ValueError("an SSE event needs at least one of data, event, id, retry, comment")

    out = PyBytes_FromStringAndSize(NULL, total)
    w = PyBytes_AS_STRING(out)
    if comment is not None:
        w = _put_lines(w, ": ", 2, &c)
    if event is not None:
        w = _put_line(w, "event: ", 7, e.ptr, e.size)
    if id is not None:
        w = _put_line(w, "id: ", 4, i.ptr, i.size)
    if retry is not None:
        w = _put_line(w, "retry: ", 7, r.ptr, r.size)
    if data is not None:
        w = _put_lines(w, "data: ", 6, &d)
    w[0] = _LF
    if w + 1 != PyBytes_AS_STRING(out) + total:             # cannot happen; never send garbage
        raise AssertionError("SSE encoder size mismatch")
    return out


def format_sse(data=None, event=None, id=None, retry=None, comment=None) -> bytes:
    """Encode one event (see the module docstring for the rules).

        format_sse(data="hi", event="greet")    # b"event: greet\\ndata: hi\\n\\n"

    An event with every field None is a ValueError.
    """
    return encode_event(data, event, id, retry, comment)


cdef bytes _encode_dict(dict d):
    cdef PyObject* v
    cdef Py_ssize_t found = 0
    cdef object data = None, event = None, id = None, retry = None, comment = None
    v = PyDict_GetItem(d, "data")
    if v != NULL:
        data = <object>v
        found += 1
    v = PyDict_GetItem(d, "event")
    if v != NULL:
        event = <object>v
        found += 1
    v = PyDict_GetItem(d, "id")
    if v != NULL:
        id = <object>v
        found += 1
    v = PyDict_GetItem(d, "retry")
    if v != NULL:
        retry = <object>v
        found += 1
    v = PyDict_GetItem(d, "comment")
    if v != NULL:
        comment = <object>v
        found += 1
    if found != len(d):
        unknown = [k for k in d if not (isinstance(k, str) and k in _FIELD_NAMES)]
        raise ValueError(
            f"unknown SSE field(s) {unknown!r}: the keys are data, event, id, retry and comment"
        )
    return encode_event(data, event, id, retry, comment)


cpdef bytes encode_item(object obj):
    """Turn one item that an SSE stream yields into bytes to send.

    ``ServerSentEvent`` -> its encoding; ``dict`` -> an event from its keys (data, event, id,
    retry, comment; any other key is a ValueError); ``str`` -> its UTF-8 bytes unchanged, so a
    hand-formatted ``"data: x\\n\\n"`` is sent as written; ``bytes``, ``bytearray``,
    ``memoryview`` -> the same bytes unchanged. Anything else is a TypeError.
    """
    if type(obj) is ServerSentEvent:
        return (<ServerSentEvent>obj)._encoded
    if type(obj) is bytes:
        return <bytes>obj
    if isinstance(obj, str):
        return PyUnicode_AsUTF8String(obj)
    if isinstance(obj, dict):
        return _encode_dict(<dict>obj)
    if isinstance(obj, ServerSentEvent):
        return obj.encode()                                 # a subclass may override encode()
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj)
    raise TypeError(
        f"an SSE stream must yield ServerSentEvent, dict, str or bytes, not {_tname(obj)}"
    )


# -- the event object ------------------------------------------------------------------------------

cdef class ServerSentEvent:
    """One event, validated and encoded when it is created (so the bytes are reused when it is
    sent to many clients; later changes to a dict or list given as ``data`` are not seen).

        ev = ServerSentEvent({"price": 10.5}, event="tick", id=41)
        ev.encode()     # b'event: tick\\nid: 41\\ndata: {"price":10.5}\\n\\n'
        ev.id           # '41' (an int id is kept as its text, the way the client sees it)

    Equal when the fields are equal and they encode to the same bytes.
    """

    def __init__(self, data=None, event=None, id=None, retry=None, comment=None):
        if id is not None and not isinstance(id, str) and isinstance(id, int) \
                and type(id) is not bool:
            id = int.__repr__(id)
        self._encoded = encode_event(data, event, id, retry, comment)
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.comment = comment

    def encode(self) -> bytes:
        """The event as wire bytes (UTF-8, ending with one blank line)."""
        return self._encoded

    def _fields(self):
        return (self.data, self.event, self.id, self.retry, self.comment)

    def __repr__(self):
        parts = []
        for name, value in zip(_FIELD_NAMES, self._fields()):
            if value is not None:
                parts.append(f"{name}={value!r}")
        return f"{_tname(self)}({', '.join(parts)})"

    def __eq__(self, other):
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        cdef ServerSentEvent o = <ServerSentEvent>other
        return self._encoded == o._encoded and self._fields() == o._fields()

    def __ne__(self, other):
        result = self.__eq__(other)
        if result is NotImplemented:
            return result
        return not result

    def __hash__(self):
        return hash(self._fields())

    def __reduce__(self):
        return (type(self), self._fields())
