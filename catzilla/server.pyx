# The listener, the per-server ticker (Date header, timeouts) and the connection registry.

import asyncio as _asyncio
from catzilla._httpdate import format_http_date as _format_http_date

import uvloop.loop as _uvloop_ext

from cpython.pycapsule cimport PyCapsule_GetPointer

from catzilla.streaming import StreamThreadPool as _StreamThreadPool

_ensure_future = _asyncio.ensure_future


def live_handles():
    """How many libuv handles catzilla has open in this process (listeners, timers,
    connections). Tests use it to prove nothing leaks."""
    return _live_handles


cdef object _uv_error(int err):
    return OSError(-err, "%s: %s" % (uv.uv_err_name(err).decode(), uv.uv_strerror(err).decode()))


cdef void _on_connection_cb(uv.uv_stream_t* listener, int status) noexcept with gil:
    cdef Server srv = <Server>uv.catzilla_handle_get_data(<uv.uv_handle_t*>listener)
    try:
        srv._accept(status)
    except BaseException as exc:
        _report_error(exc)


cdef void _on_tick_cb(uv.uv_timer_t* timer) noexcept with gil:
    cdef Server srv = <Server>uv.catzilla_handle_get_data(<uv.uv_handle_t*>timer)
    try:
        srv._tick()
    except BaseException as exc:
        _report_error(exc)


cdef void _on_server_handle_close_cb(uv.uv_handle_t* handle) noexcept with gil:
    cdef Server srv = <Server>uv.catzilla_handle_get_data(handle)
    free(handle)
    try:
        srv._handle_closed()
    except BaseException as exc:
        _report_error(exc)
    finally:
        Py_DECREF(srv)


cdef void _free_handle_cb(uv.uv_handle_t* handle) noexcept nogil:
    free(handle)


cdef class Server:
    """Serves one Catzilla app on one listening socket, on an uvloop event loop."""

    def __cinit__(self, loop, app, router, error_handler, *, bint debug=False,
                  Py_ssize_t max_header_size=32768, Py_ssize_t max_url_size=8192,
                  int max_headers=100, Py_ssize_t max_body_size=16 * 1024 * 1024,
                  double keep_alive_timeout=5.0, double request_timeout=30.0,
                  double min_body_rate=1024.0, double send_timeout=60.0,
                  double lingering_timeout=2.0, double lingering_time=5.0,
                  Py_ssize_t write_high_water=256 * 1024, Py_ssize_t write_low_water=64 * 1024,
                  server_header="catzilla", int max_stream_threads=1000,
                  double stream_thread_idle_timeout=5.0):
        global _live_handles
        cdef int err
        try:
            capsule = _uvloop_ext.libuv_get_loop_t_ptr(loop)
        except TypeError:
            raise TypeError("catzilla serves on uvloop's event loop, got %r" % (loop,)) from None
        self.uvloop = <uv.uv_loop_t*>PyCapsule_GetPointer(capsule, NULL)
        self.loop = loop
        self.app = app
        self.router = router
        self.error_handler = error_handler
        self.debug = debug
        self.max_header_size = max_header_size
        self.max_url_size = max_url_size
        # complete plain request heads are read without llhttp (off only to compare the two)
        self.fast_heads = True
        self.max_headers = max_headers
        self.max_body_size = max_body_size
        self.keep_alive_timeout = keep_alive_timeout
        self.request_timeout = request_timeout
        self.min_body_rate = min_body_rate
        self.send_timeout = send_timeout
        self.lingering_timeout = lingering_timeout
        self.lingering_time = lingering_time
        self.write_high_water = write_high_water
        self.write_low_water = write_low_water
        self.app_methods = _STANDARD_METHODS
        self.server_line = (("Server: %s\r\n" % server_header).encode("latin-1")
                            if server_header else None)
        self.connections = {}
        self.open_conns = {}
        self.buf = _Buf(8192)
        self._update_date()
        self.ready = _deque()
        self.stream_pool = _StreamThreadPool(max_stream_threads, stream_thread_idle_timeout)
        self.producer_tasks = set()

        self.wakeup = <uv.uv_async_t*>malloc(uv.uv_handle_size(uv.UV_ASYNC))
        if self.wakeup == NULL:
            raise MemoryError()
        err = uv.uv_async_init(self.uvloop, self.wakeup, _on_wakeup_cb)
        if err < 0:
            free(self.wakeup)
            self.wakeup = NULL
            raise _uv_error(err)
        uv.catzilla_handle_set_data(<uv.uv_handle_t*>self.wakeup, <void*>self)
        Py_INCREF(self)
        self.open_handles += 1
        _live_handles += 1

        self.ticker = <uv.uv_timer_t*>malloc(uv.uv_handle_size(uv.UV_TIMER))
        if self.ticker == NULL:
            raise MemoryError()
        err = uv.uv_timer_init(self.uvloop, self.ticker)
        if err < 0:
            free(self.ticker)
            self.ticker = NULL
            raise _uv_error(err)
        uv.catzilla_handle_set_data(<uv.uv_handle_t*>self.ticker, <void*>self)
        Py_INCREF(self)
        self.open_handles += 1
        _live_handles += 1
        uv.uv_timer_start(self.ticker, _on_tick_cb, 1000, 1000)

    def listen(self, sock, int backlog=2048):
        """Serve on a bound socket object. The socket's fd is handed over to libuv."""
        global _live_handles
        cdef int err, fd
        if self.listener != NULL or self.closing:
            raise RuntimeError("this server is already listening or closed")
        self.sockname = sock.getsockname()
        sock.setblocking(False)
        fd = sock.detach()
        self.listener = <uv.uv_tcp_t*>malloc(uv.uv_handle_size(uv.UV_TCP))
        if self.listener == NULL:
            raise MemoryError()
        err = uv.uv_tcp_init(self.uvloop, self.listener)
        if err < 0:
            free(self.listener)
            self.listener = NULL
            raise _uv_error(err)
        uv.catzilla_handle_set_data(<uv.uv_handle_t*>self.listener, <void*>self)
        Py_INCREF(self)
        self.open_handles += 1
        _live_handles += 1
        err = uv.uv_tcp_open(self.listener, fd)
        if err == 0:
            err = uv.uv_listen(<uv.uv_stream_t*>self.listener, backlog, _on_connection_cb)
        if err < 0:
            uv.uv_close(<uv.uv_handle_t*>self.listener, _on_server_handle_close_cb)
            self.listener = NULL
            raise _uv_error(err)

    cdef void _accept(self, int status):
        global _live_handles
        cdef Connection conn
        cdef uv.uv_tcp_t* handle
        cdef int err
        if status < 0:
            _logger.warning("catzilla: accept failed: %s", _uv_error(status))
            return
        handle = <uv.uv_tcp_t*>malloc(uv.uv_handle_size(uv.UV_TCP))
        if handle == NULL:
            return
        err = uv.uv_tcp_init(self.uvloop, handle)
        if err < 0:
            free(handle)
            return
        err = uv.uv_accept(<uv.uv_stream_t*>self.listener, <uv.uv_stream_t*>handle)
        if err < 0:
            uv.uv_close(<uv.uv_handle_t*>handle, _free_handle_cb)
            return
        conn = Connection.__new__(Connection)
        conn.server = self
        conn.handle = handle
        uv.catzilla_handle_set_data(<uv.uv_handle_t*>handle, <void*>conn)
        Py_INCREF(conn)   # owned by the handle until its close callback
        self.open_handles += 1
        _live_handles += 1
        self.total_accepted += 1
        self.next_conn_id += 1
        conn.id = self.next_conn_id
        conn.connected_at = _time()
        self.connections[conn.id] = conn
        self.open_conns[conn.id] = conn
        uv.uv_tcp_nodelay(handle, 1)
        if self.closing:
            conn._close()
            return
        try:
            conn._start()
        except BaseException as exc:
            _report_error(exc)
            conn._close()

    cdef void _conn_left(self, Connection conn):
        if self.connections.pop(conn.id, None) is not None:
            self._check_idle()

    cdef void _check_idle(self):
        """A graceful stop's wait ends once no response is in flight: every connection has
        finished its response, and what libuv queued for the lingering ones has gone out."""
        if (self.idle_waiter is not None and not self.connections and self.fins_pending == 0
                and not self.idle_waiter.done()):
            self.idle_waiter.set_result(None)

    cdef void _drain_ready(self):
        cdef _Stream stream
        ready = self.ready
        while ready:
            stream = ready.popleft()
            stream.scheduled = False
            stream._flush()

    cdef void _track_task(self, object task):
        """An async producer's task (or its aclose()): shutdown waits for it to end."""
        self.producer_tasks.add(task)
        task.add_done_callback(self.producer_tasks.discard)

    cdef void _stop_for_shutdown(self, Connection conn):
        """Shutdown's policy for the stream on conn, whether it ran when the shutdown began or
        started during it. A download (a file, a Content-Length or chunked body) may finish
        within the deadline (close_all() cuts it there, with a reset), then the connection
        closes. A hub subscription, an SSE stream or any stream whose response asked for it
        (stop_on_shutdown) is stopped now (its producer's finally: runs): what was already
        written still goes out, then our FIN, without a terminating chunk."""
        cdef _Stream stream = conn.stream
        if stream._runs_through_shutdown():
            conn.close_after_response = True
        else:
            stream._cancel()
            conn._graceful_close()

    def pending_producer_tasks(self):
        """The async producers (and their clean-ups) still running, for shutdown to await."""
        return [t for t in list(self.producer_tasks) if not t.done()]

    cdef void _close_wakeup(self):
        if self.wakeup != NULL:
            uv.uv_close(<uv.uv_handle_t*>self.wakeup, _on_server_handle_close_cb)
            self.wakeup = NULL

    cdef void _fd_released(self):
        self.fd_holders -= 1
        if self.fd_holders == 0 and self.wakeup_close_pending:
            self._close_wakeup()

    cdef void _handle_closed(self):
        global _live_handles
        self.open_handles -= 1
        _live_handles -= 1
        if self.open_handles == 0 and self.closed_waiter is not None:
            if not self.closed_waiter.done():
                self.closed_waiter.set_result(None)

    cdef void _update_date(self):
        self.date_line = ("Date: %s\r\n" % _format_http_date()).encode("ascii")

    cdef void _tick(self):
        cdef uint64_t now = uv.uv_now(self.uvloop)
        cdef uint64_t keep_alive_ms = <uint64_t>(self.keep_alive_timeout * 1000)
        cdef uint64_t request_ms = <uint64_t>(self.request_timeout * 1000)
        cdef uint64_t send_ms = <uint64_t>(self.send_timeout * 1000)
        cdef uint64_t elapsed
        cdef Connection conn
        self._update_date()
        for conn in list(self.open_conns.values()):
            if conn.closed:
                continue
            if send_ms and conn._send_stalled(now, send_ms):
                # a client that stopped reading must not hold a socket, its response's
                # memory or a sendfile thread for ever (lingering or not)
                _logger.info("catzilla: closing connection %d: no progress sending for %.1f s",
                             conn.id, self.send_timeout)
                conn._close()
                continue
            if conn.read_paused and conn.busy and not conn.lingering and conn._hung_up():
                # a client gone while we hold off reading (requests queued behind a stream,
                # say): its FIN or reset waits unread, so the read callback cannot see it
                conn._close()
                continue
            if conn.lingering:
                # Once our FIN is out (a slow reader may take long to drain the response
                # before): until the client is quiet for lingering_timeout, but
                # lingering_time at most, whatever it sends (lingering only protects the
                # response from a reset; RFC 9112 9.6).
                if conn.linger_since and (
                        now - conn.last_activity > self.lingering_timeout * 1000.0
                        or now - conn.linger_since > self.lingering_time * 1000.0):
                    conn._close()
            elif conn.in_message and not conn.continue_owed:
                # (a request whose 100 Continue waits for its turn: the client waits for us)
                # The head within request_timeout of the first byte; a body that takes longer
                # must average min_body_rate from that byte (a 1 B/s body or chunk extensions
                # alone make no progress). Not while we hold off reading ourselves.
                elapsed = now - conn.message_started
                if ((elapsed > request_ms and not conn.read_paused
                        and (not conn.headers_done
                             or conn.cur_body_size * 1000.0 < self.min_body_rate * elapsed))
                        or (now - conn.last_activity > request_ms and not conn.read_paused)):
                    conn._reject(408, None)
            elif conn._idle() and now - conn.idle_since > keep_alive_ms:
                # idle since its last response (or accept): bytes that start no request,
                # such as empty lines, do not keep it open
                conn._close()
            elif (conn.stream is not None and conn.stream.send_timeout_ms
                    and conn.stream.wqs > 0
                    and now - conn.stream.last_progress > conn.stream.send_timeout_ms):
                # a client that does not drain its socket must not pin our memory
                _logger.info("catzilla: closing connection %d: no progress sending for %.1f s",
                             conn.id, conn.stream.send_timeout_ms / 1000)
                conn._close()

    # -- shutdown -----------------------------------------------------------------------

    def stop_listening(self):
        if self.listener != NULL:
            uv.uv_close(<uv.uv_handle_t*>self.listener, _on_server_handle_close_cb)
            self.listener = NULL

    def begin_shutdown(self):
        """Stop accepting; close idle connections; busy ones close after their response. A
        stream that ends by itself (a file, a Content-Length body) is a response like any
        other; any other stream is stopped now (see _stop_for_shutdown; one that starts while
        the server drains gets the same treatment)."""
        cdef Connection conn
        self.closing = True
        self.draining = True
        self.stop_listening()
        for conn in list(self.connections.values()):
            if conn._idle():
                conn._close()
            elif conn.stream is not None:
                self._stop_for_shutdown(conn)
            elif not conn.busy and not conn.in_message:
                conn._graceful_close()   # its last response is still going out
            else:
                conn.close_after_response = True
        self.idle_waiter = self.loop.create_future()
        self._check_idle()
        return self.idle_waiter

    def close_all(self):
        """Close every connection and handle now; returns a future done when all are closed.
        A connection whose response is unfinished (see Connection._in_flight) is reset."""
        cdef Connection conn
        self.closing = True
        self.stop_listening()
        for conn in list(self.open_conns.values()):
            if conn._in_flight():
                conn._reset()   # a response cut short must not look whole
            else:
                conn._close()
        if self.ticker != NULL:
            uv.uv_timer_stop(self.ticker)
            uv.uv_close(<uv.uv_handle_t*>self.ticker, _on_server_handle_close_cb)
            self.ticker = NULL
        self._drain_ready()
        if self.fd_holders == 0:
            self._close_wakeup()
        else:
            # sendfile workers still hold sockets; their last word arrives through the wake-up
            self.wakeup_close_pending = True
        self.closed_waiter = self.loop.create_future()
        if self.open_handles == 0:
            self.closed_waiter.set_result(None)
        return self.closed_waiter

    def stats(self):
        """Counters (any thread: the loop thread changes the registry meanwhile, so it is
        read through one C-level copy)."""
        cdef Connection c
        cdef _Stream stream
        cdef uint64_t sent = self.bytes_sent
        for c in list(self.connections.values()):
            stream = c.stream
            if stream is not None and stream.kind == "file":
                sent += stream.sent   # (a sendfile worker counts it as it goes)
        return {
            "total_accepted": self.total_accepted,
            "active": len(self.connections),
            "streams_active": self.streams_active,
            "total_streams": self.total_streams,
            "total_requests": self.total_requests,
            "bytes_sent": sent,
        }

    def connection_list(self):
        """A snapshot of the live connections, safe to take from any thread (one C-level
        copy: the loop thread adds and removes connections meanwhile)."""
        return list(self.connections.values())

    def debug_state(self):
        """Internal state of every open connection (for diagnosing a stuck shutdown)."""
        cdef Connection c
        rows = []
        for c in list(self.open_conns.values()):   # (also called from other threads)
            rows.append(dict(
                id=c.id, closed=c.closed, lingering=c.lingering, busy=c.busy, eof=c.eof,
                fin_sent=c.linger_since != 0,
                queued=0 if c.closed or c.handle == NULL else
                uv.catzilla_write_queue_size(<uv.uv_stream_t*>c.handle),
                pending=len(c.pending), close_deferred=c.close_deferred,
                stream=None if c.stream is None else dict(
                    kind=c.stream.kind, cancelled=c.stream.cancelled,
                    finished=c.stream.finished, holds_fd=c.stream.holds_fd,
                    chunks=len(c.stream.chunks), sent=c.stream.sent)))
        return dict(open_handles=self.open_handles, fd_holders=self.fd_holders,
                    direct_writes=self.direct_writes, direct_partial=self.direct_partial,
                    direct_refused=self.direct_refused,
                    wakeup=self.wakeup != NULL, ticker=self.ticker != NULL,
                    listener=self.listener != NULL, ready=len(self.ready),
                    fins_pending=self.fins_pending, conns=rows)

    @property
    def open_handle_count(self):
        return self.open_handles


from time import time as _time
