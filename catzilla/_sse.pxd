# Declarations of catzilla._sse, the Server-Sent Events encoder (no libuv, no other catzilla
# module).
# Cython code cimports these:
#     from catzilla._sse cimport ServerSentEvent, encode_event, encode_item


cdef class ServerSentEvent:
    cdef readonly object data
    cdef readonly object event      # str or None
    cdef readonly object id         # str or None (an int id is stored as its decimal text)
    cdef readonly object retry      # int or None
    cdef readonly object comment    # str or None
    cdef bytes _encoded             # the wire bytes, encoded once in __init__


# One event as wire bytes; raises TypeError / ValueError as format_sse() does.
cdef bytes encode_event(object data, object event, object id, object retry, object comment)

# What a stream of SSE yields -> bytes (ServerSentEvent, dict, str, bytes-like).
cpdef bytes encode_item(object obj)
