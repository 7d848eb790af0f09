# Declarations of the extension types of catzilla._core, shared by its included concern files.
from cpython.ref cimport PyObject
from libc.stdint cimport uint64_t
cimport catzilla.includes.uv as uv


cdef class _Buf:
    """A growable byte buffer reused for serialising response heads."""
    cdef char* data
    cdef Py_ssize_t size
    cdef Py_ssize_t cap
    cdef int reserve(self, Py_ssize_t extra) except -1
    cdef int put(self, const char* p, Py_ssize_t n) except -1
    cdef int put_bytes(self, bytes b) except -1


cdef class _WriteReq:
    cdef uv.uv_write_t* req
    cdef Transport conn
    cdef object keep


cdef class _Stream:
    cdef Connection conn
    cdef readonly Server server
    cdef Request request
    cdef object content
    cdef readonly str kind
    cdef int mode
    cdef Py_ssize_t expected
    cdef readonly Py_ssize_t sent
    cdef public Py_ssize_t queued
    cdef public Py_ssize_t wqs
    cdef Py_ssize_t high_water
    cdef Py_ssize_t low_water
    cdef readonly bint cancelled
    cdef bint finished
    cdef bint scheduled
    cdef public bint holds_fd
    cdef object chunks
    cdef object writable
    cdef object drained
    cdef object task
    cdef bint sse
    cdef bint stop_on_shutdown   # a graceful stop ends it at once (SSE, hub, or asked)
    cdef object encoder          # str chunks' incremental encoder when not UTF-8 (else None)
    cdef bint zero_copy
    cdef uv.uv_timer_t* ping_timer
    cdef uint64_t ping_ms
    cdef public uint64_t send_timeout_ms
    cdef public uint64_t last_progress
    cdef Py_ssize_t seen_sent    # `sent` at the last check (a sendfile worker counts it)
    cdef object subscription
    cdef int fd                  # the socket a worker writes to itself (-1 until _begin)
    cdef bint direct             # a producer thread is writing to fd right now
    cdef uint64_t direct_seq     # direct writes so far (a ping skips a busy interval)
    cdef uint64_t ping_seen      # direct_seq at the last ping tick

    cdef int _begin(self) except -1
    cdef void _schedule(self)
    cdef void _cancel(self)
    cdef void _flush(self)
    cdef void _update_backlog(self)
    cdef void _end(self, object terminal, bint stop=*)
    cdef void _halt(self)
    cdef void _append(self, bytes data)
    cdef void _start_ping(self)
    cdef void _stop_ping(self)
    cdef void _retire(self)
    cdef bint _runs_through_shutdown(self)


cdef class Server:
    cdef uv.uv_loop_t* uvloop
    cdef uv.uv_tcp_t* listener
    cdef uv.uv_timer_t* ticker
    cdef readonly object loop
    cdef readonly object app
    cdef object router
    cdef object error_handler
    cdef readonly dict connections
    cdef dict open_conns
    cdef _Buf buf
    cdef bytes date_line
    cdef bytes server_line
    cdef readonly bint debug
    cdef readonly bint closing
    cdef readonly bint draining
    cdef int open_handles
    cdef object closed_waiter
    cdef public Py_ssize_t max_header_size
    cdef public Py_ssize_t max_body_size
    cdef public Py_ssize_t max_url_size
    cdef public bint fast_heads
    cdef public int max_headers
    cdef public double keep_alive_timeout
    cdef public double request_timeout
    cdef public double min_body_rate
    cdef public double send_timeout
    cdef public double lingering_timeout   # seconds of quiet that end lingering after our FIN
    cdef public double lingering_time      # the longest a connection lingers after our FIN
    cdef public Py_ssize_t write_high_water
    cdef public Py_ssize_t write_low_water
    cdef readonly uint64_t total_accepted
    cdef readonly uint64_t total_requests
    cdef readonly uint64_t bytes_sent
    cdef uint64_t next_conn_id
    cdef readonly object sockname
    cdef uv.uv_async_t* wakeup
    cdef object ready
    cdef readonly object stream_pool
    cdef readonly uint64_t streams_active
    cdef readonly uint64_t total_streams
    cdef int fd_holders
    cdef readonly uint64_t direct_writes     # chunks producer threads wrote themselves
    cdef readonly uint64_t direct_partial    # ... of which the kernel took only a part
    cdef readonly uint64_t direct_refused    # sends the kernel refused (full): the loop writes
    cdef bint wakeup_close_pending
    cdef public object app_methods
    cdef object idle_waiter
    cdef Py_ssize_t fins_pending   # graceful closes whose queued bytes and FIN are not out yet
    cdef set producer_tasks      # async producers' tasks (and aclose()s) shutdown waits for

    cdef void _accept(self, int status)
    cdef void _tick(self)
    cdef void _handle_closed(self)
    cdef void _update_date(self)
    cdef void _conn_left(self, Connection conn)
    cdef void _check_idle(self)
    cdef void _drain_ready(self)
    cdef void _close_wakeup(self)
    cdef void _fd_released(self)
    cdef void _track_task(self, object task)
    cdef void _stop_for_shutdown(self, Connection conn)


ctypedef struct LineScan:
    # a request line read ahead of llhttp (http1.pyx: _scan_line)
    int state
    int flags
    Py_ssize_t count   # bytes of the part being read (the method, target or version)


ctypedef struct ChunkScan:
    # a chunked body's framing, followed to find where the request ends (http1.pyx: _chunked_end)
    int state
    int eol            # _blank_line_end's state in the trailer section
    uint64_t left      # the chunk's size as read so far, then its data bytes still to come


cdef class Transport:
    """transport.pyx: the libuv TCP handle, its reads, writes and closing; no HTTP."""
    cdef Server server
    cdef uv.uv_tcp_t* handle
    cdef readonly uint64_t id
    cdef readonly double connected_at
    cdef readonly uint64_t bytes_sent
    cdef readonly bint closed
    cdef object peer
    cdef bint read_paused
    cdef bint lingering
    cdef bint eof
    cdef bint close_deferred
    cdef bint writing            # the loop is in _flush or _write: no producer thread writes
    cdef uint64_t last_activity     # the last read
    cdef uint64_t idle_since        # accept, or the last write libuv completed
    cdef uint64_t linger_since      # our FIN went out (0: not yet)
    cdef uint64_t write_progress    # libuv's write queue last took a write or started
    cdef size_t seen_queue          # its size at the last check of the send timeout

    cdef int _start(self) except -1
    # the protocol's hooks
    cdef void _data_received(self, const char* data, Py_ssize_t n)
    cdef void _eof_received(self)
    cdef void _write_queued(self)
    cdef void _write_done(self)
    cdef void _closing(self)
    cdef bint _connection_lost(self)
    cdef void _released(self)
    # the transport's own
    cdef void _on_read(self, Py_ssize_t nread, const char* data)
    cdef void _pause_reading(self)
    cdef void _resume_reading(self)
    cdef int _write(self, uv.uv_buf_t* bufs, PyObject** owners, int nbufs) except -1
    cdef void _on_write_done(self, int status)
    cdef bint _hung_up(self)
    cdef size_t _unsent(self)
    cdef bint _send_stalled(self, uint64_t now, uint64_t limit)
    cdef void _graceful_close(self)
    cdef void _reset(self)
    cdef void _close(self)
    cdef void _close_handle(self)
    cdef void _after_close(self)


cdef class Http1Parser(Transport):
    """http1_parse.pyx: the reading half of an HTTP/1.1 connection."""
    cdef object parser
    # the request being parsed
    cdef Request cur
    cdef list cur_headers
    cdef list cur_trailers       # a chunked body's trailer fields, kept apart from the headers
    cdef list cur_url_parts
    cdef list cur_body
    cdef Py_ssize_t cur_body_size
    cdef Py_ssize_t cur_header_bytes
    cdef Py_ssize_t tail_bytes   # bytes read in a chunked body's trailer section so far
    cdef int chunk_state         # 0: between chunks, 1: after a chunk's size line, 2: its data
    cdef Py_ssize_t expect_length
    cdef bytes cur_te            # the Transfer-Encoding codings, all field lines joined
    cdef bytes cur_host          # the Host field value, None until one arrives
    cdef bint in_message
    cdef uint64_t messages_begun  # on_message_begin calls so far
    cdef Py_ssize_t head_raw        # raw bytes of the reads the unfinished head came in
    cdef int head_eol               # _blank_line_end's state at the end of those reads
    cdef const char* feed_ptr       # the read llhttp is parsing (NULL outside _feed_parser),
    cdef Py_ssize_t feed_n          # ... its size,
    cdef Request feed_cur           # ... the request whose head it goes on with, if any,
    cdef int feed_eol               # ... head_eol when it began,
    cdef Py_ssize_t feed_line       # ... where the line llhttp reads next begins (-1: earlier),
    cdef Py_ssize_t feed_body       # ... where the current body's bytes begin (-1: not known),
    cdef Py_ssize_t feed_body_before  # ... the body's size before them,
    cdef bint feed_chunks_go_on     # ... and whether its chunked framing began in earlier reads
    cdef LineScan line              # the request line llhttp reads next, read ahead of it
    cdef ChunkScan chunks           # the current request's chunked framing, read so far
    cdef bint headers_done
    cdef bint cur_head           # the request being parsed is a HEAD (known from its target on)
    cdef bint expect_continue
    cdef int reject_status
    cdef str reject_detail
    # what the answering half keeps and the reading half consults
    cdef object pending
    cdef bint busy
    cdef bint close_after_response
    cdef bint input_done         # a request asked to close: nothing after it is read
    cdef bint continue_owed      # a 100 Continue waits for the responses queued before it
    cdef Request upgrade_req     # a request with Upgrade (ignored) whose body llhttp skips
    cdef Py_ssize_t upgrade_left  # body bytes of upgrade_req still to come
    cdef bytes method_probe      # a request line llhttp refused, while the rest of it comes
    cdef bytes line_start        # the reads of an unfinished request line (for 400 or 501)
    cdef list upgrade_body
    cdef uint64_t message_started

    cdef int _start(self) except -1
    cdef void _data_received(self, const char* data, Py_ssize_t n)
    cdef _abort(self, int status, str detail)
    cdef _stop_parsing(self)
    cdef int _write_interim(self, bytes data) except -1
    cdef void _feed(self, const char* data, Py_ssize_t n)
    cdef void _probe_method(self, const char* data, Py_ssize_t n)
    cdef Py_ssize_t _upgrade_body(self, const char* data, Py_ssize_t n)
    cdef Py_ssize_t _message_end(self)
    cdef _read_next_line(self, Py_ssize_t end)
    cdef void _take_request(self, Request req)
    cdef void _reject(self, int status, str detail)
    cdef void _reject_as(self, int status, str detail, bint head_only)


cdef class Connection(Http1Parser):
    """http1.pyx: the answering half: the HTTP/1.1 protocol on its transport."""
    cdef readonly uint64_t requests
    cdef object task
    cdef Request busy_request
    cdef readonly _Stream stream
    cdef bytes last_path

    cdef void _eof_received(self)
    cdef void _write_queued(self)
    cdef void _write_done(self)
    cdef void _closing(self)
    cdef bint _connection_lost(self)
    cdef void _released(self)
    cdef void _take_request(self, Request req)
    cdef int _write_response(self, Request req, object response) except -1
    cdef int _write_simple(self, int status, bytes body, list headers, bint head_only,
                           bint keep_alive, bint http10) except -1
    cdef void _reject(self, int status, str detail)
    cdef void _reject_as(self, int status, str detail, bint head_only)
    cdef void _response_done(self)
    cdef bint _send_stalled(self, uint64_t now, uint64_t limit)
    cdef void _drain_pending(self)
    cdef bint _idle(self)
    cdef bint _in_flight(self)


cdef class Request:
    cdef readonly str method
    cdef readonly bytes raw_path
    cdef readonly bytes query_string
    cdef readonly list raw_headers
    cdef readonly list raw_trailers
    cdef readonly str http_version
    cdef readonly bint keep_alive
    cdef public dict path_params
    cdef Connection conn
    cdef bytes _body
    cdef str _path
    cdef object _headers
    cdef object _query
    cdef object _cookies
    cdef object _json
    cdef object _state
    cdef bytes _authority        # the host of an absolute-form target, or None
    cdef object context          # the contextvars.Context its handler and producer run in
