# One path from a Request to its response: route, the handler call (sync, or async as a task on
# the loop), what it returned turned into a response (written whole by http1.pyx, or started
# here as a stream: its head, framing and producer; stream.pyx runs it), and the error policy
# (HTTPException, a handler's exception: app.error_handler, else a 500).

import codecs as _codecs
import threading as _threading
from contextvars import copy_context as _copy_context
from functools import partial as _partial
from inspect import iscoroutine as _iscoroutine

from catzilla.exceptions import HTTPException as _HTTPException
from catzilla.files import FileResponse as _FileResponse
from catzilla.hub import Subscription as _Subscription
from catzilla.responses import (
    EventSourceResponse as _EventSourceResponse,
    JSONResponse as _JSONResponse,
    Response as _Response,
    StreamingResponse as _StreamingResponse,
    to_response as _to_response,
)

cdef void _dispatch(Connection conn, Request req):
    cdef Server srv = conn.server
    cdef tuple match
    cdef int status
    conn.busy = True
    conn.busy_request = req
    conn.last_path = req.raw_path
    conn.requests += 1
    srv.total_requests += 1
    try:
        match = srv.router.match(req.method, req.raw_path.decode("latin-1"))
        status = match[0]
        if status == 200:
            req.path_params = match[2]
            # a parameter can hold "..", a leading "/" or NUL only if the raw path has
            # "%", "..", "//" (an empty segment) or a backslash
            if match[2] and _path_may_smuggle(req.raw_path):
                _check_path_params(match[2])
            # each request in its own copy of the loop's context: a ContextVar a
            # handler sets is not seen by the next request (found by a review)
            req.context = _copy_context()
            result = req.context.run(match[1], req)
        elif status == 404:
            raise _HTTPException(404)
        else:
            raise _HTTPException(405, headers={"Allow": match[1]})
    except BaseException as exc:
        _send_exception(conn, req, exc)
        return
    _finish(conn, req, result)

cdef bint _path_may_smuggle(bytes raw_path):
    """Whether a raw path has "%", "..", "//" or a backslash (one C scan: `b"%" in path`
    first tries the needle as an int, and raises and clears a TypeError each time)."""
    cdef const char* p = PyBytes_AS_STRING(raw_path)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(raw_path), i
    cdef char c, prev = 0
    for i in range(n):
        c = p[i]
        if c == b"%" or c == b"\\" or (c == prev and (c == b"." or c == b"/")):
            return True
        prev = c
    return False


cdef void _finish(Connection conn, Request req, object result):
    try:
        if isinstance(result, _Response):
            if isinstance(result, _StreamingResponse):
                _start_stream(conn, req, result, "iter")
                return
            if isinstance(result, _FileResponse):
                prepared = result.prepare(req)   # for this request alone
                if getattr(prepared, "file_range", None) is None:
                    conn._write_response(req, prepared)     # 304, 404, 416
                else:
                    _start_stream(conn, req, prepared, "file")
                    return
            else:
                conn._write_response(req, result)
        elif hasattr(result, "__await__"):
            if req.context is not None and _iscoroutine(result):
                conn.task = conn.server.loop.create_task(result, context=req.context)
            else:
                conn.task = _ensure_future(result, loop=conn.server.loop)
            conn.task.add_done_callback(conn._task_done)
            return
        else:
            conn._write_response(req, _to_response(result))
    except BaseException as exc:
        _send_exception(conn, req, exc)
        return
    conn._response_done()

cdef void _handler_done(Connection conn, object task):
    if task is not conn.task:
        return
    conn.task = None
    if conn.closed:
        return
    req = conn.busy_request
    if task.cancelled():
        # Not by us (_close lets go of its task before cancelling it): the handler
        # itself ended in a CancelledError, e.g. awaiting a future someone cancelled.
        # The client is still there and gets a 500, like for any other exception.
        _send_exception(conn, req, _CancelledError(
            "the async handler ended in CancelledError while its client was connected"))
        return
    exc = task.exception()
    if exc is not None:
        _send_exception(conn, req, exc)
    else:
        _finish(conn, req, task.result())

cdef void _send_exception(Connection conn, Request req, object exc):
    cdef Server srv = conn.server
    try:
        response = srv.error_handler(req, exc)
        conn._write_response(req, response)
    except BaseException as exc2:
        _report_error(exc2)
        try:
            conn.close_after_response = True
            conn._write_simple(500, b'{"detail":"Internal Server Error"}',
                               [(b"Content-Type", _JSON_TYPE)], req.method == "HEAD",
                               False, False)
        except BaseException as exc3:
            _report_error(exc3)
            conn._close()
            return
    conn._response_done()


cdef int _start_stream(Connection conn, Request req, object response, str kind) except -1:
    cdef Server srv = conn.server
    cdef _Buf buf = srv.buf
    cdef _Stream stream
    cdef uv.uv_buf_t b
    cdef PyObject* owner = NULL
    cdef int status = response.status_code
    cdef int flags
    cdef bint http10 = req.http_version == "1.0"
    cdef bint head_only = req.method == "HEAD" or not _status_has_body(status)
    cdef bint keep = (req.keep_alive and not conn.close_after_response
                      and not srv.draining and not http10)
    content = response.content if kind != "file" else response.file_range
    if kind == "iter" and isinstance(content, _Subscription):
        kind = "hub"
    elif kind == "iter":
        if callable(content) and not hasattr(content, "__iter__") and not hasattr(
                content, "__aiter__"):
            # in the request's context, like the handler that returned it
            content = req.context.run(content) if req.context is not None else content()
        if hasattr(content, "__aiter__"):
            kind = "async"
        elif isinstance(content, (str, bytes, bytearray, memoryview)):
            content = (content,)
            kind = "sync"
        elif hasattr(content, "__iter__"):
            kind = "sync"
        else:
            raise TypeError("StreamingResponse content must be an iterable, an iterator, a "
                            "generator or an async generator, got %s"
                            % type(content).__name__)
    stream = _Stream.__new__(_Stream)
    stream.conn = conn
    stream.server = srv
    stream.request = req
    stream.kind = kind
    stream.content = content
    if response.charset != "utf-8" and not isinstance(response, _EventSourceResponse):
        # the charset the Content-Type names (a codec name, responses._codec_of); one
        # encoder for the whole body: a UTF-16 BOM once, not before every chunk
        stream.encoder = _codecs.getincrementalencoder(response.charset)()
    if kind != "file":
        stream.stop_on_shutdown = response.stop_on_shutdown
    if isinstance(response, _EventSourceResponse):
        stream.sse = True
        if response.ping:
            stream.ping_ms = <uint64_t>(response.ping * 1000)
        if response.send_timeout:
            stream.send_timeout_ms = <uint64_t>(response.send_timeout * 1000)
        if kind == "hub":
            stream.subscription = content
        if response.retry is not None and not head_only:
            # first on the wire: queued before any producer can add to the stream
            stream._append(_sse_encode_item({"retry": response.retry}))
    try:
        # the head first: a bad header fails here, before any producer runs
        buf.size = 0
        flags = _put_head(srv.server_line, srv.date_line, buf, status,
                          response.raw_headers, -1, keep, http10,
                          not http10 and not head_only)
        _check_user_framing(response.raw_headers, flags)
        if flags & HEAD_HAS_LENGTH:
            stream.mode = MODE_LENGTH
            stream.expected = _content_length_of(response.raw_headers)
        elif http10:
            stream.mode = MODE_CLOSE
        else:
            stream.mode = MODE_CHUNKED
    except BaseException:
        if kind == "sync" or kind == "async":
            _close_producer(content, srv)
        raise
    if not head_only and kind != "async" and kind != "hub":
        stream.writable = _threading.Event()   # set by _begin, once the head is out
        if kind == "file":
            job = _partial(_run_file, stream)
        elif req.context is not None:
            # the producer sees the handler's context (a copy: a thread enters it)
            job = _partial(req.context.copy().run, _run_sync, stream)
        else:
            job = _partial(_run_sync, stream)
        if not srv.stream_pool.try_submit(job):
            if kind == "sync":
                _close_producer(content, srv)
            conn._write_response(req, _JSONResponse(
                {"detail": "Too many active streams, retry later"}, 503,
                {"Retry-After": "1"}))
            conn._response_done()
            return 0
    elif head_only and kind != "file" and kind != "hub":
        _close_producer(content, srv)
    if (flags & HEAD_USER_CLOSE) or not keep:
        conn.close_after_response = True
    b.base = buf.data
    b.len = buf.size
    conn._write(&b, &owner, 1)
    if head_only:
        conn._response_done()
        return 0
    conn.stream = stream
    if conn.read_paused and not conn.pending:
        # held off for an earlier response's backlog: a stream reads on (see _write)
        conn._resume_reading()
    try:
        stream._begin()
    except BaseException as exc:
        # The head is out: no other response may follow it (an error response here would
        # be read as part of this body). End it as a failed producer's is: what was sent
        # stays sent, no terminating chunk, the connection closes.
        _logger.error("Exception starting the stream of %s %s; the response is cut off",
                      req.method, req.path, exc_info=(type(exc), exc, exc.__traceback__))
        if stream.holds_fd:
            # (a worker may be using the socket: stop it; the close waits for it)
            stream._cancel()
            conn._close()
        elif not stream.finished:
            stream._end(_Failure(exc, quiet=True), True)
        return 0
    if srv.draining and conn.stream is stream and not stream.finished:
        # started while the server drains (e.g. an async handler in flight at SIGTERM):
        # the shutdown's policy applies to it as to the streams it found running
        srv._stop_for_shutdown(conn)
    return 0


cdef void _check_path_params(dict params):
    """Path parameters are joined to file paths by users: refuse '..' segments, absolute
    values and NUL, which only an encoded request path can produce."""
    for value in params.values():
        if type(value) is str:
            v = <str>value
            if "\x00" in v or v.startswith("/") or v.startswith("\\") or ".." in v.replace(
                    "\\", "/").split("/"):
                raise _HTTPException(400, "Invalid path parameter")
