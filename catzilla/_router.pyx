# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""Trie router: static children, one ``{param}`` child and one ``{name:path}`` catch-all per node.

    router = Router()
    router.add("/users/{id:int}", get_user, ["GET"], name="user")
    router.match("GET", "/users/42")     # (200, get_user, {"id": 42})
    router.match("POST", "/users/42")    # (405, "GET, HEAD", None)
    router.match("GET", "/nope")         # (404, None, None)
    router.url_path_for("user", id=42)   # "/users/42"

``match`` takes the request target as the server sees it: percent-encoded, no query string.
The path is split on '/' first and each segment is percent-decoded once afterwards, so ``%2F``
never splits a segment. The decoded bytes are read as UTF-8 (invalid sequences become U+FFFD).
Characters U+0080..U+00FF in the raw string stand for the raw byte of that value (the server
decodes the request line as latin-1), characters above U+00FF for their UTF-8 encoding.

Static segments of registered paths are literal text compared with the decoded request segment:
a route "/a b" matches the request "/a%20b", and a route "/a%20b" matches "/a%2520b".

Matching is method-aware with backtracking: static child first, then the parameter child, then the
catch-all; a route whose path matches but which lacks the method does not stop the search. When no
route has the method, the answer is 405 and ``Allow`` lists the methods of every route whose path
matched (HEAD included wherever GET is). Methods are compared as given (HTTP methods are
case-sensitive; routes register them upper-cased).
"""
cimport cython
from cpython.dict cimport PyDict_GetItem
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.ref cimport PyObject
from cpython.unicode cimport (
    PyUnicode_DATA,
    PyUnicode_DecodeUTF8,
    PyUnicode_FindChar,
    PyUnicode_GET_LENGTH,
    PyUnicode_KIND,
    PyUnicode_READ,
)
from libc.math cimport isfinite
from urllib.parse import quote as _quote

cdef extern from "Python.h":
    bint PyUnicode_IS_ASCII(object o)


# Segment kinds. The parameter kinds double as converter ids.
cdef enum:
    _STATIC = 0
    _STR = 1
    _INT = 2
    _FLOAT = 3
    _PATH = 4

cdef dict _CONVERTERS = {"str": _STR, "int": _INT, "float": _FLOAT, "path": _PATH}
cdef tuple _CONVERTER_NAMES = (None, "str", "int", "float", "path")
cdef tuple _NOT_FOUND = (404, None, None)
# RFC 3986 pchar minus the unreserved set, which quote() never encodes.
cdef str _PCHAR_SAFE = "!$&'()*+,;=:@"
cdef str _PATH_SAFE = "!$&'()*+,;=:@/"
cdef frozenset _TCHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")


cdef class Route:
    """One registration: ``Router.add(path, endpoint, methods, name)``.

    ``methods`` holds exactly the registered methods; HEAD for a GET route is implicit and shows
    up only in matching and in ``Allow``.
    """

    def __init__(self, *args, **kwargs):
        raise TypeError("Route objects are created by Router.add()")

    def __repr__(self):
        return (
            f"Route(path={self.path!r}, methods={sorted(self.methods)!r}, "
            f"name={self.name!r}, endpoint={self.endpoint!r})"
        )


@cython.final
cdef class _Leaf:
    def __cinit__(self):
        self.routes = {}
        self.handlers = {}
        self.param_names = ()
        self.allow = ""


@cython.final
cdef class _Node:
    pass


# -- request-path helpers ----------------------------------------------------------------------

cdef inline int _hexval(unsigned int c) noexcept:
    if 48 <= c <= 57:        # 0-9
        return <int>c - 48
    if 97 <= c <= 102:       # a-f
        return <int>c - 87
    if 65 <= c <= 70:        # A-F
        return <int>c - 55
    return -1


cdef str _unquote(str s):
    """Percent-decode one segment to text (see the module docstring for non-ASCII input)."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    cdef int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef char stackbuf[512]
    cdef unsigned char* out = <unsigned char*>stackbuf
    cdef Py_ssize_t i = 0, j = 0
    cdef unsigned int c
    cdef int hi, lo
    if n * 4 > <Py_ssize_t>sizeof(stackbuf):
        out = <unsigned char*>PyMem_Malloc(n * 4)
        if out == NULL:
            raise MemoryError()
    try:
        while i < n:
            c = PyUnicode_READ(kind, data, i)
            i += 1
            if c == 37 and i + 1 < n:    # '%'
                hi = _hexval(PyUnicode_READ(kind, data, i))
                lo = _hexval(PyUnicode_READ(kind, data, i + 1))
                if hi >= 0 and lo >= 0:
                    out[j] = <unsigned char>((hi << 4) | lo)
                    j += 1
                    i += 2
                    continue
            if c < 0x100:
                out[j] = <unsigned char>c
                j += 1
            elif c < 0x800:
                out[j] = <unsigned char>(0xC0 | (c >> 6))
                out[j + 1] = <unsigned char>(0x80 | (c & 0x3F))
                j += 2
            elif c < 0x10000:
                out[j] = <unsigned char>(0xE0 | (c >> 12))
                out[j + 1] = <unsigned char>(0x80 | ((c >> 6) & 0x3F))
                out[j + 2] = <unsigned char>(0x80 | (c & 0x3F))
                j += 3
            else:
                out[j] = <unsigned char>(0xF0 | (c >> 18))
                out[j + 1] = <unsigned char>(0x80 | ((c >> 12) & 0x3F))
                out[j + 2] = <unsigned char>(0x80 | ((c >> 6) & 0x3F))
                out[j + 3] = <unsigned char>(0x80 | (c & 0x3F))
                j += 4
        return PyUnicode_DecodeUTF8(<char*>out, j, "replace")
    finally:
        if out != <unsigned char*>stackbuf:
            PyMem_Free(out)


cdef inline bint _needs_decoding(str s):
    return (not PyUnicode_IS_ASCII(s)
            or PyUnicode_FindChar(s, 37, 0, PyUnicode_GET_LENGTH(s), 1) >= 0)    # '%'


cdef object _to_int(str s):
    """An optional '-' then ASCII digits, as int; None when ``s`` is anything else."""
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    cdef int kind = PyUnicode_KIND(s)
    cdef void* data = PyUnicode_DATA(s)
    cdef Py_ssize_t i = 0
    cdef long long value = 0
    cdef unsigned int c
    cdef bint negative = False
    cdef bint small
    if n == 0:
        return None
    if PyUnicode_READ(kind, data, 0) == 45:    # '-'
        negative = True
        i = 1
        if n == 1:
            return None
    small = n - i <= 18                        # fits a long long
    while i < n:
        c = PyUnicode_READ(kind, data, i)
        if c < 48 or c > 57:
            return None
        if small:
            value = value * 10 + <long long>(c - 48u)
        i += 1
    if not small:
        try:
            return int(s)
        except ValueError:                     # more digits than sys.get_int_max_str_digits()
            return None
    return -value if negative else value


cdef object _to_float(str s):
    """A decimal float in ASCII (digits, sign, '.', exponent: what float() accepts of
    those), finite; None otherwise (no '_', non-ASCII digits, whitespace, inf or nan)."""
    cdef double value
    cdef Py_ssize_t n = PyUnicode_GET_LENGTH(s)
    cdef const unsigned char* data
    cdef Py_ssize_t i
    cdef unsigned char c
    if n == 0 or not PyUnicode_IS_ASCII(s):
        return None
    data = <const unsigned char*>PyUnicode_DATA(s)
    for i in range(n):
        c = data[i]
        if not (48 <= c <= 57 or c == 46 or c == 43 or c == 45 or c == 101 or c == 69):
            return None                        # 0-9 . + - e E
    try:
        value = float(s)
    except ValueError:
        return None
    if not isfinite(value):
        return None
    return value


cdef inline object _convert(int kind, str seg):
    if kind == _STR:
        return seg
    if kind == _INT:
        return _to_int(seg)
    return _to_float(seg)


cdef _Leaf _find(_Node node, list segs, Py_ssize_t i, Py_ssize_t n, object method,
                 list values, bint* partial):
    """The first leaf (in precedence order) whose path matches and which has ``method``.

    Pushes converted parameter values on ``values`` (popped again on backtracking); sets
    ``partial[0]`` when some path matched without the method.
    """
    cdef _Leaf leaf
    cdef _Node child
    cdef PyObject* p
    cdef str seg
    cdef object value
    if i == n:
        leaf = node.leaf
        if leaf is not None:
            if PyDict_GetItem(leaf.handlers, method) != NULL:
                return leaf
            partial[0] = True
        return None
    seg = <str>segs[i]
    if node.static is not None:
        p = PyDict_GetItem(node.static, seg)
        if p != NULL:
            leaf = _find(<_Node>p, segs, i + 1, n, method, values, partial)
            if leaf is not None:
                return leaf
    child = node.param
    if child is not None and PyUnicode_GET_LENGTH(seg) != 0:
        value = _convert(node.param_kind, seg)
        if value is not None:
            values.append(value)
            leaf = _find(child, segs, i + 1, n, method, values, partial)
            if leaf is not None:
                return leaf
            values.pop()
    leaf = node.catchall
    if leaf is not None:
        if PyDict_GetItem(leaf.handlers, method) != NULL:
            values.append(seg if i + 1 == n else "/".join(segs[i:]))
            return leaf
        partial[0] = True
    return None


cdef int _collect(_Node node, list segs, Py_ssize_t i, Py_ssize_t n, list leaves) except -1:
    """Every leaf whose path matches, whatever its methods (the slow 405 path)."""
    cdef PyObject* p
    cdef str seg
    if i == n:
        if node.leaf is not None:
            leaves.append(node.leaf)
        return 0
    seg = <str>segs[i]
    if node.static is not None:
        p = PyDict_GetItem(node.static, seg)
        if p != NULL:
            _collect(<_Node>p, segs, i + 1, n, leaves)
    if (node.param is not None and PyUnicode_GET_LENGTH(seg) != 0
            and _convert(node.param_kind, seg) is not None):
        _collect(node.param, segs, i + 1, n, leaves)
    if node.catchall is not None:
        leaves.append(node.catchall)
    return 0


# -- registration helpers ----------------------------------------------------------------------

cdef str _describe(int kind, str name):
    if kind == _STR:
        return "{" + name + "}"
    return "{" + name + ":" + <str>_CONVERTER_NAMES[kind] + "}"


cdef tuple _parse(str path):
    """``path`` -> ((kind, text), ...) for its segments after the leading '/'."""
    if not path.startswith("/"):
        raise ValueError(f"route path must start with '/': {path!r}")
    cdef list parts = []
    cdef set names = set()
    cdef list segs = path.split("/")
    cdef Py_ssize_t last = len(segs) - 1
    cdef Py_ssize_t idx
    cdef str seg, inner, name, sep, conv
    for idx in range(1, last + 1):
        seg = <str>segs[idx]
        if "{" not in seg and "}" not in seg:
            parts.append((_STATIC, seg))
            continue
        inner = seg[1:len(seg) - 1]
        if (len(seg) < 2 or not seg.startswith("{") or not seg.endswith("}")
                or "{" in inner or "}" in inner):
            raise ValueError(
                f"malformed parameter segment {seg!r} in route path {path!r}: a parameter is a "
                "whole segment such as '{name}' or '{name:int}'"
            )
        name, sep, conv = inner.partition(":")
        if not name.isidentifier():
            raise ValueError(
                f"invalid parameter name {name!r} in route path {path!r}: "
                "it must be a Python identifier"
            )
        if not sep:
            conv = "str"
        if conv not in _CONVERTERS:
            raise ValueError(
                f"unknown converter {conv!r} for parameter {name!r} in route path {path!r} "
                "(expected one of: str, int, float, path)"
            )
        if name in names:
            raise ValueError(f"duplicate parameter name {name!r} in route path {path!r}")
        names.add(name)
        if _CONVERTERS[conv] == _PATH and idx != last:
            raise ValueError(
                f"'{{{name}:path}}' must be the last segment of route path {path!r}"
            )
        parts.append((_CONVERTERS[conv], name))
    return tuple(parts)


cdef frozenset _normalise_methods(object methods, str path):
    if isinstance(methods, str):
        methods = (methods,)
    cdef set result = set()
    for m in methods:
        if not isinstance(m, str):
            raise TypeError(f"HTTP method names must be str, got {m!r} for route path {path!r}")
        um = (<str>m).upper()
        if not um or not _TCHARS.issuperset(um):
            raise ValueError(f"invalid HTTP method {m!r} for route path {path!r}")
        result.add(um)
    if not result:
        raise ValueError(f"no HTTP methods given for route path {path!r}")
    return frozenset(result)


cdef str _format_param(int kind, str pname, object value, str route_name):
    cdef str text
    if kind == _INT:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(int(value))
        if isinstance(value, str) and _to_int(<str>value) is not None:
            return <str>value
    elif kind == _FLOAT:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isfinite(float(value)):
                return repr(float(value))
        elif isinstance(value, str) and _to_float(<str>value) is not None:
            return _quote(value, safe=_PCHAR_SAFE)
    elif kind == _PATH:
        return _quote(str(value), safe=_PATH_SAFE)
    else:
        text = str(value)
        if text:
            return _quote(text, safe=_PCHAR_SAFE)
    raise ValueError(
        f"invalid value {value!r} for path parameter {_describe(kind, pname)} "
        f"of route {route_name!r}"
    )


cdef _Leaf _walk(_Node root, tuple parts, str path, bint create):
    """The leaf for ``parts``: checks conflicts; creates missing nodes when ``create``."""
    cdef _Node node = root, child
    cdef Py_ssize_t k, nparts = len(parts)
    cdef int kind
    cdef str text
    cdef PyObject* p
    for k in range(nparts):
        kind = <int>parts[k][0]
        text = <str>parts[k][1]
        if kind == _STATIC:
            p = PyDict_GetItem(node.static, text) if node.static is not None else NULL
            if p != NULL:
                node = <_Node>p
                continue
            if not create:
                return None
            if node.static is None:
                node.static = {}
            child = _Node()
            node.static[text] = child
            node = child
        elif kind == _PATH:
            if node.catchall is not None:
                if node.catchall_name != text:
                    raise ValueError(
                        f"route path {path!r} conflicts with {node.catchall_origin!r}: "
                        f"'{{{text}:path}}' and '{{{node.catchall_name}:path}}' are at the "
                        "same position and only one catch-all is allowed there"
                    )
                return node.catchall
            if not create:
                return None
            node.catchall = _Leaf()
            node.catchall_name = text
            node.catchall_origin = path
            return node.catchall
        else:
            if node.param is not None:
                if node.param_name != text or node.param_kind != kind:
                    raise ValueError(
                        f"route path {path!r} conflicts with {node.param_origin!r}: "
                        f"{_describe(kind, text)!r} and "
                        f"{_describe(node.param_kind, node.param_name)!r} are at the same "
                        "position and only one parameter definition is allowed there"
                    )
                node = node.param
                continue
            if not create:
                return None
            child = _Node()
            node.param = child
            node.param_kind = kind
            node.param_name = text
            node.param_origin = path
            node = child
    if node.leaf is None and create:
        node.leaf = _Leaf()
    return node.leaf


cdef _refresh(_Leaf leaf):
    """Rebuild the method -> endpoint map (HEAD falls back to GET) and the Allow value."""
    cdef dict handlers = {m: (<Route>r).endpoint for m, r in leaf.routes.items()}
    if "GET" in handlers and "HEAD" not in handlers:
        handlers["HEAD"] = handlers["GET"]
    leaf.handlers = handlers
    leaf.allow = ", ".join(sorted(handlers))


cdef class Router:
    """Routes ``(method, path)`` to endpoints; see the module docstring for the rules."""

    def __cinit__(self):
        self._root = _Node()
        self._static = {}
        self._routes = []
        self._names = {}
        self._dynamic = 0

    @property
    def routes(self):
        """The routes in registration order (a new list)."""
        return list(self._routes)

    def __len__(self):
        return len(self._routes)

    def add(self, str path not None, object endpoint, methods, str name=None):
        """Register ``endpoint`` for ``methods`` on ``path`` and return the new Route.

        Raises ValueError, naming the path, for a malformed path, a (path, method) pair that is
        already registered, or a parameter that differs from one already registered at the same
        position (``/u/{id:int}`` then ``/u/{name}``).
        """
        cdef tuple parts = _parse(path)
        cdef frozenset mset = _normalise_methods(methods, path)
        cdef _Leaf leaf = _walk(self._root, parts, path, False)
        cdef Route other
        cdef list taken
        if leaf is not None:
            taken = sorted(m for m in mset if m in leaf.routes)
            if taken:
                other = <Route>leaf.routes[taken[0]]
                raise ValueError(
                    f"route path {path!r} is already registered for {', '.join(taken)} "
                    f"(by route {other.path!r})"
                )

        cdef Route route = Route.__new__(Route)
        route.path = path
        route.endpoint = endpoint
        route.methods = mset
        route.name = name
        route.param_names = tuple([p[1] for p in parts if p[0] != _STATIC])
        route._parts = parts

        leaf = _walk(self._root, parts, path, True)
        leaf.param_names = route.param_names
        for m in mset:
            leaf.routes[m] = route
        _refresh(leaf)
        if route.param_names:
            self._dynamic += 1
        else:
            self._static[path] = leaf
        self._routes.append(route)
        if name is not None:
            same_name = self._names.setdefault(name, [])
            if not any((<Route>r)._parts == parts for r in same_name):
                same_name.append(route)
        return route

    cpdef tuple match(self, str method, str path):
        """``(200, endpoint, params)``, ``(404, None, None)`` or ``(405, allow, None)``."""
        cdef PyObject* p
        cdef _Leaf leaf
        cdef list segs, values, leaves
        cdef Py_ssize_t n, k
        cdef bint fast, partial = False
        cdef dict params
        cdef tuple names
        cdef set allowed
        if not path or PyUnicode_READ(PyUnicode_KIND(path), PyUnicode_DATA(path), 0) != 47:
            return _NOT_FOUND
        fast = PyUnicode_IS_ASCII(path) and PyUnicode_FindChar(
            path, 37, 0, PyUnicode_GET_LENGTH(path), 1) < 0
        if fast:
            p = PyDict_GetItem(self._static, path)
            if p != NULL:
                leaf = <_Leaf>p
                p = PyDict_GetItem(leaf.handlers, method)
                if p != NULL:
                    return (200, <object>p, {})
                if self._dynamic == 0:
                    return (405, leaf.allow, None)
            elif self._dynamic == 0:
                return _NOT_FOUND

        segs = path.split("/")
        n = len(segs)
        if not fast:
            for k in range(1, n):
                if _needs_decoding(<str>segs[k]):
                    segs[k] = _unquote(<str>segs[k])
        values = []
        leaf = _find(self._root, segs, 1, n, method, values, &partial)
        if leaf is not None:
            params = {}
            names = leaf.param_names
            for k in range(len(names)):
                params[names[k]] = values[k]
            return (200, <object>PyDict_GetItem(leaf.handlers, method), params)
        if not partial:
            return _NOT_FOUND
        leaves = []
        _collect(self._root, segs, 1, n, leaves)
        if len(leaves) == 1:
            return (405, (<_Leaf>leaves[0]).allow, None)
        allowed = set()
        for leaf in leaves:
            allowed.update(leaf.handlers)
        return (405, ", ".join(sorted(allowed)), None)

    def url_path_for(self, str name, **params):
        """Build the path of the route called ``name``, percent-encoding ``params``.

        ``url_path_for("file", p="a b/c.txt")`` on ``/files/{p:path}`` gives
        ``"/files/a%20b/c.txt"``; a ``{name}`` value has its '/' encoded as ``%2F``.
        Several routes may share a name (the app names routes after their handler); the first
        one registered whose parameter names are exactly those given is used.
        KeyError for an unknown name, ValueError for missing, unexpected or invalid params.
        """
        cdef Route route
        cdef list out = []
        cdef int kind
        cdef str text
        try:
            candidates = <list>self._names[name]
        except KeyError:
            raise KeyError(f"no route named {name!r}") from None
        for r in candidates:     # the first route with that name whose parameters fit
            if set((<Route>r).param_names) == params.keys():
                route = <Route>r
                break
        else:
            route = <Route>candidates[0]
            missing = [p for p in route.param_names if p not in params]
            if missing:
                raise ValueError(
                    f"missing path parameter(s) {', '.join(missing)} for route {name!r} "
                    f"({route.path!r})"
                )
            extra = sorted(p for p in params if p not in route.param_names)
            raise ValueError(
                f"unexpected path parameter(s) {', '.join(extra)} for route {name!r} "
                f"({route.path!r})"
            )
        for part in route._parts:
            kind = <int>part[0]
            text = <str>part[1]
            if kind == _STATIC:
                out.append(_quote(text, safe=_PCHAR_SAFE))
            else:
                out.append(_format_param(kind, text, params[text], name))
        return "/" + "/".join(out)
