# Declarations of catzilla._router, the trie router (no libuv, no httptools).
# The server cimports `Router` and calls `match` as a C method.
cimport cython


cdef class Route:
    cdef readonly str path
    cdef readonly object endpoint
    cdef readonly frozenset methods
    cdef readonly str name
    cdef readonly tuple param_names
    cdef tuple _parts           # ((kind, text), ...): the parsed segments of `path`


@cython.final
cdef class _Leaf:
    cdef dict routes            # method -> Route, as registered
    cdef dict handlers          # method -> endpoint, plus HEAD -> GET's endpoint when implicit
    cdef tuple param_names
    cdef str allow              # value of the Allow header for this leaf


@cython.final
cdef class _Node:
    cdef dict static            # decoded segment -> _Node; None until the first static child
    cdef _Node param
    cdef int param_kind
    cdef str param_name
    cdef str param_origin       # path of the route that defined `param`
    cdef _Leaf catchall         # the {name:path} leaf hanging off this node
    cdef str catchall_name
    cdef str catchall_origin
    cdef _Leaf leaf             # routes that end exactly at this node


cdef class Router:
    cdef _Node _root
    cdef dict _static           # path of a parameter-free route -> _Leaf
    cdef list _routes
    cdef dict _names            # route name -> [Route, ...] with distinct paths
    cdef Py_ssize_t _dynamic    # number of routes with parameters

    cpdef tuple match(self, str method, str path)
