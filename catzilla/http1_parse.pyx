# Reading HTTP/1.1 requests off a transport: each read goes to the fast path between messages
# (http1_scan.pyx), to llhttp (httptools) otherwise, or to the body of an Upgrade request we
# ignore; limits and malformed input end in a rejection (Connection._reject, http1.pyx). A whole
# request goes to Connection._take_request.

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


class _Reject(Exception):
    """Raised inside a parser callback to abort parsing with an error status."""


cdef class Http1Parser(Transport):
    """The reading half of an HTTP/1.1 connection (Connection, http1.pyx, is the other)."""

    def __cinit__(self):
        self.pending = _deque()
        self.expect_length = -1

    cdef int _start(self) except -1:
        self.parser = _new_parser(self)
        return Transport._start(self)

    cdef void _data_received(self, const char* data, Py_ssize_t n):
        if not self.input_done:
            self._feed(data, n)

    # -- what the answering half does (Connection) ----------------------------------------

    cdef void _take_request(self, Request req):
        pass

    cdef void _reject(self, int status, str detail):
        pass

    cdef void _reject_as(self, int status, str detail, bint head_only):
        pass

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
                    used = _fast_request(self, data, n)
                if used < 0:
                    used = _feed_parser(self, data, n)
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
        self.cur.conn = <Connection>self
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


cdef Py_ssize_t _feed_parser(Http1Parser conn, const char* data, Py_ssize_t n):
    """Feed llhttp; returns the bytes it took (n but after an Upgrade request, where
    the rest is for the caller to hand on)."""
    cdef Py_ssize_t used
    cdef bint was_in_headers = conn.in_message and not conn.headers_done
    cdef Request started_with = conn.cur
    cdef bint was_in_body = conn.in_message and conn.headers_done
    cdef Py_ssize_t body_before = conn.cur_body_size
    cdef int chunk_before = conn.chunk_state
    cdef uint64_t begun_before = conn.messages_begun
    cdef int status
    cdef object mv = PyMemoryView_FromMemory(<char*>data, n, PyBUF_READ)
    cdef int eol
    cdef Py_ssize_t skip
    cdef ChunkScan chunks
    # The request line llhttp reads next is read ahead of it (_scan_line): from the read's
    # beginning here, between requests or in a line that began in an earlier read; after a
    # request that ends in the read, from where it ends (on_message_complete).
    if not conn.in_message and conn.line.state == RL_LOST:
        conn.line.state = RL_BEFORE   # (a read that begins between requests: found)
    if conn.line.state != RL_DONE and conn.line.state != RL_LOST and _scan_line(
            &conn.line, data, n, conn.server.max_url_size) < 0:
        conn._reject_as(400, _BAD_LINE, conn.line.flags & RL_HEAD)
        return n
    # what the callbacks need to measure a head that ends in this read, and to find where
    # a request that ends in it ends
    conn.feed_ptr = data
    conn.feed_n = n
    conn.feed_cur = started_with if was_in_headers else None
    conn.feed_eol = conn.head_eol if was_in_headers else -1
    conn.feed_line = -1 if conn.in_message else _skip_empty_lines(data, n)
    conn.feed_body = 0 if was_in_body else -1
    conn.feed_body_before = body_before
    conn.feed_chunks_go_on = was_in_body
    try:
        conn.parser.feed_data(mv)
    except _ParserUpgrade as exc:
        # We do not upgrade (CONNECT was refused before), so the request is served as
        # HTTP/1.1 and the connection goes on in HTTP/1.1 (RFC 9110 7.8), as for any
        # request: llhttp stops after it, so a new parser reads what follows; with a
        # body, that body first (_upgrade_body: llhttp left it unread).
        conn.parser = _new_parser(conn)
        used = exc.args[0] if exc.args else n
        return used if 0 < used <= n else n
    except _ParserCallbackError:
        if conn.reject_status > 0:
            conn._reject(conn.reject_status, conn.reject_detail)
        elif conn.reject_status == 0:
            _report_error(RuntimeError("parser callback failed"))
            conn._close()
        return n
    except _ParserInvalidMethodError:
        # 501 or 400 from the failing request's own line (its end may come in later
        # reads): it began in this read, where the request before it ended if there was
        # one (feed_line), or in earlier reads (line_start)
        line = None
        if conn.messages_begun > begun_before and conn.feed_line >= 0:
            line = PyBytes_FromStringAndSize(data + conn.feed_line, n - conn.feed_line)
        elif was_in_headers and conn.cur is started_with and conn.line_start is not None:
            line = conn.line_start + PyBytes_FromStringAndSize(data, n)   # a line in pieces
        conn.line_start = None
        if line is None:
            conn._reject(400, None)
            return n
        status = _invalid_method_status(PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line))
        if status == 0:
            # the line goes on in a later read: judged once it has come (_probe_method)
            conn.method_probe = line
            return n
        conn._reject(status, None)
        return n
    except _ParserError as exc:
        if conn.in_message and not conn.cur_head:
            # (llhttp may fail on the target before it tells us of it: on_url)
            conn.cur_head = conn.parser.get_method() == b"HEAD"
        conn._reject(400, "Bad Request: %s" % (exc,))
        return n
    finally:
        mv.release()
        conn.feed_ptr = NULL
        conn.feed_cur = None
    if conn.in_message and not conn.headers_done and not conn.closed:
        # Bound what httptools buffers for a head that spans reads: the callbacks count
        # only whole fields, so also count the raw bytes of the reads the head came in
        # (not both added up: a 24 KB head in three reads is not 48 KB). The raw count
        # also holds the request line's method and version, line ends and optional
        # whitespace, which the fields' count leaves out: HEAD_RAW_SLACK more is allowed
        # for those. A head that ends in a read is measured the same way, to its empty
        # line (on_headers_complete; the fast path), so that it gets the same answer in
        # one read or in several. Empty lines before a request are not counted.
        if was_in_headers and conn.cur is started_with:
            conn.head_raw += n
            if conn.head_eol >= 0:
                eol = conn.head_eol
                _blank_line_end(data, n, &eol)
                conn.head_eol = eol
            if conn.line_start is not None:
                if memchr(data, 10, n) == NULL and PyBytes_GET_SIZE(
                        conn.line_start) + n <= conn.server.max_url_size + LINE_SLACK:
                    conn.line_start += PyBytes_FromStringAndSize(data, n)
                else:
                    conn.line_start = None
        elif conn.messages_begun > begun_before and conn.feed_line >= 0:
            skip = conn.feed_line   # it began in this read, there (its line's method)
            conn.head_raw = n - skip
            eol = 0
            _blank_line_end(data + skip, n - skip, &eol)
            conn.head_eol = eol
            # an unfinished request line, kept in case llhttp refuses its method later
            conn.line_start = (PyBytes_FromStringAndSize(data + skip, n - skip)
                               if memchr(data + skip, 10, n - skip) == NULL else None)
        if (conn.head_raw > conn.server.max_header_size + HEAD_RAW_SLACK
                or conn.cur_header_bytes > conn.server.max_header_size):
            conn._reject(431, None)
    elif was_in_body and conn.in_message and conn.cur is started_with and not conn.closed:
        # A read that goes on after the last chunk's size line without body bytes is the
        # trailer section, whose unfinished field httptools buffers (re-joining it on
        # every read): bound it like a head in pieces. (A chunk's size line and
        # extensions are not buffered: they are bounded by time, as 408, whatever the
        # reads, the same as in one read.)
        if conn.cur_body_size != body_before or chunk_before != 1 or conn.chunk_state != 1:
            conn.tail_bytes = 0
        else:
            conn.tail_bytes += n
            if conn.tail_bytes > conn.server.max_header_size + HEAD_RAW_SLACK:
                conn._reject(431, None)
    if conn.line_start is not None and (conn.headers_done or not conn.in_message):
        conn.line_start = None
    if (conn.in_message and conn.headers_done and conn.cur_te is not None
            and conn.upgrade_req is None and not conn.closed):
        # a chunked body that goes on in the next read: its framing so far
        if conn.feed_body < 0:
            conn.chunks.state = CK_LOST
        else:
            if not conn.feed_chunks_go_on:
                _chunks_begin(&conn.chunks)
            chunks = conn.chunks
            if _chunked_end(&chunks, data + conn.feed_body, n - conn.feed_body) < 0:
                conn.chunks = chunks
            else:
                conn.chunks.state = CK_LOST   # (llhttp has not read it to its end)
    return n


cdef object _new_parser(Http1Parser conn):
    parser = _HttpRequestParser(conn)
    # any HTTP/d.d reaches on_headers_complete, which answers 505 or reads 1.x as 1.1
    parser.set_dangerous_leniencies(lenient_version=True)
    return parser
