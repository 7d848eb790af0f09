/*
 * catzilla's own minimal declarations of the libuv 1.x API it calls.
 *
 * The process has exactly one libuv: the one inside uvloop's `loop` extension, whose uv_*
 * symbols catzilla/_uvlink.py makes globally visible before catzilla._core is imported.
 * Nothing here depends on a libuv struct layout: handles and requests are opaque, allocated
 * with uv_handle_size()/uv_req_size() and reached through the get_data/set_data accessors.
 * The only layouts used are uv_buf_t (public ABI on unix: base, len) and the enum values, which
 * are part of libuv's stable 1.x ABI. vendor/libuv/check_decls.py checks every value against the
 * pinned release's real headers.
 */
#ifndef CATZILLA_UV_H
#define CATZILLA_UV_H

#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <sys/socket.h>

/* The release these declarations were written and checked against (see vendor/libuv/PIN). */
#define CATZILLA_UV_VERSION_HEX 0x013401  /* 1.52.1 */

typedef struct uv_loop_s uv_loop_t;
typedef struct uv_handle_s uv_handle_t;
typedef struct uv_stream_s uv_stream_t;
typedef struct uv_tcp_s uv_tcp_t;
typedef struct uv_timer_s uv_timer_t;
typedef struct uv_async_s uv_async_t;
typedef struct uv_req_s uv_req_t;
typedef struct uv_write_s uv_write_t;
typedef struct uv_shutdown_s uv_shutdown_t;

typedef struct uv_buf_t {
  char* base;
  size_t len;
} uv_buf_t;

typedef enum {
  UV_UNKNOWN_HANDLE = 0,
  UV_ASYNC = 1,
  UV_CHECK = 2,
  UV_FS_EVENT = 3,
  UV_FS_POLL = 4,
  UV_HANDLE = 5,
  UV_IDLE = 6,
  UV_NAMED_PIPE = 7,
  UV_POLL = 8,
  UV_PREPARE = 9,
  UV_PROCESS = 10,
  UV_STREAM = 11,
  UV_TCP = 12,
  UV_TIMER = 13,
  UV_TTY = 14,
  UV_UDP = 15,
  UV_SIGNAL = 16
} uv_handle_type;

typedef enum {
  UV_UNKNOWN_REQ = 0,
  UV_REQ = 1,
  UV_CONNECT = 2,
  UV_WRITE = 3,
  UV_SHUTDOWN = 4
} uv_req_type;

/* On unix libuv's error codes are negated errno values, except UV_EOF. */
#define UV_EOF (-4095)
#define UV_EAGAIN (-EAGAIN)
#define UV_ECANCELED (-ECANCELED)
#define UV_ECONNRESET (-ECONNRESET)
#define UV_EPIPE (-EPIPE)
#define UV_ENOBUFS (-ENOBUFS)

typedef void (*uv_alloc_cb)(uv_handle_t* handle, size_t suggested_size, uv_buf_t* buf);
typedef void (*uv_read_cb)(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);
typedef void (*uv_write_cb)(uv_write_t* req, int status);
typedef void (*uv_shutdown_cb)(uv_shutdown_t* req, int status);
typedef void (*uv_connection_cb)(uv_stream_t* server, int status);
typedef void (*uv_close_cb)(uv_handle_t* handle);
typedef void (*uv_timer_cb)(uv_timer_t* handle);
typedef void (*uv_async_cb)(uv_async_t* handle);

unsigned int uv_version(void);
const char* uv_strerror(int err);
const char* uv_err_name(int err);

size_t uv_handle_size(uv_handle_type type);
size_t uv_req_size(uv_req_type type);

void uv_close(uv_handle_t* handle, uv_close_cb close_cb);
int uv_is_closing(const uv_handle_t* handle);
void uv_ref(uv_handle_t* handle);
void uv_unref(uv_handle_t* handle);
int uv_fileno(const uv_handle_t* handle, int* fd);
uint64_t uv_now(const uv_loop_t* loop);
void uv_update_time(uv_loop_t* loop);
uint64_t uv_hrtime(void);

int uv_tcp_init(uv_loop_t* loop, uv_tcp_t* handle);
int uv_tcp_open(uv_tcp_t* handle, int sock);
int uv_tcp_nodelay(uv_tcp_t* handle, int enable);
int uv_tcp_getpeername(const uv_tcp_t* handle, struct sockaddr* name, int* namelen);
int uv_tcp_getsockname(const uv_tcp_t* handle, struct sockaddr* name, int* namelen);

int uv_listen(uv_stream_t* stream, int backlog, uv_connection_cb cb);
int uv_accept(uv_stream_t* server, uv_stream_t* client);
int uv_read_start(uv_stream_t* stream, uv_alloc_cb alloc_cb, uv_read_cb read_cb);
int uv_read_stop(uv_stream_t* stream);
int uv_write(uv_write_t* req, uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs,
             uv_write_cb cb);
int uv_try_write(uv_stream_t* handle, const uv_buf_t bufs[], unsigned int nbufs);
int uv_shutdown(uv_shutdown_t* req, uv_stream_t* handle, uv_shutdown_cb cb);
size_t uv_stream_get_write_queue_size(const uv_stream_t* stream);

int uv_timer_init(uv_loop_t* loop, uv_timer_t* handle);
int uv_timer_start(uv_timer_t* handle, uv_timer_cb cb, uint64_t timeout, uint64_t repeat);
int uv_timer_stop(uv_timer_t* handle);
int uv_timer_again(uv_timer_t* handle);

int uv_async_init(uv_loop_t* loop, uv_async_t* handle, uv_async_cb async_cb);
int uv_async_send(uv_async_t* handle);


/*
 * uvloop's extension does not export libuv's uv_*_get_data/set_data and
 * uv_stream_get_write_queue_size accessors, so we read the fields they read, through layout
 * facts that are part of libuv 1.x's public ABI:
 *  - `void* data` is the first member of every handle (UV_HANDLE_FIELDS) and request
 *    (UV_REQ_FIELDS);
 *  - `size_t write_queue_size` is the first member of uv_stream_t after the handle fields,
 *    i.e. at offset sizeof(uv_handle_t) == uv_handle_size(UV_HANDLE), taken at run time.
 * vendor/libuv/check_decls.py checks both against the pinned release's headers.
 */
static size_t catzilla_wqs_offset = 0;

static inline void catzilla_uv_init(void) {
  size_t align = sizeof(size_t);
  size_t off = uv_handle_size(UV_HANDLE);
  catzilla_wqs_offset = (off + align - 1) / align * align;
}

static inline void* catzilla_handle_get_data(const uv_handle_t* handle) {
  return *(void* const*)handle;
}
static inline void catzilla_handle_set_data(uv_handle_t* handle, void* data) {
  *(void**)handle = data;
}
static inline void* catzilla_req_get_data(const uv_req_t* req) {
  return *(void* const*)req;
}
static inline void catzilla_req_set_data(uv_req_t* req, void* data) {
  *(void**)req = data;
}
static inline size_t catzilla_write_queue_size(const uv_stream_t* stream) {
  return *(const size_t*)((const char*)stream + catzilla_wqs_offset);
}

#endif
