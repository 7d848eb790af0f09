# Streaming responses: producers off the hot path, chunk framing, back-pressure, cancellation.
#
# Sync producers (generators, iterators, lists) run on worker threads; async generators run as
# tasks on the loop; files are sent with sendfile(2) by a worker thread (the threads' side is
# producers.pyx). Produced chunks are
# appended to the stream's deque; a worker wakes the loop with the server's uv_async_t. The loop
# writes every chunk ready for a stream in one vectored write: small chunks are framed into the
# scratch buffer, large ones are written from the chunk object itself (no copy).

from asyncio import CancelledError as _CancelledError

cdef extern from "<sys/socket.h>" nogil:
    int c_shutdown "shutdown" (int fd, int how)
    enum: SHUT_RDWR


cdef extern from *:
    """
    #include <errno.h>
    #include <string.h>
    #include <sys/socket.h>
    #include <sys/uio.h>

    /* One non-blocking vectored send of a framed chunk (head, payload, tail; head and tail
       may be empty). Returns the bytes the kernel took, or -errno. */
    static Py_ssize_t catzilla_send_framed(int fd, const char* head, size_t hl,
                                           const char* p, size_t pl,
                                           const char* tail, size_t tl) {
        struct iovec iov[3];
        struct msghdr msg;
        ssize_t r;
        int n = 0;
        if (hl) { iov[n].iov_base = (void*)head; iov[n].iov_len = hl; n++; }
        iov[n].iov_base = (void*)p; iov[n].iov_len = pl; n++;
        if (tl) { iov[n].iov_base = (void*)tail; iov[n].iov_len = tl; n++; }
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = iov;
        msg.msg_iovlen = n;
        do {
            r = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        } while (r < 0 && errno == EINTR);
        return r < 0 ? -(Py_ssize_t)errno : (Py_ssize_t)r;
    }
    """
    Py_ssize_t catzilla_send_framed(int fd, const char* head, size_t hl, const char* p,
                                    size_t pl, const char* tail, size_t tl) nogil
    enum: EAGAIN

cdef enum:
    MODE_CHUNKED = 1
    MODE_LENGTH = 2
    MODE_CLOSE = 3
    SMALL_CHUNK = 4096
    MAX_BATCH = 256
    DIRECT_CHUNK = 32768    # a sync producer writes chunks this big to the socket itself

from catzilla._sse import encode_item as _sse_encode_item

cdef object _END = object()
cdef object _LET_GO = object()   # a producer thread is done with the socket of a closed stream
cdef bytes _PING = b": ping\n\n"
cdef bytes _CRLF = b"\r\n"
cdef bytes _LAST_CHUNK = b"0\r\n\r\n"


class _Raw(bytes):
    """Bytes already framed (the rest of a chunk a producer thread sent in part)."""
    __slots__ = ()


class _Failure:
    __slots__ = ("exc", "quiet")

    def __init__(self, exc, quiet=False):
        self.exc = exc
        self.quiet = quiet


cdef bytes _as_bytes(object chunk):
    if type(chunk) is bytes:
        return <bytes>chunk
    if isinstance(chunk, str):
        return (<str>chunk).encode("utf-8")
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError("a stream chunk must be str or bytes, got %s" % type(chunk).__name__)


def _close_producer(content, srv=None):
    """Close a producer that will never be iterated (HEAD, 503), so its finally: runs. An
    async one's aclose() runs as a task; the server ``srv`` waits for it at shutdown."""
    close = getattr(content, "close", None)
    if close is not None:
        close()
    elif hasattr(content, "aclose"):
        task = _ensure_future(content.aclose())
        if srv is not None:
            (<Server>srv)._track_task(task)


cdef void _log_close_error(_Stream stream, object exc):
    _logger.error("Exception closing the stream producer of %s %s", stream.request.method,
                  stream.request.path, exc_info=(type(exc), exc, exc.__traceback__))


cdef object _overrun(_Stream stream):
    return _Failure(ValueError("the stream produced more bytes than its Content-Length (%d)"
                               % stream.expected))


cdef inline bytes _encode_chunk(_Stream stream, object chunk):
    if stream.sse:
        return _sse_encode_item(chunk)
    if stream.encoder is not None and isinstance(chunk, str):
        return stream.encoder.encode(chunk)   # the charset the Content-Type names
    return _as_bytes(chunk)


cdef inline bytes _encoder_tail(_Stream stream):
    """What a stateful codec still owes at the end of the body (e.g. ISO-2022's return to
    ASCII), or b""."""
    if stream.encoder is None:
        return b""
    return stream.encoder.encode("", True)


cdef void _on_ping_cb(uv.uv_timer_t* timer) noexcept with gil:
    cdef _Stream stream = <_Stream>uv.catzilla_handle_get_data(<uv.uv_handle_t*>timer)
    try:
        if stream.direct_seq != stream.ping_seen:
            stream.ping_seen = stream.direct_seq   # the producer thread wrote: not silent
        elif (not stream.finished and not stream.cancelled and not stream.chunks
                and not stream.direct):
            stream._append(_PING)
            stream._flush()
    except BaseException as exc:
        _report_error(exc)


cdef void _on_ping_close_cb(uv.uv_handle_t* handle) noexcept with gil:
    cdef _Stream stream = <_Stream>uv.catzilla_handle_get_data(handle)
    free(handle)
    try:
        stream.server._handle_closed()
    except BaseException as exc:
        _report_error(exc)
    finally:
        Py_DECREF(stream)


def _fanout(subscribers, bytes payload, Py_ssize_t queue_limit, bint disconnect_slow):
    """Write one encoded event to every subscriber: the same bytes object goes to every socket
    (no per-subscriber copy, no Python call per subscriber). Returns (reached, dropped,
    disconnected). A subscriber whose socket is backed up keeps at most queue_limit events;
    past that the oldest is dropped, or the subscriber is disconnected."""
    cdef _Stream stream
    cdef Py_ssize_t reached = 0, dropped = 0, disconnected = 0
    cdef object old
    for s in tuple(subscribers):
        stream = <_Stream>s
        if stream.finished or stream.cancelled or stream.conn.closed:
            continue
        if stream.chunks or stream.wqs > stream.high_water:
            if len(stream.chunks) >= queue_limit:
                if disconnect_slow:
                    stream.conn._close()
                    disconnected += 1
                    continue
                old = stream.chunks.popleft()
                if type(old) is bytes:
                    stream.queued -= PyBytes_GET_SIZE(<bytes>old)
                dropped += 1
            stream._append(payload)    # written when the socket drains
        else:
            stream._append(payload)
            stream._flush()
        reached += 1
    return reached, dropped, disconnected


cdef void _on_wakeup_cb(uv.uv_async_t* handle) noexcept with gil:
    cdef Server srv = <Server>uv.catzilla_handle_get_data(<uv.uv_handle_t*>handle)
    try:
        srv._drain_ready()
    except BaseException as exc:
        _report_error(exc)


cdef class _Stream:
    """The body of one streaming response on one connection."""

    def __cinit__(self):
        self.chunks = _deque()
        self.fd = -1

    # -- producers' side (any thread, GIL held) ----------------------------------------------

    def _push(self, item):
        if type(item) is bytes or type(item) is _Raw:
            self.queued += PyBytes_GET_SIZE(<bytes>item)
        self.chunks.append(item)
        # While libuv holds a write for this socket, the loop flushes the deque when that
        # write completes (Connection._on_write_done): no wake-up per chunk.
        if not self.scheduled and (self.wqs == 0 or type(item) is not bytes):
            self._schedule()

    cdef void _schedule(self):
        """Have the loop flush this stream soon (any thread, GIL held)."""
        cdef Server srv = self.server
        self.scheduled = True
        srv.ready.append(self)
        if srv.wakeup != NULL:
            uv.uv_async_send(srv.wakeup)

    cdef void _append(self, bytes data):
        """Queue bytes for the next flush (loop thread)."""
        self.queued += PyBytes_GET_SIZE(data)
        self.chunks.append(data)

    def _enqueue(self, bytes data):
        """``_append`` for Python callers (the hub's replay)."""
        self._append(data)

    # -- the loop's side -------------------------------------------------------------------

    cdef int _begin(self) except -1:
        cdef Server srv = self.server
        cdef int fd = -1
        self.high_water = srv.write_high_water
        self.low_water = srv.write_low_water
        self.last_progress = uv.uv_now(srv.uvloop)
        srv.streams_active += 1
        srv.total_streams += 1
        if self.conn.closed:   # the head could not be written: the client has gone
            self._cancel()       # a worker stops (and closes its producer) at once
            if self.kind == "async":
                _close_producer(self.content, srv)
            return 0
        if self.ping_ms:
            self._start_ping()
        if self.kind == "hub":
            self.zero_copy = True
            self.subscription._attach(self)   # queues the replay, joins the channel
            if self.chunks:
                self._flush()
        elif self.kind == "async":
            if self.request is not None and self.request.context is not None:
                self.task = srv.loop.create_task(_pump_async(self),
                                                 context=self.request.context.copy())
            else:
                self.task = _ensure_future(_pump_async(self), loop=srv.loop)
            srv._track_task(self.task)   # shutdown waits for its finally: (within the deadline)
        if self.kind == "file" or self.kind == "sync":
            # the socket a worker writes to itself (sendfile, or a sync producer's big chunks)
            uv.uv_fileno(<uv.uv_handle_t*>self.conn.handle, &fd)
            self.fd = fd
        if self.chunks and self.kind != "file":
            self._flush()     # e.g. the SSE retry line, before the producer's first item
        elif self.kind == "file":
            self.holds_fd = True
            srv.fd_holders += 1
        self._update_backlog()
        return 0

    cdef void _update_backlog(self):
        cdef Connection conn = self.conn
        if conn.closed:
            return
        self.wqs = uv.catzilla_write_queue_size(<uv.uv_stream_t*>conn.handle)
        if self.wqs == 0:
            self.last_progress = uv.uv_now(self.server.uvloop)
        if self.kind == "file":
            if self.wqs == 0 and not self.writable.is_set():
                self.writable.set()
        elif self.queued + self.wqs <= self.low_water:
            if self.writable is not None and not self.writable.is_set():
                self.writable.set()
            if self.drained is not None and not self.drained.done():
                self.drained.set_result(None)

    cdef void _flush(self):
        """Write what the producer has made, in one vectored write per batch."""
        cdef Connection conn = self.conn
        cdef Server srv = self.server
        cdef _Buf buf = srv.buf
        cdef uv.uv_buf_t bufs[2 * MAX_BATCH + 2]
        cdef PyObject* owners[2 * MAX_BATCH + 2]
        cdef Py_ssize_t offsets[2 * MAX_BATCH + 2]
        cdef int n, count, i
        cdef bint raw, framed
        cdef Py_ssize_t ln, seg_start
        cdef bytes data
        cdef list hold
        cdef object item, terminal = None
        cdef bint stop = False, was_writing
        if self.finished or conn.closed or self.cancelled:
            # Nothing more is written; a producer's last word still matters (a sendfile
            # worker lets go of the socket with it).
            while self.chunks:
                item = self.chunks.popleft()
                if type(item) is bytes or type(item) is _Raw:
                    self.queued -= PyBytes_GET_SIZE(<bytes>item)
                else:
                    self._end(item)
            return
        if self.direct:
            return   # a producer thread is writing; it has this flush scheduled when done
        # No producer thread writes to the socket from here to the end: not even while this
        # thread runs Python code (an overrun's failure, waking the producer) with chunks it
        # has taken off the deque and not written, or dropped.
        was_writing = conn.writing
        conn.writing = True
        try:
            while self.chunks and terminal is None and not conn.closed:
                buf.size = 0
                n = 0
                count = 0
                seg_start = 0
                hold = []   # the chunks our iovecs point into stay alive until _write keeps them
                while self.chunks and count < MAX_BATCH:
                    item = self.chunks.popleft()
                    raw = type(item) is _Raw   # already framed: the rest of a direct write
                    if not raw and type(item) is not bytes:
                        terminal = item
                        break
                    data = <bytes>item
                    ln = PyBytes_GET_SIZE(data)
                    self.queued -= ln
                    count += 1
                    framed = self.mode == MODE_CHUNKED and not raw
                    if not raw:
                        if self.mode == MODE_LENGTH and self.sent + ln > self.expected:
                            terminal = _overrun(self)
                            stop = True
                            break
                        self.sent += ln
                    if framed:
                        _put_chunk_head(buf, ln)
                    if ln < SMALL_CHUNK and not self.zero_copy:
                        buf.put(PyBytes_AS_STRING(data), ln)
                    else:
                        if buf.size > seg_start:
                            offsets[n] = seg_start
                            bufs[n].len = buf.size - seg_start
                            owners[n] = NULL
                            n += 1
                        hold.append(data)
                        bufs[n].base = PyBytes_AS_STRING(data)
                        bufs[n].len = ln
                        offsets[n] = -1
                        owners[n] = <PyObject*>data
                        n += 1
                        seg_start = buf.size
                    if framed:
                        buf.put("\r\n", 2)
                if terminal is _END:
                    if self.mode == MODE_CHUNKED:
                        buf.put_bytes(_LAST_CHUNK)
                    elif self.mode == MODE_LENGTH and self.sent != self.expected:
                        terminal = _Failure(ValueError(
                            "the stream produced %d bytes, fewer than its Content-Length (%d)"
                            % (self.sent, self.expected)))
                if buf.size > seg_start:
                    offsets[n] = seg_start
                    bufs[n].len = buf.size - seg_start
                    owners[n] = NULL
                    n += 1
                for i in range(n):
                    if owners[i] == NULL:
                        bufs[i].base = buf.data + offsets[i]
                if n:
                    try:
                        conn._write(bufs, owners, n)
                    except BaseException as exc:
                        stop = stop or terminal is None   # not the producer's last word
                        terminal = _Failure(exc)
                    if self.ping_timer != NULL:
                        uv.uv_timer_again(self.ping_timer)
            self._update_backlog()
            if terminal is not None:
                self._end(terminal, stop)
        finally:
            conn.writing = was_writing

    cdef void _end(self, object terminal, bint stop=False):
        """The stream is over: terminal is the producer's last word (_END or a _Failure), or
        the loop's own _Failure (stop: the producer may still be running, and is stopped), or
        _LET_GO (a producer thread has stopped writing to the cancelled stream's socket)."""
        cdef Connection conn = self.conn
        if self.holds_fd and not self.direct:   # (a thread in its send lets go by itself)
            self.holds_fd = False
            if self.kind == "file":
                conn.bytes_sent += self.sent
                self.server.bytes_sent += self.sent
            if conn.close_deferred:
                conn._close_handle()
            self.server._fd_released()
        if self.finished or terminal is _LET_GO:
            return
        self._retire()
        if conn.stream is self:
            conn.stream = None
        if conn.closed or self.cancelled:
            return
        if stop:
            self._halt()   # its loop ends and its finally: runs; what it makes is dropped
        if self.kind == "file" and terminal is _END and self.sent != self.expected:
            terminal = _Failure(RuntimeError("sent %d of %d bytes" % (self.sent, self.expected)))
        if terminal is _END:
            if self.mode == MODE_CLOSE:
                conn._graceful_close()
            else:
                conn._response_done()
            return
        if not (<object>terminal).quiet:
            exc = (<object>terminal).exc
            _logger.error("Exception in the stream producer of %s %s; the response is cut off",
                          self.request.method, self.request.path,
                          exc_info=(type(exc), exc, exc.__traceback__))
        conn.close_after_response = True
        if self.mode == MODE_CLOSE and not self.holds_fd:
            # A close-delimited body (HTTP/1.0) cut short would look whole to the client
            # after our FIN: a reset says it is not (RFC 9112 8).
            conn._reset()
            return
        conn._graceful_close()   # what was sent stays sent; no terminating chunk follows

    cdef bint _runs_through_shutdown(self):
        """Whether a graceful stop lets the stream run to its end (within the deadline): any
        download (a file, a Content-Length or a chunked body) unless its response asked to
        be stopped (``stop_on_shutdown``: SSE by default). A hub subscription never ends by
        itself, and its client resumes by Last-Event-ID: it is stopped at once."""
        return self.kind == "file" or not (self.stop_on_shutdown or self.kind == "hub")

    cdef void _cancel(self):
        """The client left (or the server is stopping): stop the producer."""
        if self.cancelled:
            return
        if not self.finished:
            self._retire()
        self._halt()

    cdef void _halt(self):
        """Tell the producer to stop: a worker's or an async pump's loop ends at its next
        check, and a producer waiting for the socket to drain wakes up."""
        self.cancelled = True
        if self.writable is not None:
            self.writable.set()
        if self.drained is not None and not self.drained.done():
            self.drained.cancel()
        if self.task is not None:
            self.task.cancel()
        if self.holds_fd and self.kind == "file" and self.fd >= 0:
            c_shutdown(self.fd, SHUT_RDWR)   # wakes the sendfile worker

    cdef void _retire(self):
        """Once per stream: it produces no more (done, failed or cancelled)."""
        self.finished = True
        self.server.streams_active -= 1
        self._stop_ping()
        if self.subscription is not None:
            subscription = self.subscription
            self.subscription = None
            subscription._detach(self)

    cdef void _start_ping(self):
        global _live_handles
        cdef Server srv = self.server
        self.ping_timer = <uv.uv_timer_t*>malloc(uv.uv_handle_size(uv.UV_TIMER))
        if self.ping_timer == NULL:
            raise MemoryError()
        uv.uv_timer_init(srv.uvloop, self.ping_timer)
        uv.catzilla_handle_set_data(<uv.uv_handle_t*>self.ping_timer, <void*>self)
        Py_INCREF(self)
        srv.open_handles += 1
        _live_handles += 1
        uv.uv_timer_start(self.ping_timer, _on_ping_cb, self.ping_ms, self.ping_ms)

    cdef void _stop_ping(self):
        if self.ping_timer != NULL:
            uv.uv_timer_stop(self.ping_timer)
            uv.uv_close(<uv.uv_handle_t*>self.ping_timer, _on_ping_close_cb)
            self.ping_timer = NULL

    @property
    def backlog(self):
        return self.queued + self.wqs


async def _pump_async(_Stream stream):
    """Iterate an async producer on the loop, awaiting while the socket is backed up."""
    cdef Py_ssize_t produced = 0   # bytes of the producer's items so far
    cdef bint told = False         # its last word is queued already
    cdef bint ended = False        # the producer ran out (not stopped)
    aiter = None
    failure = None
    try:
        aiter = stream.content.__aiter__()
        while not stream.cancelled:
            try:
                chunk = await aiter.__anext__()
            except StopAsyncIteration:
                ended = True
                break
            if stream.cancelled:
                break
            data = _encode_chunk(stream, chunk)
            if stream.mode == MODE_LENGTH:
                produced += PyBytes_GET_SIZE(data)
                if produced > stream.expected:
                    # not sent; the producer stops here, told before aclose() (_run_sync)
                    stream.chunks.append(_overrun(stream))
                    stream._flush()
                    told = True
                    break
            if PyBytes_GET_SIZE(data):
                stream._append(data)
                stream._flush()
            if stream.queued + stream.wqs > stream.high_water and not stream.cancelled:
                stream.drained = stream.server.loop.create_future()
                await stream.drained
                stream.drained = None
        if ended and not stream.cancelled:
            data = _encoder_tail(stream)
            if PyBytes_GET_SIZE(data):
                produced += PyBytes_GET_SIZE(data)
                if stream.mode == MODE_LENGTH and produced > stream.expected:
                    stream.chunks.append(_overrun(stream))
                    told = True
                else:
                    stream._append(data)
                stream._flush()
    except _CancelledError:
        failure = _Failure(None, quiet=True)
    except BaseException as exc:
        failure = _Failure(exc)
    finally:
        aclose = getattr(aiter, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except BaseException as exc:
                if told:   # the overrun is reported already: this one still is
                    _log_close_error(stream, exc)
                elif failure is None:
                    failure = _Failure(exc)
    if not told:
        stream.chunks.append(failure if failure is not None else _END)
        stream._flush()
