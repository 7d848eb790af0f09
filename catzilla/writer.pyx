# Response serialisation: status lines, header blocks and writes to the socket.
#
# A response head is built in the server's reusable buffer. Small bodies are copied after it and
# the whole response leaves in one uv_try_write; a large body is passed as a second iovec that
# points into the body object itself (no copy). Whatever the kernel does not take at once goes
# through uv_write, with the Python objects it points into kept alive until the write callback.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdlib cimport malloc, free, realloc
from libc.string cimport memcpy
from libc.stdio cimport snprintf

cdef enum:
    COPY_BODY_LIMIT = 16384

cdef list _status_lines = [None] * 600


cdef bytes status_line(int code):
    cdef object line
    if code < 200 or code > 599:
        # 1xx are interim: as a final status the client would wait for the real one forever
        raise ValueError("invalid status code %r for a response (a final status is 200-599)"
                         % code)
    line = _status_lines[code]
    if line is None:
        line = ("HTTP/1.1 %d %s\r\n" % (code, _reason_phrase(code))).encode("latin-1")
        _status_lines[code] = line
    return <bytes>line


def _reason_phrase(int code):
    try:
        return _http_status(code).phrase
    except ValueError:
        return _EXTRA_REASONS.get(code, "")


from http import HTTPStatus as _http_status

_EXTRA_REASONS = {
    # Registered codes that Python's http.HTTPStatus may lack, depending on its version.
    103: "Early Hints",
    418: "I'm a Teapot",
    421: "Misdirected Request",
    425: "Too Early",
    451: "Unavailable For Legal Reasons",
}


def reason_phrase(code):
    """The standard reason phrase of an HTTP status code ('' when unregistered)."""
    return _reason_phrase(code)


cdef class _Buf:
    def __cinit__(self, Py_ssize_t cap=4096):
        self.data = <char*>malloc(cap)
        if self.data == NULL:
            raise MemoryError()
        self.cap = cap
        self.size = 0

    def __dealloc__(self):
        free(self.data)

    cdef int reserve(self, Py_ssize_t extra) except -1:
        cdef Py_ssize_t need = self.size + extra
        cdef Py_ssize_t cap = self.cap
        cdef char* p
        if need <= cap:
            return 0
        while cap < need:
            cap *= 2
        p = <char*>realloc(self.data, cap)
        if p == NULL:
            raise MemoryError()
        self.data = p
        self.cap = cap
        return 0

    cdef int put(self, const char* p, Py_ssize_t n) except -1:
        if self.size + n > self.cap:
            self.reserve(n)
        memcpy(self.data + self.size, p, n)
        self.size += n
        return 0

    cdef int put_bytes(self, bytes b) except -1:
        return self.put(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))


# flags returned by _put_head
cdef enum:
    HEAD_USER_CLOSE = 1
    HEAD_HAS_LENGTH = 2
    HEAD_HAS_TE = 4

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>

    /* RFC 9110 token characters, for header names. */
    static int catzilla_is_tchar(unsigned char c) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            return 1;
        switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~':
            return 1;
        }
        return 0;
    }
    static int catzilla_lower_eq(const char* a, Py_ssize_t n, const char* lower) {
        Py_ssize_t i;
        for (i = 0; i < n; i++) {
            char c = a[i];
            if (c >= 'A' && c <= 'Z') c += 32;
            if (c != lower[i]) return 0;
        }
        return lower[n] == 0;
    }
    /* The index of the first byte RFC 9110 section 5.5 forbids in a field value (a control
       other than HTAB: 0x00-0x08, 0x0a-0x1f, 0x7f), or -1. Eight bytes per step: a word is
       looked at byte by byte only when it holds a byte below 0x20 or a 0x7f. */
    static Py_ssize_t catzilla_bad_value_byte(const char* p, Py_ssize_t n) {
        const unsigned char* s = (const unsigned char*)p;
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        Py_ssize_t i = 0, j;
        uint64_t x, y;
        for (; i + 8 <= n; i += 8) {
            memcpy(&x, s + i, 8);
            y = x ^ (ones * 0x7f);
            if ((((x - ones * 0x20) & ~x) | ((y - ones) & ~y)) & highs) {
                for (j = i; j < i + 8; j++) {
                    if ((s[j] < 32 && s[j] != 9) || s[j] == 127) return j;
                }
            }
        }
        for (; i < n; i++) {
            if ((s[i] < 32 && s[i] != 9) || s[i] == 127) return i;
        }
        return -1;
    }
    static int catzilla_contains_close(const char* a, Py_ssize_t n) {
        Py_ssize_t i;
        for (i = 0; i + 5 <= n; i++) {
            if (catzilla_lower_eq(a + i, 5, "close")) return 1;
        }
        return 0;
    }
    """
    int catzilla_is_tchar(unsigned char c) nogil
    int catzilla_lower_eq(const char* a, Py_ssize_t n, const char* lower) nogil
    int catzilla_contains_close(const char* a, Py_ssize_t n) nogil
    Py_ssize_t catzilla_bad_value_byte(const char* p, Py_ssize_t n) nogil


cdef inline int _check_header(bytes name, bytes value) except -1:
    cdef const char* p = PyBytes_AS_STRING(name)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(name)
    cdef Py_ssize_t i
    cdef unsigned char c
    if n == 0:
        raise ValueError("empty response header name")
    for i in range(n):
        if not catzilla_is_tchar(<unsigned char>p[i]):
            raise ValueError("invalid character in response header name %r" % name)
    p = PyBytes_AS_STRING(value)
    # RFC 9110 section 5.5: VCHAR, obs-text, SP and HTAB only; no other control byte
    i = catzilla_bad_value_byte(p, PyBytes_GET_SIZE(value))
    if i >= 0:
        c = <unsigned char>p[i]
        if c == 13 or c == 10 or c == 0:
            raise ValueError("CR, LF or NUL in the value of response header %r" % name)
        raise ValueError("control character 0x%02x in the value of response header %r"
                         % (c, name))
    return 0


cdef int _put_head(bytes server_line, bytes date_line, _Buf buf, int status, list headers,
                   Py_ssize_t content_length, bint keep_alive, bint http10,
                   bint chunked) except -1:
    """Write status line and headers (with the blank line) into buf; return HEAD_* flags.

    content_length < 0 means: add no Content-Length. Our Connection header is decided after the
    user's headers are seen (a user 'Connection: close' is honoured; 'keep-alive' never overrides
    our decision to close).
    """
    cdef int flags = 0
    cdef bint has_server = False, has_date = False
    cdef bytes name, value
    cdef const char* np
    cdef Py_ssize_t nl
    cdef char num[32]
    cdef int k
    cdef Py_ssize_t length, user_length = -1
    buf.put_bytes(status_line(status))
    if headers is not None:
        for item in headers:
            name = <bytes?>(item[0])
            value = <bytes?>(item[1])
            _check_header(name, value)
            np = PyBytes_AS_STRING(name)
            nl = PyBytes_GET_SIZE(name)
            if nl == 10 and catzilla_lower_eq(np, 10, "connection"):
                if catzilla_contains_close(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value)):
                    flags |= HEAD_USER_CLOSE
                continue
            if nl == 14 and catzilla_lower_eq(np, 14, "content-length"):
                if status < 200 or status == 204:
                    continue   # never on a response without content (RFC 9110 8.6)
                # a client or proxy that read another of several values, or a value like
                # "+4" another way, would see another response boundary (RFC 9112 6.3)
                length = _length_value(value)
                if flags & HEAD_HAS_LENGTH:
                    if length != user_length:
                        raise ValueError("the response has differing Content-Length headers "
                                         "(%d and %d)" % (user_length, length))
                    continue   # the same value again: one line says it
                flags |= HEAD_HAS_LENGTH
                user_length = length
            elif nl == 17 and catzilla_lower_eq(np, 17, "transfer-encoding"):
                if http10 or status < 200 or status == 204:
                    # HTTP/1.0 has no chunked coding: the body is close-delimited; 1xx and
                    # 204 have no content to code (RFC 9112 6.1)
                    continue
                flags |= HEAD_HAS_TE
            elif nl == 6 and catzilla_lower_eq(np, 6, "server"):
                has_server = True
            elif nl == 4 and catzilla_lower_eq(np, 4, "date"):
                has_date = True
            buf.reserve(nl + PyBytes_GET_SIZE(value) + 4)
            buf.put(np, nl)
            buf.put(": ", 2)
            buf.put(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value))
            buf.put("\r\n", 2)
    if not has_server and server_line is not None:
        buf.put_bytes(server_line)
    if not has_date:
        buf.put_bytes(date_line)
    if content_length >= 0 and not (flags & (HEAD_HAS_LENGTH | HEAD_HAS_TE)):
        k = snprintf(num, sizeof(num), "Content-Length: %zd\r\n", content_length)
        buf.put(num, k)
    elif chunked and not (flags & (HEAD_HAS_LENGTH | HEAD_HAS_TE)):
        buf.put("Transfer-Encoding: chunked\r\n", 28)
    if not keep_alive or (flags & HEAD_USER_CLOSE):
        buf.put("Connection: close\r\n", 19)
    elif http10:
        buf.put("Connection: keep-alive\r\n", 24)
    buf.put("\r\n", 2)
    return flags


cdef enum:
    CHUNK_HEAD_MAX = 24


cdef inline int _chunk_head(char* out, Py_ssize_t n) noexcept nogil:
    """The chunk-size line of chunked transfer-encoding (hex size and CRLF) into out, which
    holds CHUNK_HEAD_MAX bytes; returns its length."""
    return snprintf(out, CHUNK_HEAD_MAX, "%zx\r\n", n)


cdef inline int _put_chunk_head(_Buf buf, Py_ssize_t n) except -1:
    cdef char hexbuf[CHUNK_HEAD_MAX]
    return buf.put(hexbuf, _chunk_head(hexbuf, n))


def serialise_head(int status, list headers, Py_ssize_t content_length=-1,
                   bint keep_alive=True, bint http10=False, bint chunked=False,
                   bytes server_line=b"Server: catzilla\r\n",
                   bytes date_line=b"Date: Thu, 01 Jan 2026 00:00:00 GMT\r\n"):
    """A response head exactly as the server writes it (for tests and micro-benchmarks)."""
    cdef _Buf buf = _Buf(1024)
    _put_head(server_line, date_line, buf, status, headers, content_length, keep_alive, http10,
              chunked)
    return PyBytes_FromStringAndSize(buf.data, buf.size)


def frame_chunks(list chunks, bint last=True):
    """Chunked transfer-encoding of byte chunks, as the stream writer frames them."""
    cdef _Buf buf = _Buf(4096)
    cdef bytes data
    for data in chunks:
        if PyBytes_GET_SIZE(data):
            _put_chunk_head(buf, PyBytes_GET_SIZE(data))
            buf.put_bytes(data)
            buf.put("\r\n", 2)
    if last:
        buf.put("0\r\n\r\n", 5)
    return PyBytes_FromStringAndSize(buf.data, buf.size)


cdef Py_ssize_t _length_value(bytes value) except -1:
    """A response Content-Length value: 1*DIGIT (RFC 9110 8.6), nothing else (no sign, OWS,
    list or "_" as Python's int() would take)."""
    cdef const char* p = PyBytes_AS_STRING(value)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(value)
    cdef Py_ssize_t i, v = 0
    cdef unsigned char c
    if n == 0 or n > 18:   # 18 digits fit a Py_ssize_t
        raise ValueError("invalid Content-Length header %r" % (value,))
    for i in range(n):
        c = <unsigned char>p[i]
        if not (48 <= c <= 57):   # '0' to '9'
            raise ValueError("invalid Content-Length header %r" % (value,))
        v = v * 10 + (c - 48)
    return v


cdef Py_ssize_t _content_length_of(list headers) except -2:
    """The length the Content-Length headers state (all must state the same), or -1."""
    cdef Py_ssize_t n, found = -1
    for name, value in headers:
        if (<bytes?>name).lower() == b"content-length":
            n = _length_value(<bytes?>value)
            if found >= 0 and n != found:
                raise ValueError("the response has differing Content-Length headers "
                                 "(%d and %d)" % (found, n))
            found = n
    return found


cdef inline bint _status_has_body(int status):
    return not (status < 200 or status == 204 or status == 304)
