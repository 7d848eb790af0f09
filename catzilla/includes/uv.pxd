# The libuv calls catzilla makes, declared from includes/catzilla_uv.h (our own declarations).
from libc.stdint cimport uint64_t
cdef extern from "<sys/types.h>":
    ctypedef long ssize_t


cdef extern from "includes/catzilla_uv.h" nogil:
    enum: CATZILLA_UV_VERSION_HEX

    ctypedef struct uv_loop_t
    ctypedef struct uv_handle_t
    ctypedef struct uv_stream_t
    ctypedef struct uv_tcp_t
    ctypedef struct uv_timer_t
    ctypedef struct uv_async_t
    ctypedef struct uv_req_t
    ctypedef struct uv_write_t
    ctypedef struct uv_shutdown_t

    ctypedef struct uv_buf_t:
        char* base
        size_t len

    ctypedef enum uv_handle_type:
        UV_HANDLE
        UV_ASYNC
        UV_TCP
        UV_TIMER

    ctypedef enum uv_req_type:
        UV_WRITE
        UV_SHUTDOWN

    enum:
        UV_EOF
        UV_EAGAIN
        UV_ECANCELED
        UV_ECONNRESET
        UV_EPIPE
        UV_ENOBUFS

    struct sockaddr

    ctypedef void (*uv_alloc_cb)(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf)
    ctypedef void (*uv_read_cb)(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf)
    ctypedef void (*uv_write_cb)(uv_write_t* req, int status)
    ctypedef void (*uv_shutdown_cb)(uv_shutdown_t* req, int status)
    ctypedef void (*uv_connection_cb)(uv_stream_t* server, int status)
    ctypedef void (*uv_close_cb)(uv_handle_t* handle)
    ctypedef void (*uv_timer_cb)(uv_timer_t* handle)
    ctypedef void (*uv_async_cb)(uv_async_t* handle)

    unsigned int uv_version()
    const char* uv_strerror(int err)
    const char* uv_err_name(int err)

    size_t uv_handle_size(uv_handle_type type)
    size_t uv_req_size(uv_req_type type)
    # our accessors (see the header for why they are not libuv's)
    void catzilla_uv_init()
    void* catzilla_handle_get_data(const uv_handle_t* handle)
    void catzilla_handle_set_data(uv_handle_t* handle, void* data)
    void* catzilla_req_get_data(const uv_req_t* req)
    void catzilla_req_set_data(uv_req_t* req, void* data)
    size_t catzilla_write_queue_size(const uv_stream_t* stream)

    void uv_close(uv_handle_t* handle, uv_close_cb close_cb)
    int uv_is_closing(const uv_handle_t* handle)
    void uv_ref(uv_handle_t* handle)
    void uv_unref(uv_handle_t* handle)
    int uv_fileno(const uv_handle_t* handle, int* fd)
    uint64_t uv_now(const uv_loop_t* loop)
    void uv_update_time(uv_loop_t* loop)
    uint64_t uv_hrtime()

    int uv_tcp_init(uv_loop_t* loop, uv_tcp_t* handle)
    int uv_tcp_open(uv_tcp_t* handle, int sock)
    int uv_tcp_nodelay(uv_tcp_t* handle, int enable)
    int uv_tcp_getpeername(const uv_tcp_t* handle, sockaddr* name, int* namelen)
    int uv_tcp_getsockname(const uv_tcp_t* handle, sockaddr* name, int* namelen)

    int uv_listen(uv_stream_t* stream, int backlog, uv_connection_cb cb)
    int uv_accept(uv_stream_t* server, uv_stream_t* client)
    int uv_read_start(uv_stream_t* stream, uv_alloc_cb alloc_cb, uv_read_cb read_cb)
    int uv_read_stop(uv_stream_t* stream)
    int uv_write(uv_write_t* req, uv_stream_t* handle, const uv_buf_t* bufs, unsigned int nbufs,
                 uv_write_cb cb)
    int uv_try_write(uv_stream_t* handle, const uv_buf_t* bufs, unsigned int nbufs)
    int uv_shutdown(uv_shutdown_t* req, uv_stream_t* handle, uv_shutdown_cb cb)

    int uv_timer_init(uv_loop_t* loop, uv_timer_t* handle)
    int uv_timer_start(uv_timer_t* handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat)
    int uv_timer_stop(uv_timer_t* handle)
    int uv_timer_again(uv_timer_t* handle)

    int uv_async_init(uv_loop_t* loop, uv_async_t* handle, uv_async_cb async_cb)
    int uv_async_send(uv_async_t* handle)
