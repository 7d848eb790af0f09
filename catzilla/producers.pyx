# The producer threads' side of a stream: a sync generator or iterator run on a worker thread
# (waiting while the socket is backed up, its big chunks sent straight to the socket when
# nothing else is queued for it), and sendfile(2) of a file's byte range. What they make goes
# to the loop through _Stream._push (stream.pyx).

import os as _os
import select as _select


def _run_sync(_Stream stream):
    """Worker thread: iterate a sync producer, waiting while the socket is backed up.

    A big chunk goes straight to the socket from this thread when nothing else is queued
    for it (no hand-off to the loop, no wake-up); the rest goes through the loop."""
    cdef int err
    cdef Py_ssize_t produced = 0   # bytes of the producer's items so far
    cdef bint told = False         # its last word is pushed already
    cdef bint ended = False        # the producer ran out (not stopped)
    it = None
    failure = None
    writable = stream.writable
    writable.wait()   # the head goes first
    try:
        it = iter(stream.content)
        while not stream.cancelled:
            if stream.queued + stream.wqs > stream.high_water:
                writable.clear()
                if stream.queued + stream.wqs > stream.high_water and not stream.cancelled:
                    writable.wait()
                continue
            try:
                chunk = next(it)
            except StopIteration:
                ended = True
                break
            if stream.cancelled:
                break
            data = _encode_chunk(stream, chunk)
            if stream.mode == MODE_LENGTH:
                produced += PyBytes_GET_SIZE(data)
                if produced > stream.expected:
                    # An overrun: this item is not sent (the client sees a body cut
                    # short, not a whole one) and the producer stops here, not when the
                    # loop's writer sees it, meanwhile making items no one will send.
                    # Told at once, not after the producer's clean-up, which may take long.
                    stream._push(_overrun(stream))
                    told = True
                    break
            if (PyBytes_GET_SIZE(data) >= DIRECT_CHUNK
                    and _claim_direct(stream, PyBytes_GET_SIZE(data))):
                err = _send_direct(stream, data)
                if err:
                    failure = _Failure(OSError(err, _os.strerror(err)), quiet=True)
                    break
            elif PyBytes_GET_SIZE(data):
                stream._push(data)
        if ended:
            data = _encoder_tail(stream)
            if PyBytes_GET_SIZE(data):
                produced += PyBytes_GET_SIZE(data)
                if stream.mode == MODE_LENGTH and produced > stream.expected:
                    stream._push(_overrun(stream))
                    told = True
                else:
                    stream._push(data)
    except BaseException as exc:
        failure = _Failure(exc)
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            try:
                close()
            except BaseException as exc:
                if told:   # the overrun is reported already: this one still is
                    _log_close_error(stream, exc)
                elif failure is None:
                    failure = _Failure(exc)
        if not told:
            stream._push(failure if failure is not None else _END)


cdef bint _claim_direct(_Stream stream, Py_ssize_t ln):
    """Producer thread, GIL held: may it write a chunk of ln bytes to the socket itself?
    Only when everything before it has reached the kernel. While it writes, the loop
    writes nothing to this socket and does not close it (holds_fd)."""
    cdef Connection conn = stream.conn
    if (stream.fd < 0 or stream.cancelled or stream.finished or stream.scheduled
            or stream.chunks or conn.closed or conn.lingering or conn.writing
            or conn.stream is not stream
            or uv.catzilla_write_queue_size(<uv.uv_stream_t*>conn.handle) != 0):
        return False
    if stream.mode == MODE_LENGTH and stream.sent + ln > stream.expected:
        return False   # (bytes not the producer's, e.g. a retry line): the loop reports
    stream.direct = True
    stream.holds_fd = True
    stream.server.fd_holders += 1
    return True

cdef int _send_direct(_Stream stream, bytes data):
    """Producer thread, after _claim_direct: one non-blocking send of the framed chunk
    with the GIL released. What the kernel does not take goes to the loop's queue.
    Returns 0, or the errno of a failed send (the client has gone)."""
    cdef Connection conn = stream.conn
    cdef Server srv = stream.server
    cdef char head[CHUNK_HEAD_MAX]
    cdef int hl = 0, tl = 0
    cdef const char* p = PyBytes_AS_STRING(data)
    cdef Py_ssize_t ln = PyBytes_GET_SIZE(data)
    cdef Py_ssize_t done, total
    cdef int fd = stream.fd
    cdef int err = 0
    if stream.mode == MODE_CHUNKED:
        hl = _chunk_head(head, ln)
        tl = 2
    total = hl + ln + tl
    with nogil:
        done = catzilla_send_framed(fd, head, hl, p, ln, "\r\n", tl)
    # still `direct` until what the kernel did not take is queued: nothing may be written
    # between the two parts of a chunk (allocating the rest can let the loop run)
    if done > 0:
        stream.sent += ln
        conn.bytes_sent += done
        srv.bytes_sent += done
        srv.direct_writes += 1
        stream.direct_seq += 1
        if done < total:
            srv.direct_partial += 1
            # the rest, framing included, is written by the loop when the socket drains
            rest = (PyBytes_FromStringAndSize(head, hl) + data + _CRLF[:tl])[done:]
            stream._push(_Raw(rest))
    elif done == -EAGAIN:
        srv.direct_refused += 1
        stream._push(data)
    else:
        err = <int>-done
    stream.direct = False
    if not stream.cancelled and not srv.wakeup_close_pending:
        stream.holds_fd = False
        srv.fd_holders -= 1
    else:
        # The loop closed (or is closing) the connection meanwhile and waits for this
        # thread to let go of the socket: tell it now, not after the producer's clean-up.
        stream._push(_LET_GO)
    if stream.chunks and not stream.scheduled:
        stream._schedule()   # e.g. a ping queued while we wrote
    return err


def _run_file(_Stream stream):
    """Worker thread: sendfile(2) a byte range of a file to the socket."""
    failure = None
    cdef int sock_fd
    try:
        stream.writable.wait()   # set once the head has left (or on cancel)
        path, offset, count = stream.content
        sock_fd = stream.fd
        end = offset + count
        poller = _select.poll()
        poller.register(sock_fd, _select.POLLOUT)
        with open(path, "rb") as f:
            file_fd = f.fileno()
            while offset < end and not stream.cancelled:
                try:
                    n = _os.sendfile(sock_fd, file_fd, offset, min(end - offset, 1 << 26))
                except BlockingIOError:
                    poller.poll(500)
                    continue
                if n == 0:
                    raise RuntimeError("%s shrank while it was being sent" % (path,))
                offset += n
                stream.sent += n
    except (BrokenPipeError, ConnectionResetError) as exc:
        failure = _Failure(exc, quiet=True)
    except BaseException as exc:
        failure = _Failure(exc, quiet=stream.cancelled)
    finally:
        stream._push(failure if failure is not None else _END)
