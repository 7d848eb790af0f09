# The HTTP/1.1 protocol on a transport: the fast path for plain heads and llhttp for the rest,
# limits and rejections, keep-alive and pipelining. It produces Requests for dispatch.pyx and
# writes whole responses; streams are started by dispatch.pyx.

import json as _json
from collections import deque as _deque

from httptools import HttpRequestParser as _HttpRequestParser
from httptools import (
    HttpParserCallbackError as _ParserCallbackError,
    HttpParserError as _ParserError,
    HttpParserInvalidMethodError as _ParserInvalidMethodError,
    HttpParserUpgrade as _ParserUpgrade,
)

from cpython.buffer cimport PyBUF_READ
from cpython.memoryview cimport PyMemoryView_FromMemory

cdef extern from "<string.h>" nogil:
    const void* memmem(const void* haystack, size_t hn, const void* needle, size_t nn)
    const void* memchr(const void* s, int c, size_t n)
    int memcmp(const void* a, const void* b, size_t n)

# The plain-request fast path accepts these bytes in a request target (the path and query
# characters of RFC 3986) and in a header value (visible ASCII, space, tab). Anything else
# goes through llhttp, which accepts or rejects it as always.
cdef unsigned char _TARGET_OK[256]
cdef unsigned char _VALUE_OK[256]
# reg-name characters of a Host (RFC 3986 3.2.2: unreserved, sub-delims; '%' is checked apart)
cdef unsigned char _HOST_OK[256]
# each byte's class in a request line, and the bytes of a token, for _scan_line
cdef unsigned char _LINE_CLASS[256]
cdef unsigned char _TCHAR[256]
cdef enum:
    LC_VISIBLE = 0   # VCHAR
    LC_OTHER = 1     # NUL and the other controls, DEL, obs-text: llhttp's to judge
    LC_SP = 2
    LC_WS = 3        # HTAB, VT, FF: whitespace a recipient may split a request line on
    LC_CR = 4
    LC_LF = 5


cdef void _init_fast_tables():
    cdef int c
    for c in range(256):
        _TARGET_OK[c] = (b'a' <= c <= b'z' or b'A' <= c <= b'Z' or b'0' <= c <= b'9'
                         or c in b"-._~!$&'()*+,;=:@/?%")
        _VALUE_OK[c] = 0x20 <= c <= 0x7e or c == 9
        _HOST_OK[c] = (b'a' <= c <= b'z' or b'A' <= c <= b'Z' or b'0' <= c <= b'9'
                       or c in b"-._~!$&'()*+,;=")
        _LINE_CLASS[c] = (LC_SP if c == 32 else LC_WS if c in b"\t\x0b\x0c" else LC_CR if c == 13
                          else LC_LF if c == 10 else LC_VISIBLE if 0x21 <= c <= 0x7e else LC_OTHER)
        _TCHAR[c] = catzilla_is_tchar(c)


_init_fast_tables()


cdef inline bint _is_hex(unsigned char c) noexcept nogil:
    return b'0' <= c <= b'9' or b'a' <= c <= b'f' or b'A' <= c <= b'F'


cdef bint _valid_host(const char* p, Py_ssize_t n) noexcept nogil:
    """A Host value: uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2), or empty."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c
    if n > 0 and p[0] == b'[':
        # IP-literal: IPv6 (with an RFC 6874 zone) or IPvFuture, loosely
        i = 1
        while i < n and p[i] != b']':
            c = p[i]
            if not (_HOST_OK[c] or c == b':' or c == b'%'):
                return False
            i += 1
        if i == n or i == 1:
            return False
        i += 1
    else:
        while i < n and p[i] != b':':
            c = p[i]
            if c == b'%':
                if i + 2 >= n or not _is_hex(p[i + 1]) or not _is_hex(p[i + 2]):
                    return False
                i += 2
            elif not _HOST_OK[c]:
                return False
            i += 1
    if i < n:
        if p[i] != b':':
            return False
        i += 1
        while i < n:
            if not (b'0' <= p[i] <= b'9'):
                return False
            i += 1
    return True


cdef dict _METHODS = {m.encode(): m for m in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")}
cdef enum:
    # raw bytes a head in several reads may have beyond max_header_size: its request line's
    # method and version, line ends and whitespace, which the fields' count does not hold
    HEAD_RAW_SLACK = 1024
    # bytes an unfinished request line may have beyond max_url_size while it is kept to judge
    # its method (400 or 501): the method and the version
    LINE_SLACK = 64

# Methods llhttp knows but HTTP servers rarely implement; answered with 501 unless routed.
cdef frozenset _STANDARD_METHODS = frozenset(_METHODS.values())

cdef bytes _JSON_TYPE = b"application/json"


class _Reject(Exception):
    """Raised inside a parser callback to abort parsing with an error status."""


cdef class Connection(Transport):
    """An HTTP/1.1 connection: the protocol on its transport (the public registry object)."""

    def __cinit__(self):
        self.pending = _deque()
        self.expect_length = -1

    cdef int _start(self) except -1:
        self.parser = _new_parser(self)
        return Transport._start(self)

    # -- the transport's hooks --------------------------------------------------------------

    cdef void _data_received(self, const char* data, Py_ssize_t n):
        if not self.input_done:
            self._feed(data, n)

    cdef void _eof_received(self):
        if self.busy:
            # A client gone mid-response cancels its handler or stream.
            self._close()
        elif uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle) > 0:
            self._graceful_close()  # let the queued response reach a half-closed client
        else:
            self._close()

    cdef void _write_queued(self):
        if (self.stream is None and uv.catzilla_write_queue_size(
                <uv.uv_stream_t*>self.handle) > <size_t>self.server.write_high_water):
            # Answering more requests would only add to the backlog: hold off reading.
            # Not while a stream answers: requests that arrive meanwhile just wait in
            # `pending` (16 at most), and reading is how the client's FIN or reset is
            # noticed (a stream's queue may never drain to the low-water mark).
            self._pause_reading()

    cdef void _write_done(self):
        if self.stream is not None:
            self.stream._update_backlog()
            # chunks queued while the socket was backed up (a hub's events, a producer
            # thread's chunks pushed without a wake-up) go out once it has drained
            if (self.stream is not None and self.stream.chunks
                    and self.stream.wqs <= self.stream.low_water):
                self.stream._flush()
        if (self.read_paused and not self.busy and len(self.pending) < 16
                and uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle)
                <= <size_t>self.server.write_low_water):
            self._resume_reading()

    cdef void _closing(self):
        self.pending.clear()

    cdef bint _connection_lost(self):
        self.pending.clear()
        if self.task is not None:
            task = self.task
            self.task = None
            task.cancel()
        if self.stream is not None:
            self.stream._cancel()
            return self.stream.holds_fd   # a sendfile worker still uses the fd
        return False

    cdef void _released(self):
        self.parser = None
        self.cur = None
        self.busy_request = None
        self.stream = None

    cdef bint _send_stalled(self, uint64_t now, uint64_t limit):
        """Also for a file a sendfile worker is sending (libuv's queue is empty then)."""
        cdef _Stream s = self.stream
        cdef size_t unsent
        if s is not None and s.kind == "file" and not s.finished:
            unsent = self._unsent()
            if s.sent != s.seen_sent or unsent < self.seen_queue:
                s.seen_sent = s.sent
                s.last_progress = now
            self.seen_queue = unsent
            return now - s.last_progress > limit
        return Transport._send_stalled(self, now, limit)

    # -- reading --------------------------------------------------------------------------

    cdef void _feed(self, const char* data, Py_ssize_t n):
        """Hand a read to its readers in turn: the fast path between messages, llhttp, and
        the body of an Upgrade request we ignore. A loop, not recursion: a read can hold many
        requests that each hand the rest on."""
        cdef Py_ssize_t used
        if self.method_probe is not None:
            self._probe_method(data, n)
            return
        while n > 0:
            if self.upgrade_req is not None:
                used = self._upgrade_body(data, n)
            else:
                used = -1
                if (not self.in_message and not self.close_after_response
                        and not self.input_done and self.server.fast_heads
                        and self.line.state == RL_BEFORE):   # (not after a bare CR)
                    # Between messages: a complete plain request is taken without llhttp.
                    used = self._fast_request(data, n)
                if used < 0:
                    used = self._feed_parser(data, n)
            if used <= 0:
                return
            data += used
            n -= used
            if self.closed or self.lingering or self.close_after_response or self.input_done:
                return   # what follows a "Connection: close" request is not answered

    cdef void _probe_method(self, const char* data, Py_ssize_t n):
        """The rest of a request line whose method llhttp refused before the line was whole:
        501 once it proves a well-formed line with a method we do not implement, else 400
        (also for a line longer than max_url_size allows). llhttp is not fed again."""
        cdef bytes probe = self.method_probe + PyBytes_FromStringAndSize(data, n)
        cdef int status = _invalid_method_status(PyBytes_AS_STRING(probe),
                                                 PyBytes_GET_SIZE(probe))
        if status == 0 and PyBytes_GET_SIZE(probe) <= self.server.max_url_size + LINE_SLACK:
            self.method_probe = probe
            return
        self.method_probe = None
        self._reject(status or 400, None)

    cdef Py_ssize_t _fast_request(self, const char* p, Py_ssize_t n):
        """Take one complete request head at p if it is plain: GET or HEAD, origin-form
        target, HTTP/1.1, well-formed headers within the limits and none that asks for a body,
        an upgrade or an expectation. Dispatches it and returns the bytes it used, or -1 to
        leave the bytes to llhttp (which gives any error the usual answer)."""
        cdef Server srv = self.server
        cdef const char* end
        cdef const char* q
        cdef const char* t0
        cdef const char* n0
        cdef const char* v0
        cdef const char* mark
        cdef Py_ssize_t tlen, nlen, vlen, size
        cdef bint keep = True
        cdef bint host = False
        cdef str method
        cdef list headers
        cdef Request req
        if n >= 5 and memcmp(p, b"GET /", 5) == 0:
            method = "GET"
            q = p + 4
        elif n >= 6 and memcmp(p, b"HEAD /", 6) == 0:
            method = "HEAD"
            q = p + 5
        else:
            return -1   # before looking for the head's end: a POST's body is not scanned
        end = <const char*>memmem(p, n, b"\r\n\r\n", 4)
        if end == NULL or end + 4 - p > srv.max_header_size + HEAD_RAW_SLACK:
            return -1   # (llhttp answers a head too big in raw bytes: on_headers_complete)
        t0 = q
        while _TARGET_OK[<unsigned char>q[0]]:   # stops at the CR of end at the latest
            q += 1
        tlen = q - t0
        if q[0] != b' ' or end + 4 - q < 11 or memcmp(q + 1, b"HTTP/1.1\r\n", 10) != 0:
            return -1
        size = tlen
        if size > srv.max_url_size:
            return -1
        q += 11
        headers = []
        while q < end:
            n0 = q
            while catzilla_is_tchar(<unsigned char>q[0]):
                q += 1
            nlen = q - n0
            if nlen == 0 or q[0] != b':':
                return -1
            q += 1
            if q[0] == b' ':
                q += 1
            v0 = q
            while _VALUE_OK[<unsigned char>q[0]]:
                q += 1
            vlen = q - v0
            if (q[0] != b'\r' or q[1] != b'\n' or vlen == 0 or v0[0] == b' '
                    or v0[0] == b'\t' or v0[vlen - 1] == b' ' or v0[vlen - 1] == b'\t'):
                return -1
            q += 2
            if nlen == 10 and catzilla_lower_eq(n0, 10, "connection"):
                if catzilla_lower_eq(v0, vlen, "close"):
                    keep = False
                elif not catzilla_lower_eq(v0, vlen, "keep-alive"):
                    return -1
            elif nlen == 4 and catzilla_lower_eq(n0, 4, "host"):
                if host or not _valid_host(v0, vlen):
                    return -1   # llhttp's path answers 400
                host = True
            elif ((nlen == 14 and catzilla_lower_eq(n0, 14, "content-length"))
                    or (nlen == 17 and catzilla_lower_eq(n0, 17, "transfer-encoding"))
                    or (nlen == 6 and catzilla_lower_eq(n0, 6, "expect"))
                    or (nlen == 7 and catzilla_lower_eq(n0, 7, "upgrade"))
                    # llhttp reads it as Connection: its answer, whatever the read split
                    or (nlen == 16 and catzilla_lower_eq(n0, 16, "proxy-connection"))):
                return -1
            size += nlen + vlen + 4
            if size > srv.max_header_size or len(headers) >= srv.max_headers:
                return -1
            headers.append((PyBytes_FromStringAndSize(n0, nlen),
                            PyBytes_FromStringAndSize(v0, vlen)))
        if q != end + 2 or not host:
            return -1
        req = Request.__new__(Request)
        req.conn = self
        mark = <const char*>memchr(t0, b'?', tlen)
        if mark == NULL:
            req.raw_path = PyBytes_FromStringAndSize(t0, tlen)
            req.query_string = b""
        else:
            req.raw_path = PyBytes_FromStringAndSize(t0, mark - t0)
            req.query_string = PyBytes_FromStringAndSize(mark + 1, t0 + tlen - mark - 1)
        req.method = method
        req.raw_headers = headers
        req.http_version = "1.1"
        req.keep_alive = keep
        req._body = b""
        if not keep:
            # nothing after it is answered; the connection closes after *its* response,
            # not after the response to a request before it (RFC 9112 9.6)
            self.input_done = True
        self._take_request(req)
        return end + 4 - p

    cdef void _take_request(self, Request req):
        """A whole request has arrived: answer it now, or after the ones before it."""
        if self.busy or self.pending:
            self.pending.append(req)
            if len(self.pending) >= 16 or self.stream is not None:
                # Behind a stream (which may never end) nothing more is read: a request and
                # its body would wait in memory for as long as the stream runs. The client's
                # FIN or reset is then noticed by the ticker (_hung_up).
                self._pause_reading()
        else:
            _dispatch(self, req)

    cdef Py_ssize_t _feed_parser(self, const char* data, Py_ssize_t n):
        """Feed llhttp; returns the bytes it took (n but after an Upgrade request, where
        the rest is for the caller to hand on)."""
        cdef Py_ssize_t used
        cdef bint was_in_headers = self.in_message and not self.headers_done
        cdef Request started_with = self.cur
        cdef bint was_in_body = self.in_message and self.headers_done
        cdef Py_ssize_t body_before = self.cur_body_size
        cdef int chunk_before = self.chunk_state
        cdef uint64_t begun_before = self.messages_begun
        cdef int status
        cdef object mv = PyMemoryView_FromMemory(<char*>data, n, PyBUF_READ)
        cdef int eol
        cdef Py_ssize_t skip
        cdef ChunkScan chunks
        # The request line llhttp reads next is read ahead of it (_scan_line): from the read's
        # beginning here, between requests or in a line that began in an earlier read; after a
        # request that ends in the read, from where it ends (on_message_complete).
        if not self.in_message and self.line.state == RL_LOST:
            self.line.state = RL_BEFORE   # (a read that begins between requests: found)
        if self.line.state != RL_DONE and self.line.state != RL_LOST and _scan_line(
                &self.line, data, n, self.server.max_url_size) < 0:
            self._reject_as(400, _BAD_LINE, self.line.flags & RL_HEAD)
            return n
        # what the callbacks need to measure a head that ends in this read, and to find where
        # a request that ends in it ends
        self.feed_ptr = data
        self.feed_n = n
        self.feed_cur = started_with if was_in_headers else None
        self.feed_eol = self.head_eol if was_in_headers else -1
        self.feed_line = -1 if self.in_message else _skip_empty_lines(data, n)
        self.feed_body = 0 if was_in_body else -1
        self.feed_body_before = body_before
        self.feed_chunks_go_on = was_in_body
        try:
            self.parser.feed_data(mv)
        except _ParserUpgrade as exc:
            # We do not upgrade (CONNECT was refused before), so the request is served as
            # HTTP/1.1 and the connection goes on in HTTP/1.1 (RFC 9110 7.8), as for any
            # request: llhttp stops after it, so a new parser reads what follows; with a
            # body, that body first (_upgrade_body: llhttp left it unread).
            self.parser = _new_parser(self)
            used = exc.args[0] if exc.args else n
            return used if 0 < used <= n else n
        except _ParserCallbackError:
            if self.reject_status > 0:
                self._reject(self.reject_status, self.reject_detail)
            elif self.reject_status == 0:
                _report_error(RuntimeError("parser callback failed"))
                self._close()
            return n
        except _ParserInvalidMethodError:
            # 501 or 400 from the failing request's own line (its end may come in later
            # reads): it began in this read, where the request before it ended if there was
            # one (feed_line), or in earlier reads (line_start)
            line = None
            if self.messages_begun > begun_before and self.feed_line >= 0:
                line = PyBytes_FromStringAndSize(data + self.feed_line, n - self.feed_line)
            elif was_in_headers and self.cur is started_with and self.line_start is not None:
                line = self.line_start + PyBytes_FromStringAndSize(data, n)   # a line in pieces
            self.line_start = None
            if line is None:
                self._reject(400, None)
                return n
            status = _invalid_method_status(PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))
            if status == 0:
                # the line goes on in a later read: judged once it has come (_probe_method)
                self.method_probe = line
                return n
            self._reject(status, None)
            return n
        except _ParserError as exc:
            if self.in_message and not self.cur_head:
                # (llhttp may fail on the target before it tells us of it: on_url)
                self.cur_head = self.parser.get_method() == b"HEAD"
            self._reject(400, "Bad Request: %s" % (exc,))
            return n
        finally:
            mv.release()
            self.feed_ptr = NULL
            self.feed_cur = None
        if self.in_message and not self.headers_done and not self.closed:
            # Bound what httptools buffers for a head that spans reads: the callbacks count
            # only whole fields, so also count the raw bytes of the reads the head came in
            # (not both added up: a 24 KB head in three reads is not 48 KB). The raw count
            # also holds the request line's method and version, line ends and optional
            # whitespace, which the fields' count leaves out: HEAD_RAW_SLACK more is allowed
            # for those. A head that ends in a read is measured the same way, to its empty
            # line (on_headers_complete; the fast path), so that it gets the same answer in
            # one read or in several. Empty lines before a request are not counted.
            if was_in_headers and self.cur is started_with:
                self.head_raw += n
                if self.head_eol >= 0:
                    eol = self.head_eol
                    _blank_line_end(data, n, &eol)
                    self.head_eol = eol
                if self.line_start is not None:
                    if memchr(data, 10, n) == NULL and PyBytes_GET_SIZE(
                            self.line_start) + n <= self.server.max_url_size + LINE_SLACK:
                        self.line_start += PyBytes_FromStringAndSize(data, n)
                    else:
                        self.line_start = None
            elif self.messages_begun > begun_before and self.feed_line >= 0:
                skip = self.feed_line   # it began in this read, there (its line's method)
                self.head_raw = n - skip
                eol = 0
                _blank_line_end(data + skip, n - skip, &eol)
                self.head_eol = eol
                # an unfinished request line, kept in case llhttp refuses its method later
                self.line_start = (PyBytes_FromStringAndSize(data + skip, n - skip)
                                   if memchr(data + skip, 10, n - skip) == NULL else None)
            if (self.head_raw > self.server.max_header_size + HEAD_RAW_SLACK
                    or self.cur_header_bytes > self.server.max_header_size):
                self._reject(431, None)
        elif was_in_body and self.in_message and self.cur is started_with and not self.closed:
            # A read that goes on after the last chunk's size line without body bytes is the
            # trailer section, whose unfinished field httptools buffers (re-joining it on
            # every read): bound it like a head in pieces. (A chunk's size line and
            # extensions are not buffered: they are bounded by time, as 408, whatever the
            # reads, the same as in one read.)
            if self.cur_body_size != body_before or chunk_before != 1 or self.chunk_state != 1:
                self.tail_bytes = 0
            else:
                self.tail_bytes += n
                if self.tail_bytes > self.server.max_header_size + HEAD_RAW_SLACK:
                    self._reject(431, None)
        if self.line_start is not None and (self.headers_done or not self.in_message):
            self.line_start = None
        if (self.in_message and self.headers_done and self.cur_te is not None
                and self.upgrade_req is None and not self.closed):
            # a chunked body that goes on in the next read: its framing so far
            if self.feed_body < 0:
                self.chunks.state = CK_LOST
            else:
                if not self.feed_chunks_go_on:
                    _chunks_begin(&self.chunks)
                chunks = self.chunks
                if _chunked_end(&chunks, data + self.feed_body, n - self.feed_body) < 0:
                    self.chunks = chunks
                else:
                    self.chunks.state = CK_LOST   # (llhttp has not read it to its end)
        return n

    # httptools callbacks (called inside feed_data) ------------------------------------------

    def on_message_begin(self):
        if self.lingering or self.closed:
            self._stop_parsing()
        if self.line.state == RL_LOST:
            # behind a request whose end in the read is not known (never so far): its line
            # cannot be read ahead of llhttp, and is not taken unread
            self._abort(400, _BAD_LINE)
        self.in_message = True
        self.messages_begun += 1
        self.head_raw = 0
        self.headers_done = False
        self.cur = Request.__new__(Request)
        self.cur.conn = self
        self.cur_headers = []
        self.cur_trailers = None
        self.cur_url_parts = []
        self.cur_body = None
        self.cur_body_size = 0
        self.cur_header_bytes = 0
        self.tail_bytes = 0
        self.chunk_state = 0
        self.head_eol = -1   # (unknown until _feed_parser scans the head's reads)
        self.expect_length = -1
        self.cur_te = None
        self.cur_host = None
        self.cur_head = False
        self.expect_continue = False
        self.message_started = uv.uv_now(self.server.uvloop)

    def on_url(self, bytes url):
        if not self.cur_url_parts:
            # known from here on: a HEAD we reject gets no body either (RFC 9110 9.3.2)
            self.cur_head = self.parser.get_method() == b"HEAD"
        self.cur_url_parts.append(url)
        self.cur_header_bytes += len(url)
        if self.cur_header_bytes > self.server.max_url_size:
            self._abort(414, None)

    def on_header(self, bytes name, bytes value):
        cdef Py_ssize_t nl = len(name)
        if self.headers_done:
            # A trailer field (after a chunked body): never merged into the headers, where it
            # would override what a proxy checked (RFC 9112 7.1.2), and has no framing meaning.
            if self.cur_trailers is None:
                self.cur_trailers = []
            self.cur_header_bytes += nl + len(value) + 4   # the trailer section's own size
            if (self.cur_header_bytes > self.server.max_header_size
                    or len(self.cur_trailers) >= self.server.max_headers):
                self._abort(431, None)
            self.cur_trailers.append((name, value))
            return
        self.cur_header_bytes += nl + len(value) + 4
        if self.cur_header_bytes > self.server.max_header_size:
            self._abort(431, None)
        if len(self.cur_headers) >= self.server.max_headers:
            self._abort(431, "Too many request headers")
        if nl == 14 and name.lower() == b"content-length":
            try:
                self.expect_length = int(value)
            except ValueError:
                self._abort(400, "Invalid Content-Length")
        elif nl == 4 and name.lower() == b"host":
            # RFC 9112 3.2: one valid Host, else 400
            if self.cur_host is not None:
                self._abort(400, "More than one Host header")
            if not _valid_host(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value)):
                self._abort(400, "Invalid Host header")
            self.cur_host = value
        elif nl == 17 and name.lower() == b"transfer-encoding":
            self.cur_te = value if self.cur_te is None else self.cur_te + b"," + value
        elif nl == 6 and name.lower() == b"expect":
            if value.lower() == b"100-continue":
                self.expect_continue = True
            else:
                self._abort(417, None)
        self.cur_headers.append((name, value))

    def on_headers_complete(self):
        cdef Request req = self.cur
        cdef bytes method_b = self.parser.get_method()
        cdef bytes target
        cdef Py_ssize_t q
        cdef str method = _METHODS.get(method_b)
        cdef str version = self.parser.get_http_version()
        cdef Py_ssize_t bound = self.server.max_header_size + HEAD_RAW_SLACK
        if (self.feed_ptr != NULL and self.head_raw + self.feed_n > bound
                and _head_size(self) > bound):
            # (a head within a read no bigger than the bound needs no measuring)
            self._abort(431, None)   # (see _feed_parser: the same bound as a head in pieces)
        if self.feed_ptr != NULL:
            # where the body begins in the read: where the request ends is found from there
            self.feed_body = _head_end_here(self)
            self.feed_body_before = 0
            self.feed_chunks_go_on = False
        self.headers_done = True
        self.cur_header_bytes = 0   # from here on it counts the trailer section
        if version != "1.1" and version != "1.0":
            if version[0] != "1":
                self._abort(505, None)   # HTTP/0.9 with a head, HTTP/2.0 and up (RFC 9110 15.6.6)
            version = "1.1"   # 1.2 to 1.9 read as the highest 1.x we implement (RFC 9110 2.5)
        if self.cur_host is None and version == "1.1":
            self._abort(400, "Missing Host header")
        if method is None:
            method = method_b.decode("latin-1")
            if method not in self.server.app_methods:
                self._abort(501, None)
        if len(self.cur_url_parts) == 1:
            target = self.cur_url_parts[0]
        else:
            target = b"".join(self.cur_url_parts)
        self.cur_url_parts = None
        if method == "CONNECT":
            # whatever the target's form (RFC 9112 3.2.3 allows only the authority form)
            self._abort(501, "CONNECT is not supported (this is not a proxy)")
        if target[:1] != b"/":
            parts = _origin_form(method, target)
            if parts is None:
                self._abort(400, "Invalid request target")
            # RFC 9112 3.2.2: the target's host, not the Host header, names the origin
            req._authority, target = parts
        q = target.find(b"?")
        if q >= 0:
            req.raw_path = target[:q]
            req.query_string = target[q + 1:]
        else:
            req.raw_path = target
            req.query_string = b""
        req.method = method
        req.raw_headers = self.cur_headers
        req.http_version = version
        if self.cur_te is not None and req.http_version == "1.0":
            # RFC 9112 6.1: the framing is faulty (an HTTP/1.0 hop may ignore TE).
            self._abort(400, "Transfer-Encoding in an HTTP/1.0 request")
        if self.cur_te is not None and _unknown_coding_before_chunked(self.cur_te):
            # llhttp decodes only the final chunked; the handler would get still-coded bytes
            self._abort(501, "Unsupported transfer coding")
        req.keep_alive = self.parser.should_keep_alive()
        if self.expect_length > self.server.max_body_size:
            self._abort(413, None)
        if self.expect_continue and req.http_version == "1.1":
            if self.busy or self.pending:
                self.continue_owed = True   # sent when the responses before it are out
            else:
                self._write_interim(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_chunk_header(self):
        self.chunk_state = 1   # (the last chunk's trailer section follows its size line)

    def on_chunk_complete(self):
        self.chunk_state = 0

    def on_body(self, bytes body):
        self.chunk_state = 2
        self.cur_body_size += len(body)
        if self.cur_body_size > self.server.max_body_size:
            self._abort(413, None)
        if self.cur_body is None:
            self.cur_body = [body]
        else:
            self.cur_body.append(body)

    def on_message_complete(self):
        cdef Request req = self.cur
        cdef bint upgrade = self.parser.should_upgrade()
        cdef Py_ssize_t end = -1
        self.line.state = RL_BEFORE   # the next request's line, read from where this one ends
        self.line.flags = 0
        if upgrade and req.method != "CONNECT" and (
                self.expect_length > 0 or _has_header(req.raw_headers, b"transfer-encoding")):
            if self.expect_length <= 0:
                self._abort(400, "Upgrade with a chunked request body is not supported")
            self.upgrade_req = req          # its body follows; in_message stays set
            self.upgrade_left = self.expect_length
            self.upgrade_body = []
            self.cur = None
            return
        if self.feed_ptr != NULL and not upgrade:
            end = self._message_end()
        self.in_message = False
        self.continue_owed = False   # the body came without it
        self.cur = None
        self.cur_head = False
        if self.cur_body is None:
            req._body = b""
        elif len(self.cur_body) == 1:
            req._body = self.cur_body[0]
        else:
            req._body = b"".join(self.cur_body)
        self.cur_body = None
        req.raw_trailers = self.cur_trailers
        self.cur_trailers = None
        if not req.keep_alive:
            # nothing after it is read (llhttp takes nothing after it either); not before
            # now: its body may come in later reads
            self.input_done = True
        self._take_request(req)
        if self.lingering or self.closed:
            self._stop_parsing()
        if self.feed_ptr != NULL and not upgrade and not self.input_done:
            # (after an upgrade llhttp stops, and _feed hands on the rest from where it did)
            self._read_next_line(end)

    cdef Py_ssize_t _message_end(self):
        """Where in the read being fed the request llhttp is reading to its end ends: its body's
        beginning there (on_headers_complete; the read's, in its body since an earlier read) and
        its length or chunked framing after it. -1 when not known."""
        cdef ChunkScan chunks
        cdef Py_ssize_t r
        if self.feed_body < 0:
            return -1
        if self.cur_te is None:
            return self.feed_body + self.cur_body_size - self.feed_body_before
        if self.feed_chunks_go_on:
            chunks = self.chunks
        else:
            _chunks_begin(&chunks)
        r = _chunked_end(&chunks, self.feed_ptr + self.feed_body, self.feed_n - self.feed_body)
        return self.feed_body + r if r >= 0 else -1

    cdef _read_next_line(self, Py_ssize_t end):
        """Read the request line after a request that ends at `end` in the read being fed (and the
        empty lines before it) ahead of llhttp, which goes on from there: a 400 for a line llhttp
        would take but _scan_line refuses."""
        self.feed_body = -1
        if end < 0 or end > self.feed_n:
            self.line.state = RL_LOST
            self.feed_line = -1
            return
        if _scan_line(&self.line, self.feed_ptr + end, self.feed_n - end,
                      self.server.max_url_size) < 0:
            self.cur_head = self.line.flags & RL_HEAD
            self._abort(400, _BAD_LINE)
        self.feed_line = end + _skip_empty_lines(self.feed_ptr + end, self.feed_n - end)

    cdef Py_ssize_t _upgrade_body(self, const char* data, Py_ssize_t n):
        """Take the body of upgrade_req from data; returns the bytes taken."""
        cdef Py_ssize_t take = n if n < self.upgrade_left else self.upgrade_left
        cdef Request req
        if take > 0:
            self.upgrade_body.append(PyBytes_FromStringAndSize(data, take))
            self.upgrade_left -= take
            self.cur_body_size += take   # progress, for the body-rate timeout
        if self.upgrade_left > 0:
            return take
        req = self.upgrade_req
        req._body = b"".join(self.upgrade_body)
        self.upgrade_req = None
        self.upgrade_body = None
        self.in_message = False
        self.continue_owed = False
        self.cur_head = False
        if not req.keep_alive:
            self.input_done = True
        self._take_request(req)
        return take

    cdef _abort(self, int status, str detail):
        self.reject_status = status
        self.reject_detail = detail
        raise _Reject(status)

    cdef _stop_parsing(self):
        self.reject_status = -1
        raise _Reject(0)

    cdef int _write_interim(self, bytes data) except -1:
        cdef uv.uv_buf_t b
        cdef PyObject* owner = <PyObject*>data
        b.base = PyBytes_AS_STRING(data)
        b.len = PyBytes_GET_SIZE(data)
        return self._write(&b, &owner, 1)

    def _task_done(self, task):
        _handler_done(self, task)

    cdef void _reject(self, int status, str detail):
        """Answer a request we could not parse or accept, then close the connection."""
        self._reject_as(status, detail, self.cur_head)

    cdef void _reject_as(self, int status, str detail, bint head_only):
        """_reject, for a HEAD request (head_only: no body) or not."""
        cdef bytes body
        self.in_message = False
        self.cur_head = False
        if self.closed or self.lingering:
            return
        if self.busy or self.pending:
            # Requests before it are still being answered: they are, in order, then the 4xx.
            self.input_done = True
            self.continue_owed = False
            self.pending.append((status, detail, head_only))
            if self.stream is None:
                # (while a stream answers, reading goes on so that the client's FIN or reset
                # is noticed; what it sends is discarded: input_done)
                self._pause_reading()
            return
        self.close_after_response = True
        if detail is None:
            detail = _reason_phrase(status)
        body = _json.dumps({"detail": detail}, separators=(",", ":")).encode()
        try:
            self._write_simple(status, body, [(b"Content-Type", _JSON_TYPE)], head_only, False,
                               False)
        except BaseException as exc:
            _report_error(exc)
        self._graceful_close()

    @property
    def path(self):
        """The path of the request being (or last) served on this connection."""
        return _ds.unquote_path(self.last_path) if self.last_path is not None else None

    @property
    def stream_kind(self):
        """'sync', 'async', 'file' or 'hub' while a streaming response runs, else None."""
        return self.stream.kind if self.stream is not None else None

    cdef int _write_response(self, Request req, object response) except -1:
        body = response.body
        if type(body) is not bytes:
            if not isinstance(body, (bytes, bytearray, memoryview)):
                # (bytes(12) would be twelve NULs)
                raise TypeError("a response body must be bytes, bytearray or memoryview, got %s"
                                % type(body).__name__)
            body = bytes(body)
        return self._write_simple(
            response.status_code, body, response.raw_headers, req.method == "HEAD",
            req.keep_alive and not self.close_after_response and not self.server.draining,
            req.http_version == "1.0")

    cdef int _write_simple(self, int status, bytes body, list headers, bint head_only,
                           bint keep_alive, bint http10) except -1:
        cdef Server srv = self.server
        cdef _Buf buf = srv.buf
        cdef uv.uv_buf_t bufs[2]
        cdef PyObject* owners[2]
        cdef int nbufs = 1
        cdef int flags
        cdef bint has_body = _status_has_body(status)
        cdef Py_ssize_t blen = PyBytes_GET_SIZE(body)
        buf.size = 0
        flags = _put_head(srv.server_line, srv.date_line, buf, status, headers,
                          blen if has_body else -1, keep_alive, http10, False)
        # (HEAD: checked too when the handler built the body, so HEAD and GET agree)
        if (flags & (HEAD_HAS_LENGTH | HEAD_HAS_TE)) and has_body and (
                not head_only or blen > 0):
            body = _frame_user_body(headers, body, flags)
            blen = PyBytes_GET_SIZE(body)
        if not keep_alive or (flags & HEAD_USER_CLOSE):
            self.close_after_response = True
        owners[0] = NULL
        owners[1] = NULL
        if has_body and not head_only and blen > 0:
            if blen <= COPY_BODY_LIMIT:
                buf.put(PyBytes_AS_STRING(body), blen)
            else:
                bufs[1].base = PyBytes_AS_STRING(body)
                bufs[1].len = blen
                owners[1] = <PyObject*>body
                nbufs = 2
        bufs[0].base = buf.data
        bufs[0].len = buf.size
        return self._write(bufs, owners, nbufs)

    cdef void _response_done(self):
        self.busy = False
        self.busy_request = None
        self.idle_since = uv.uv_now(self.server.uvloop)
        if self.closed or self.lingering:
            return
        if self.close_after_response or self.server.draining or self.eof:
            self._graceful_close()
            return
        self._drain_pending()

    cdef void _drain_pending(self):
        while self.pending and not self.busy and not self.closed and not self.lingering:
            item = self.pending.popleft()
            if type(item) is tuple:   # a request that could not be parsed: its 4xx, and close
                self._reject_as(item[0], item[1], item[2])
                return
            _dispatch(self, <Request>item)
        if self.continue_owed and not self.busy and not self.closed and not self.lingering:
            self.continue_owed = False
            # the client sends the body once it has the 100: its time starts now
            self.message_started = self.last_activity = uv.uv_now(self.server.uvloop)
            try:
                self._write_interim(b"HTTP/1.1 100 Continue\r\n\r\n")
            except BaseException as exc:
                _report_error(exc)
                self._close()
                return
        if (self.read_paused and not self.busy and not self.closed and not self.lingering
                and len(self.pending) < 16
                and uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle)
                <= <size_t>self.server.write_low_water):
            self._resume_reading()

    cdef bint _idle(self):
        return (not self.busy and not self.in_message and not self.pending and not self.lingering
                and uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle) == 0)

    cdef bint _in_flight(self):
        """Whether a response is unfinished: a handler or stream still runs, or bytes wait in
        libuv's queue (closing now would drop them: the client must see a reset then, not a
        FIN that makes a short body look whole)."""
        return (self.busy or self.stream is not None
                or uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle) > 0)

    # -- Python-visible -------------------------------------------------------------------

    @property
    def idle(self):
        return not self.closed and self._idle()

    def __repr__(self):
        return "<Connection id=%d client=%r requests=%d%s>" % (
            self.id, self.client, self.requests, " closed" if self.closed else "")


cdef object _new_parser(Connection conn):
    parser = _HttpRequestParser(conn)
    # any HTTP/d.d reaches on_headers_complete, which answers 505 or reads 1.x as 1.1
    parser.set_dangerous_leniencies(lenient_version=True)
    return parser


cdef bint _has_header(list headers, bytes lower_name):
    for k, _ in headers:
        if (<bytes>k).lower() == lower_name:
            return True
    return False


cdef int _check_user_framing(list headers, int flags) except -1:
    """A handler's own Transfer-Encoding header: never beside a Content-Length, and ending
    in chunked (the coding we frame with); else a client would read the body another way
    than we send it (RFC 9112 6.3)."""
    if flags & HEAD_HAS_TE:
        if flags & HEAD_HAS_LENGTH:
            raise ValueError("a response cannot have both Content-Length and Transfer-Encoding")
        codings = b",".join([v for k, v in headers if k.lower() == b"transfer-encoding"])
        if codings.rpartition(b",")[2].strip().lower() != b"chunked":
            raise ValueError("Transfer-Encoding %r of a response must end with chunked"
                             % codings.decode("latin-1"))
    return 0


cdef bytes _frame_user_body(list headers, bytes body, int flags):
    """A whole body whose handler set the framing header itself: it must agree with it, or
    the client would read part of this body as the next response (or wait for bytes that
    never come)."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(body)
    _check_user_framing(headers, flags)
    if flags & HEAD_HAS_TE:
        return (b"%x\r\n%b\r\n0\r\n\r\n" % (n, body)) if n else b"0\r\n\r\n"
    declared = _content_length_of(headers)
    if declared != n:
        raise ValueError("the response's Content-Length header says %d bytes but its body has %d"
                         % (declared, n))
    return body


cdef void _check_path_params(dict params):
    """Path parameters are joined to file paths by users: refuse '..' segments, absolute
    values and NUL, which only an encoded request path can produce."""
    for value in params.values():
        if type(value) is str:
            v = <str>value
            if "\x00" in v or v.startswith("/") or v.startswith("\\") or ".." in v.replace(
                    "\\", "/").split("/"):
                raise _HTTPException(400, "Invalid path parameter")


cdef Py_ssize_t _skip_empty_lines(const char* data, Py_ssize_t n):
    """The empty lines llhttp skips before a request: how many bytes they take at data."""
    cdef Py_ssize_t i = 0
    while i < n and (data[i] == 13 or data[i] == 10):
        i += 1
    return i


cdef Py_ssize_t _blank_line_end(const char* data, Py_ssize_t n, int* state):
    """Scan a head for the empty line that ends it: the offset just past it, or -1 with *state
    kept for the next read (0: within a line, 1: just after its LF, 2: after LF CR)."""
    cdef Py_ssize_t i = 0
    cdef int s = state[0]
    cdef const char* q
    cdef char c
    while i < n:
        if s == 0:
            q = <const char*>memchr(data + i, 10, n - i)   # (a line's bytes, CRs too, keep 0)
            if q == NULL:
                break
            i = q - data + 1
            s = 1
            continue
        c = data[i]
        if c == 10:
            return i + 1
        s = 2 if c == 13 and s == 1 else 0
        i += 1
    state[0] = s
    return -1


cdef Py_ssize_t _continued_head_end(Connection conn, const char* data, Py_ssize_t n):
    """Where in the read being fed (data) the head that began in earlier reads ends, just past
    its empty line, or -1 (it does not end there, or its reads were not scanned)."""
    cdef int eol = conn.feed_eol
    if eol < 0:
        return -1
    return _blank_line_end(data, n, &eol)


cdef Py_ssize_t _head_end_here(Connection conn):
    """Where in the read being fed the head llhttp has just read to its end ends (just past its
    empty line): from its request line there, or from the state of its earlier reads. -1 when
    not known."""
    cdef int eol = 0
    cdef Py_ssize_t end
    if conn.feed_line >= 0:
        end = _blank_line_end(conn.feed_ptr + conn.feed_line, conn.feed_n - conn.feed_line, &eol)
        return conn.feed_line + end if end >= 0 else -1
    if conn.feed_cur is not None and conn.feed_cur is conn.cur:
        return _continued_head_end(conn, conn.feed_ptr, conn.feed_n)
    return -1


cdef Py_ssize_t _head_size(Connection conn):
    """The raw size of the head llhttp has just read to its end, empty lines before it left
    out, when it is known: it began in the read being fed, or in earlier reads that head_raw
    counts. Else -1."""
    cdef Py_ssize_t end
    if conn.feed_ptr == NULL:
        return -1
    if conn.feed_line >= 0:
        end = _head_end_here(conn)
        return end - conn.feed_line if end >= 0 else -1
    if conn.feed_cur is not None and conn.feed_cur is conn.cur:
        end = _continued_head_end(conn, conn.feed_ptr, conn.feed_n)
        return conn.head_raw + end if end >= 0 else -1
    return -1


cdef enum:
    # _scan_line's states (LineScan.state)
    RL_BEFORE = 0    # before a request line: empty lines may come first
    RL_CR = 1        # ... just after a CR, which only LF may follow
    RL_METHOD = 2
    RL_TARGET0 = 3   # just after the SP that ends the method
    RL_TARGET = 4
    RL_VERSION0 = 5  # just after the SP that ends the target
    RL_VERSION = 6
    RL_END_CR = 7    # just after the CR that ends the line
    RL_DONE = 8      # after the line, or past a target longer than max_url_size (llhttp's 414)
    RL_LOST = 9      # where the line begins is not known (see on_message_begin)
    # LineScan.flags
    RL_ODD = 1       # not strictly token SP target SP HTTP/DIGIT.DIGIT CRLF (whitespace aside)
    RL_NOT_HEAD = 2  # the method so far is not the beginning of HEAD
    RL_HEAD = 4      # the method is HEAD (a 400 for it has no body)

cdef str _BAD_LINE = "Invalid request line"


cdef int _scan_line(LineScan* s, const char* p, Py_ssize_t n, Py_ssize_t url_limit) noexcept nogil:
    """Read the next n bytes at p of a request line (and of the empty lines before it) ahead of
    llhttp: 1 once the line is whole (s.state is then RL_DONE), 0 while it goes on after them,
    -1 for a line whose three parts are not separated by exactly one SP (400).

    RFC 9112 3 lets a recipient split a request line on any whitespace, and llhttp takes any
    run of SP between the parts and skips any CR or LF before a request: a proxy in front that
    splits the line otherwise than we do can smuggle a request past its checks. So the line is
    refused for two SPs, HTAB, VT, FF, a bare CR (RFC 9112 2.2) or a bare LF in it, and for
    whitespace before the method or before the CRLF; empty lines (CRLF, or LF) before it are
    skipped (RFC 9112 2.2). The rest is llhttp's to judge; what is not strictly token SP target SP
    HTTP/DIGIT.DIGIT CRLF is noted in s.flags (RL_ODD, for _invalid_method_status), and a target
    longer than url_limit is left unjudged (llhttp's 414), whichever way the line is split."""
    cdef Py_ssize_t i = 0, j, k
    cdef int st = s.state
    cdef int flags = s.flags
    cdef Py_ssize_t count = s.count   # (locals: p's bytes may alias *s)
    cdef int cls
    cdef unsigned char c
    cdef const char* version = "HTTP/0.0"
    cdef const char* head = "HEAD"
    while i < n:
        if st == RL_TARGET:
            j = i
            while i < n and _LINE_CLASS[<unsigned char>p[i]] == LC_VISIBLE:
                i += 1
            count += i - j
            if i < n and _LINE_CLASS[<unsigned char>p[i]] == LC_OTHER:
                flags |= RL_ODD
                count += 1
                i += 1
            if count > url_limit:
                st = RL_DONE
                break
            if i == n:
                break
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls == LC_SP:
                st = RL_VERSION0
            elif cls == LC_CR:
                st = RL_END_CR   # no version: llhttp reads it as HTTP/0.9 (505)
                flags |= RL_ODD
            elif cls != LC_VISIBLE and cls != LC_OTHER:
                s.state = st
                s.flags = flags
                return -1
            else:
                continue   # (an LC_OTHER byte after the one above)
        elif st == RL_METHOD:
            j = i
            while i < n and _TCHAR[<unsigned char>p[i]]:
                i += 1
            if not (flags & RL_NOT_HEAD):
                k = j
                while k < i:
                    if count + k - j >= 4 or p[k] != head[count + k - j]:
                        flags |= RL_NOT_HEAD
                        break
                    k += 1
            count += i - j
            if i == n:
                break
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls == LC_VISIBLE or cls == LC_OTHER:
                flags |= RL_ODD | RL_NOT_HEAD   # not a token
                count += 1
                i += 1
                continue
            if count == 4 and not (flags & RL_NOT_HEAD):
                flags |= RL_HEAD
            if cls != LC_SP:
                s.state = st
                s.flags = flags
                return -1
            st = RL_TARGET0
        elif st == RL_VERSION:
            if (count == 0 and n - i >= 9 and memcmp(p + i, version, 5) == 0
                    and 48 <= p[i + 5] <= 57 and p[i + 6] == b"." and 48 <= p[i + 7] <= 57
                    and p[i + 8] == 13):
                i += 9   # (the whole version and the CR after it, as nearly always)
                count = 8
                st = RL_END_CR
                continue
            c = <unsigned char>p[i]
            cls = _LINE_CLASS[c]
            if cls == LC_VISIBLE or cls == LC_OTHER:
                if count >= 8 or not (
                        48 <= c <= 57 if version[count] == b"0" else c == version[count]):
                    flags |= RL_ODD
                count += 1
            elif cls == LC_CR:
                if count != 8:
                    flags |= RL_ODD
                st = RL_END_CR
            else:
                s.state = st
                s.flags = flags
                return -1
        elif st == RL_END_CR:
            if p[i] != 10:
                s.state = st
                s.flags = flags
                return -1
            st = RL_DONE
            break
        elif st == RL_BEFORE:
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls == LC_VISIBLE or cls == LC_OTHER:
                st = RL_METHOD
                flags = 0
                count = 0
                continue   # (the method's first byte)
            if cls == LC_CR:
                st = RL_CR
            elif cls != LC_LF:
                s.state = st
                s.flags = flags
                return -1
        elif st == RL_CR:
            if p[i] != 10:
                s.state = st
                s.flags = flags
                return -1
            st = RL_BEFORE
        elif st == RL_TARGET0 or st == RL_VERSION0:
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls != LC_VISIBLE and cls != LC_OTHER:
                s.state = st
                s.flags = flags
                return -1
            st += 1   # RL_TARGET or RL_VERSION
            count = 0
            continue
        else:
            break   # RL_DONE, RL_LOST: nothing to read
        i += 1
    s.state = st
    s.flags = flags
    s.count = count
    return 1 if st == RL_DONE else 0


cdef int _invalid_method_status(const char* data, Py_ssize_t n):
    """501 for a well-formed request line (token SP target SP HTTP/DIGIT.DIGIT CRLF, after empty
    lines) whose method we do not implement, 400 for anything else, 0 while the n bytes so far
    could begin either. (_scan_line reads it: the same line as for any other method.)"""
    cdef LineScan s
    cdef int r
    s.state = RL_BEFORE
    s.flags = 0
    s.count = 0
    r = _scan_line(&s, data, n, n)
    if r < 0 or s.flags & RL_ODD:
        return 400
    return 501 if r > 0 else 0


cdef enum:
    # _chunked_end's states (ChunkScan.state)
    CK_SIZE = 0       # in a chunk's size
    CK_SIZE_LINE = 1  # in the rest of its line (extensions), up to its LF
    CK_DATA = 2
    CK_DATA_END = 3   # in the CRLF after its data
    CK_TRAILERS = 4   # in the trailer section, up to its empty line
    CK_LOST = 5       # not followed from the body's beginning


cdef inline void _chunks_begin(ChunkScan* s) noexcept nogil:
    s.state = CK_SIZE
    s.eol = 0
    s.left = 0


cdef Py_ssize_t _chunked_end(ChunkScan* s, const char* p, Py_ssize_t n):
    """Follow a chunked body's framing (RFC 9112 7.1), as llhttp accepted it, through the next n
    bytes at p: the offset just past the body (its trailer section's empty line), or -1 when it
    goes on after them (s keeps where it is). llhttp has checked the framing: its lines end in
    CRLF, and a chunk-ext (quoted strings too) holds no LF."""
    cdef Py_ssize_t i = 0, k
    cdef const char* q
    cdef unsigned char c
    while i < n:
        if s.state == CK_SIZE:
            c = <unsigned char>p[i]
            if _is_hex(c):
                if s.left < (<uint64_t>1 << 59):   # (llhttp refuses a size past 64 bits)
                    s.left = s.left * 16 + (c - 48 if c <= 57 else (c | 32) - 87)
                i += 1
                continue
            s.state = CK_SIZE_LINE
        elif s.state == CK_SIZE_LINE or s.state == CK_DATA_END:
            q = <const char*>memchr(p + i, 10, n - i)
            if q == NULL:
                return -1
            i = q - p + 1
            if s.state == CK_DATA_END:
                _chunks_begin(s)
            elif s.left == 0:
                s.state = CK_TRAILERS   # the last chunk
                s.eol = 1               # (just after an LF)
            else:
                s.state = CK_DATA
        elif s.state == CK_DATA:
            k = n - i if <uint64_t>(n - i) < s.left else <Py_ssize_t>s.left
            i += k
            s.left -= k
            if s.left == 0:
                s.state = CK_DATA_END
        elif s.state == CK_TRAILERS:
            k = _blank_line_end(p + i, n - i, &s.eol)
            return i + k if k >= 0 else -1
        else:
            return -1   # CK_LOST
    return -1


cdef bint _unknown_coding_before_chunked(bytes te):
    """True for e.g. 'gzip, chunked' (RFC 9112 6.1: 501). Without a final chunked the
    request is left to llhttp, which answers 400 (its length cannot be known)."""
    cdef list codings = []
    cdef bytes item
    cdef Py_ssize_t i, last
    for item in te.split(b","):
        item = item.strip().lower()
        if item:
            codings.append(item)
    last = len(codings) - 1   # (no negative indexes: wraparound is off)
    if last < 1 or codings[last] != b"chunked":
        return False
    for i in range(last):
        if codings[i] != b"chunked":
            return True
    return False


cdef tuple _origin_form(str method, bytes target):
    """(authority, path?query) of an absolute-form target, (None, b"*") of the asterisk
    form, or None for a target we do not serve (RFC 9112 3.2)."""
    cdef Py_ssize_t start, i, n = len(target)
    cdef unsigned char c
    if target == b"*":
        return (None, b"*") if method == "OPTIONS" else None
    if target[:7].lower() == b"http://":
        start = 7
    elif target[:8].lower() == b"https://":
        start = 8
    else:
        return None   # another scheme, or an authority form outside CONNECT
    i = start
    while i < n:
        c = target[i]
        if c == b"/" or c == b"?" or c == b"#":
            break   # the authority ends here, the path too if it is empty (RFC 3986 3.3)
        if c == b"@":
            return None   # userinfo in an http(s) URI (RFC 9110 4.2.4)
        i += 1
    if i == start:
        return None   # no host
    if i == n:
        return target[start:i], b"/"
    if target[i] == 47:   # '/'
        return target[start:i], target[i:]
    return target[start:i], b"/" + target[i:]
