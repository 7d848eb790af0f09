# The HTTP/1.1 protocol on a transport, its answering half: requests taken in turn (keep-alive,
# pipelining), whole responses written, 4xx for what the reading half (http1_parse.pyx) refused,
# and the transport's hooks. Dispatch (dispatch.pyx) turns a Request into its response.

import json as _json


cdef class Connection(Http1Parser):
    """An HTTP/1.1 connection: the protocol on its transport (the public registry object)."""

    # -- the transport's hooks --------------------------------------------------------------

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
