# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""catzilla's HTTP core: libuv TCP handles on uvloop's loop, httptools parsing, Cython writer.

One extension; each concern lives in its own included file.
"""

cimport catzilla.includes.uv as uv
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_FromStringAndSize
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from libc.stdint cimport uint64_t
from libc.stdlib cimport malloc, free
from libc.stdio cimport snprintf

LIBUV_VERSION_HEX = uv.CATZILLA_UV_VERSION_HEX

cdef int _live_handles = 0
uv.catzilla_uv_init()

include "writer.pyx"
include "transport.pyx"
include "http1_scan.pyx"
include "http1_parse.pyx"
include "http1.pyx"
include "request.pyx"
include "stream.pyx"
include "producers.pyx"
include "dispatch.pyx"
include "server.pyx"
