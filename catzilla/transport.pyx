# The transport: one accepted libuv TCP handle and nothing of HTTP.
#
# It reads into the loop's shared buffer, writes vectored buffers whose owners stay alive until
# libuv's write callback, counts what libuv and the kernel still hold, pauses and resumes
# reading, half-closes (our FIN after what is queued), lingers, resets, and closes. It tells its
# protocol what happened through a few hooks (the Protocol interface, overridden by the
# protocol's class: see http1.pyx):
#
#   _data_received(data, n)   bytes from the peer (not while lingering or closed)
#   _eof_received()           the peer's FIN, while the connection is neither lingering nor closed
#   _write_queued()           libuv took part of a write into its queue
#   _write_done()             a queued write completed (the socket drained some)
#   _closing()                our graceful close began (nothing more is answered)
#   _connection_lost()        the connection is closing: stop work; True defers the handle's
#                             close (a worker thread still writes to its fd: close_deferred)
#   _released()               the handle is closed and freed: drop references

import logging as _logging
from asyncio import _get_running_loop

from catzilla import datastructures as _ds

_logger = _logging.getLogger("catzilla")

cdef extern from *:
    """
    #include "includes/catzilla_uv.h"
    #include <arpa/inet.h>
    #include <netinet/in.h>
    #include <sys/socket.h>

    /* One read buffer per loop thread: the protocol consumes each read synchronously (it
       copies what it keeps), so connections can share it. */
    static __thread char catzilla_read_buf[65536];

    static void catzilla_alloc_cb(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
        buf->base = catzilla_read_buf;
        buf->len = sizeof(catzilla_read_buf);
    }

    /* Writes the numeric host of a peer address into out; returns its port or -1. */
    static int catzilla_peer(uv_tcp_t* handle, char* out, size_t outlen) {
        struct sockaddr_storage ss;
        int len = sizeof(ss);
        if (uv_tcp_getpeername(handle, (struct sockaddr*)&ss, &len) != 0) return -1;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in* a = (struct sockaddr_in*)&ss;
            if (!inet_ntop(AF_INET, &a->sin_addr, out, outlen)) return -1;
            return ntohs(a->sin_port);
        }
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6* a = (struct sockaddr_in6*)&ss;
            if (!inet_ntop(AF_INET6, &a->sin6_addr, out, outlen)) return -1;
            return ntohs(a->sin6_port);
        }
        return -1;
    }

    /* Have close(fd) send a reset, not a FIN. */
    static void catzilla_linger0(int fd) {
        struct linger lg;
        lg.l_onoff = 1;
        lg.l_linger = 0;
        (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    """
    void catzilla_alloc_cb(uv.uv_handle_t* handle, size_t suggested, uv.uv_buf_t* buf) nogil
    int catzilla_peer(uv.uv_tcp_t* handle, char* out, size_t outlen) nogil
    void catzilla_linger0(int fd) nogil

cdef extern from "<sys/ioctl.h>" nogil:
    int ioctl(int fd, unsigned long request, ...)

cdef extern from "<linux/sockios.h>" nogil:
    unsigned long SIOCOUTQ

cdef extern from "<poll.h>" nogil:
    struct pollfd:
        int fd
        short events
        short revents
    int poll(pollfd* fds, unsigned long nfds, int timeout)
    enum:
        POLLRDHUP   # (Python.h defines _GNU_SOURCE)
        POLLHUP
        POLLERR


cdef void _report_error(object exc):
    try:
        _logger.error("catzilla: unexpected error in the server core", exc_info=exc)
    except BaseException:
        pass


cdef void _on_read_cb(uv.uv_stream_t* stream, ssize_t nread,
                      const uv.uv_buf_t* buf) noexcept with gil:
    cdef Transport t = <Transport>uv.catzilla_handle_get_data(<uv.uv_handle_t*>stream)
    try:
        t._on_read(nread, buf.base)
    except BaseException as exc:
        _report_error(exc)
        t._close()


cdef void _on_shutdown_cb(uv.uv_shutdown_t* req, int status) noexcept with gil:
    # (called for every uv_shutdown, with UV_ECANCELED when the handle closes first)
    cdef Transport t = <Transport>uv.catzilla_req_get_data(<uv.uv_req_t*>req)
    cdef Server srv = t.server
    free(req)
    try:
        if status < 0 or t.eof:
            t._close()
        elif not t.closed:
            # what was queued and our FIN are out: the linger timer starts now
            t.linger_since = uv.uv_now(srv.uvloop)
            t.last_activity = t.linger_since
    except BaseException as exc:
        _report_error(exc)
    finally:
        srv.fins_pending -= 1
        srv._check_idle()


cdef void _on_conn_close_cb(uv.uv_handle_t* handle) noexcept with gil:
    cdef Transport t = <Transport>uv.catzilla_handle_get_data(handle)
    try:
        t._after_close()
    except BaseException as exc:
        _report_error(exc)
    finally:
        Py_DECREF(t)


cdef class _WriteReq:
    """Holds a uv_write_t and the Python objects its buffers point into until libuv is done."""

    def __dealloc__(self):
        if self.req != NULL:
            free(self.req)
            self.req = NULL


cdef void _on_write(uv.uv_write_t* req, int status) noexcept with gil:
    cdef _WriteReq wr = <_WriteReq>uv.catzilla_req_get_data(<uv.uv_req_t*>req)
    cdef Transport t = wr.conn
    try:
        wr.keep = None
        t._on_write_done(status)
    except BaseException as exc:
        _report_error(exc)
    finally:
        Py_DECREF(wr)


cdef class Transport:
    """One accepted TCP connection, alive from accept to its libuv close callback."""

    def __cinit__(self):
        self.handle = NULL

    def __dealloc__(self):
        if self.handle != NULL:
            # Only reached if the handle was never opened (accept failed before INCREF).
            free(self.handle)
            self.handle = NULL

    cdef int _start(self) except -1:
        cdef int err
        self.last_activity = uv.uv_now(self.server.uvloop)
        self.idle_since = self.last_activity
        err = uv.uv_read_start(<uv.uv_stream_t*>self.handle, catzilla_alloc_cb, _on_read_cb)
        if err < 0:
            raise _uv_error(err)
        return 0

    # -- the protocol's hooks (see the top of this file) -------------------------------------

    cdef void _data_received(self, const char* data, Py_ssize_t n):
        pass

    cdef void _eof_received(self):
        self._close()

    cdef void _write_queued(self):
        pass

    cdef void _write_done(self):
        pass

    cdef void _closing(self):
        pass

    cdef bint _connection_lost(self):
        return False

    cdef void _released(self):
        pass

    # -- reading -----------------------------------------------------------------------------

    cdef void _on_read(self, Py_ssize_t nread, const char* data):
        if nread == 0:
            return
        if nread < 0:
            if nread == uv.UV_EOF:
                self.eof = True
                if (self.lingering and not self.closed and uv.catzilla_write_queue_size(
                        <uv.uv_stream_t*>self.handle) > 0):
                    # The response is done and queued, our FIN behind it: closing now would
                    # drop the queue. _on_shutdown_cb closes once it is out (send_timeout
                    # still holds for a client that stops reading).
                    return
                if self.lingering or self.closed:
                    self._close()   # the client has our FIN and closes too
                else:
                    self._eof_received()
            else:
                self._close()
            return
        self.last_activity = uv.uv_now(self.server.uvloop)
        if self.lingering or self.closed:
            return  # discarding what a closing client still sends
        self._data_received(data, nread)

    cdef void _pause_reading(self):
        if not self.read_paused and not self.closed:
            uv.uv_read_stop(<uv.uv_stream_t*>self.handle)
            self.read_paused = True

    cdef void _resume_reading(self):
        if self.read_paused and not self.closed:
            self.read_paused = False
            # the client could not send while we held off: its read clock starts again
            self.last_activity = uv.uv_now(self.server.uvloop)
            uv.uv_read_start(<uv.uv_stream_t*>self.handle, catzilla_alloc_cb, _on_read_cb)

    # -- writing -----------------------------------------------------------------------------

    cdef int _write(self, uv.uv_buf_t* bufs, PyObject** owners, int nbufs) except -1:
        """Send bufs in order; owners[i] is the object bufs[i] points into, or NULL for
        memory that is reused after this call (it is copied if the kernel does not take it)."""
        cdef Py_ssize_t total = 0
        cdef Py_ssize_t done
        cdef int i = 0, j, err
        cdef bint was_writing
        cdef list keep
        cdef bytes copy
        cdef _WriteReq wr
        cdef size_t queued
        cdef Server srv = self.server
        if self.closed:
            return 0
        # No producer thread writes to the socket until what this call does not send now
        # is in libuv's queue: not while the GIL is released for a big copy, nor while
        # allocating (a collection can run Python code that lets other threads in).
        was_writing = self.writing
        self.writing = True
        try:
            for j in range(nbufs):
                total += bufs[j].len
            self.bytes_sent += total
            srv.bytes_sent += total
            if total >= 65536:
                # A big copy into the kernel: let producer threads run meanwhile. Only this
                # (loop) thread touches the handle; bufs point into objects we hold.
                with nogil:
                    done = uv.uv_try_write(<uv.uv_stream_t*>self.handle, bufs, nbufs)
            else:
                done = uv.uv_try_write(<uv.uv_stream_t*>self.handle, bufs, nbufs)
            if done == total:
                return 0
            if done < 0:
                if done != uv.UV_EAGAIN:
                    self._close()
                    return 0
                done = 0
            while done > 0:
                if <size_t>done >= bufs[i].len:
                    done -= bufs[i].len
                    i += 1
                else:
                    bufs[i].base += done
                    bufs[i].len -= done
                    done = 0
            keep = []
            for j in range(i, nbufs):
                if owners[j] == NULL:
                    copy = PyBytes_FromStringAndSize(bufs[j].base, bufs[j].len)
                    bufs[j].base = PyBytes_AS_STRING(copy)
                    keep.append(copy)
                else:
                    keep.append(<object>owners[j])
            wr = _WriteReq.__new__(_WriteReq)
            wr.req = <uv.uv_write_t*>malloc(uv.uv_req_size(uv.UV_WRITE))
            if wr.req == NULL:
                raise MemoryError()
            wr.conn = self
            wr.keep = keep
            uv.catzilla_req_set_data(<uv.uv_req_t*>wr.req, <void*>wr)
            queued = uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle)
            err = uv.uv_write(wr.req, <uv.uv_stream_t*>self.handle, bufs + i, nbufs - i, _on_write)
            if err < 0:
                self._close()
                return 0
            Py_INCREF(wr)
            # the send timeout: its clock starts with a queue; its baseline grows by what
            # this write added, so what the client takes before the next check shows
            if queued == 0:
                self.write_progress = uv.uv_now(srv.uvloop)
                self.seen_queue = self._unsent()
            else:
                self.seen_queue += (uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle)
                                    - queued)
            self._write_queued()
            return 0
        finally:
            self.writing = was_writing

    cdef void _on_write_done(self, int status):
        if status < 0:
            self._close()
            return
        self.idle_since = uv.uv_now(self.server.uvloop)   # idle from when the response is out
        self.write_progress = self.idle_since
        self._write_done()

    cdef bint _hung_up(self):
        """Whether the client has closed, half-closed or reset its side, seen without reading
        (for a connection whose reading we hold off: the FIN waits behind unread bytes)."""
        cdef pollfd p
        p.fd = -1
        if uv.uv_fileno(<uv.uv_handle_t*>self.handle, &p.fd) < 0:
            return False
        p.events = POLLRDHUP
        p.revents = 0
        return poll(&p, 1, 0) > 0 and (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0

    cdef size_t _unsent(self):
        """Bytes for the client not yet taken by it: in libuv's write queue and in the
        kernel's send queue (SIOCOUTQ: not yet acknowledged by the client)."""
        cdef int fd = -1
        cdef int outq = 0
        if uv.uv_fileno(<uv.uv_handle_t*>self.handle, &fd) < 0 or ioctl(fd, SIOCOUTQ, &outq) < 0:
            outq = 0
        return uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle) + <size_t>outq

    cdef bint _send_stalled(self, uint64_t now, uint64_t limit):
        """True when bytes in libuv's write queue have waited more than limit ms without any
        being taken. Taken means read by the client: a send buffer of megabytes can take a
        slow reader's bytes for seconds before libuv may write again, so the kernel's queue
        is counted too."""
        cdef size_t unsent
        if uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle) == 0:
            return False
        unsent = self._unsent()
        if unsent < self.seen_queue:
            self.write_progress = now
        self.seen_queue = unsent
        return now - self.write_progress > limit

    # -- closing -----------------------------------------------------------------------------

    cdef void _graceful_close(self):
        """Flush what is queued, send FIN, and close when the client closes (or after a linger
        timeout), so a client that is still sending does not get a reset that eats our answer."""
        cdef uv.uv_shutdown_t* req
        cdef int err
        if self.closed or self.lingering:
            return
        self.lingering = True
        self._closing()
        self.last_activity = uv.uv_now(self.server.uvloop)
        if self.eof and uv.catzilla_write_queue_size(<uv.uv_stream_t*>self.handle) == 0:
            self._close()
            return
        req = <uv.uv_shutdown_t*>malloc(uv.uv_req_size(uv.UV_SHUTDOWN))
        if req == NULL:
            self._close()
            return
        uv.catzilla_req_set_data(<uv.uv_req_t*>req, <void*>self)
        err = uv.uv_shutdown(req, <uv.uv_stream_t*>self.handle, _on_shutdown_cb)
        if err < 0:
            free(req)
            self._close()
            return
        # a graceful stop waits for what libuv still queues for it (close_all would drop it)
        self.server.fins_pending += 1
        self.server._conn_left(self)
        if self.read_paused and not self.eof:
            self._resume_reading()

    cdef void _reset(self):
        """Close with a reset (what is queued is dropped, and the client sees it was)."""
        cdef int fd = -1
        if self.closed:
            return
        if uv.uv_fileno(<uv.uv_handle_t*>self.handle, &fd) == 0:
            catzilla_linger0(fd)
        self._close()

    cdef void _close(self):
        if self.closed:
            return
        self.closed = True
        self.server.open_conns.pop(self.id, None)
        self.server._conn_left(self)
        if self._connection_lost():
            # a worker thread still uses the fd: close when it has let go
            self.close_deferred = True
            return
        self._close_handle()

    cdef void _close_handle(self):
        uv.uv_close(<uv.uv_handle_t*>self.handle, _on_conn_close_cb)

    cdef void _after_close(self):
        free(self.handle)
        self.handle = NULL
        self._released()
        self.server._handle_closed()

    # -- Python-visible ----------------------------------------------------------------------

    @property
    def client(self):
        """The peer's (host, port), or None when the socket has no peer any more."""
        cdef char host[64]
        cdef int port
        if self.peer is None and not self.closed:
            port = catzilla_peer(self.handle, host, sizeof(host))
            if port >= 0:
                self.peer = _ds.Address(host.decode("ascii"), port)
        return self.peer

    def close(self):
        """Close this connection now (its handler or stream is cancelled). From a thread that
        is not its event loop's (a sync producer's, say), the close is handed to the loop,
        which does it soon after this returns: only the loop touches its libuv handle."""
        if self.closed:
            return
        loop = self.server.loop
        if _get_running_loop() is not loop:
            try:
                loop.call_soon_threadsafe(self.close)
            except RuntimeError:
                pass   # the loop is closed: so is the connection
            return
        self._close()
