# HTTP/1.1 at the byte level, apart from any connection's state where it can be: the tables and
# the fast path for a plain GET/HEAD head (a complete head scanned in C and turned into a
# Request without llhttp), the request-line check both paths use (_scan_line), where a
# request ends (_chunked_end, head sizes), the Transfer-Encoding and target checks.

cdef extern from "<string.h>" nogil:
    const void* memmem(const void* haystack, size_t hn, const void* needle, size_t nn)
    const void* memchr(const void* s, int c, size_t n)
    int memcmp(const void* a, const void* b, size_t n)

# The plain-request fast path accepts these bytes in a request target (the path and query
# characters of RFC 3986) and in a header value (visible ASCII, space, tab). Anything else
# goes through llhttp, which accepts or rejects it as always.
cdef unsigned char _TARGET_OK[256]
cdef unsigned char _VALUE_OK[256]
# reg-name characters of a Host (RFC 3986 3.2.2: unreserved, sub-delims; '%' is checked apart)
cdef unsigned char _HOST_OK[256]
# each byte's class in a request line, and the bytes of a token, for _scan_line
cdef unsigned char _LINE_CLASS[256]
cdef unsigned char _TCHAR[256]
cdef enum:
    LC_VISIBLE = 0   # VCHAR
    LC_OTHER = 1     # NUL and the other controls, DEL, obs-text: llhttp's to judge
    LC_SP = 2
    LC_WS = 3        # HTAB, VT, FF: whitespace a recipient may split a request line on
    LC_CR = 4
    LC_LF = 5


cdef void _init_fast_tables():
    cdef int c
    for c in range(256):
        _TARGET_OK[c] = (b'a' <= c <= b'z' or b'A' <= c <= b'Z' or b'0' <= c <= b'9'
                         or c in b"-._~!$&'()*+,;=:@/?%")
        _VALUE_OK[c] = 0x20 <= c <= 0x7e or c == 9
        _HOST_OK[c] = (b'a' <= c <= b'z' or b'A' <= c <= b'Z' or b'0' <= c <= b'9'
                       or c in b"-._~!$&'()*+,;=")
        _LINE_CLASS[c] = (LC_SP if c == 32 else LC_WS if c in b"\t\x0b\x0c" else LC_CR if c == 13
                          else LC_LF if c == 10 else LC_VISIBLE if 0x21 <= c <= 0x7e else LC_OTHER)
        _TCHAR[c] = catzilla_is_tchar(c)


_init_fast_tables()


cdef inline bint _is_hex(unsigned char c) noexcept nogil:
    return b'0' <= c <= b'9' or b'a' <= c <= b'f' or b'A' <= c <= b'F'


cdef bint _valid_host(const char* p, Py_ssize_t n) noexcept nogil:
    """A Host value: uri-host [":" port] (RFC 9112 3.2, RFC 3986 3.2.2), or empty."""
    cdef Py_ssize_t i = 0
    cdef unsigned char c
    if n > 0 and p[0] == b'[':
        # IP-literal: IPv6 (with an RFC 6874 zone) or IPvFuture, loosely
        i = 1
        while i < n and p[i] != b']':
            c = p[i]
            if not (_HOST_OK[c] or c == b':' or c == b'%'):
                return False
            i += 1
        if i == n or i == 1:
            return False
        i += 1
    else:
        while i < n and p[i] != b':':
            c = p[i]
            if c == b'%':
                if i + 2 >= n or not _is_hex(p[i + 1]) or not _is_hex(p[i + 2]):
                    return False
                i += 2
            elif not _HOST_OK[c]:
                return False
            i += 1
    if i < n:
        if p[i] != b':':
            return False
        i += 1
        while i < n:
            if not (b'0' <= p[i] <= b'9'):
                return False
            i += 1
    return True


cdef dict _METHODS = {m.encode(): m for m in (
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")}
cdef enum:
    # raw bytes a head in several reads may have beyond max_header_size: its request line's
    # method and version, line ends and whitespace, which the fields' count does not hold
    HEAD_RAW_SLACK = 1024
    # bytes an unfinished request line may have beyond max_url_size while it is kept to judge
    # its method (400 or 501): the method and the version
    LINE_SLACK = 64

# Methods llhttp knows but HTTP servers rarely implement; answered with 501 unless routed.
cdef frozenset _STANDARD_METHODS = frozenset(_METHODS.values())

cdef bytes _JSON_TYPE = b"application/json"


cdef Py_ssize_t _fast_request(Http1Parser conn, const char* p, Py_ssize_t n):
    """Take one complete request head at p if it is plain: GET or HEAD, origin-form
    target, HTTP/1.1, well-formed headers within the limits and none that asks for a body,
    an upgrade or an expectation. Dispatches it and returns the bytes it used, or -1 to
    leave the bytes to llhttp (which gives any error the usual answer)."""
    cdef Server srv = conn.server
    cdef const char* end
    cdef const char* q
    cdef const char* t0
    cdef const char* n0
    cdef const char* v0
    cdef const char* mark
    cdef Py_ssize_t tlen, nlen, vlen, size
    cdef bint keep = True
    cdef bint host = False
    cdef str method
    cdef list headers
    cdef Request req
    if n >= 5 and memcmp(p, b"GET /", 5) == 0:
        method = "GET"
        q = p + 4
    elif n >= 6 and memcmp(p, b"HEAD /", 6) == 0:
        method = "HEAD"
        q = p + 5
    else:
        return -1   # before looking for the head's end: a POST's body is not scanned
    end = <const char*>memmem(p, n, b"\r\n\r\n", 4)
    if end == NULL or end + 4 - p > srv.max_header_size + HEAD_RAW_SLACK:
        return -1   # (llhttp answers a head too big in raw bytes: on_headers_complete)
    t0 = q
    while _TARGET_OK[<unsigned char>q[0]]:   # stops at the CR of end at the latest
        q += 1
    tlen = q - t0
    if q[0] != b' ' or end + 4 - q < 11 or memcmp(q + 1, b"HTTP/1.1\r\n", 10) != 0:
        return -1
    size = tlen
    if size > srv.max_url_size:
        return -1
    q += 11
    headers = []
    while q < end:
        n0 = q
        while catzilla_is_tchar(<unsigned char>q[0]):
            q += 1
        nlen = q - n0
        if nlen == 0 or q[0] != b':':
            return -1
        q += 1
        if q[0] == b' ':
            q += 1
        v0 = q
        while _VALUE_OK[<unsigned char>q[0]]:
            q += 1
        vlen = q - v0
        if (q[0] != b'\r' or q[1] != b'\n' or vlen == 0 or v0[0] == b' '
                or v0[0] == b'\t' or v0[vlen - 1] == b' ' or v0[vlen - 1] == b'\t'):
            return -1
        q += 2
        if nlen == 10 and catzilla_lower_eq(n0, 10, "connection"):
            if catzilla_lower_eq(v0, vlen, "close"):
                keep = False
            elif not catzilla_lower_eq(v0, vlen, "keep-alive"):
                return -1
        elif nlen == 4 and catzilla_lower_eq(n0, 4, "host"):
            if host or not _valid_host(v0, vlen):
                return -1   # llhttp's path answers 400
            host = True
        elif ((nlen == 14 and catzilla_lower_eq(n0, 14, "content-length"))
                or (nlen == 17 and catzilla_lower_eq(n0, 17, "transfer-encoding"))
                or (nlen == 6 and catzilla_lower_eq(n0, 6, "expect"))
                or (nlen == 7 and catzilla_lower_eq(n0, 7, "upgrade"))
                # llhttp reads it as Connection: its answer, whatever the read split
                or (nlen == 16 and catzilla_lower_eq(n0, 16, "proxy-connection"))):
            return -1
        size += nlen + vlen + 4
        if size > srv.max_header_size or len(headers) >= srv.max_headers:
            return -1
        headers.append((PyBytes_FromStringAndSize(n0, nlen),
                        PyBytes_FromStringAndSize(v0, vlen)))
    if q != end + 2 or not host:
        return -1
    req = Request.__new__(Request)
    req.conn = <Connection>conn
    mark = <const char*>memchr(t0, b'?', tlen)
    if mark == NULL:
        req.raw_path = PyBytes_FromStringAndSize(t0, tlen)
        req.query_string = b""
    else:
        req.raw_path = PyBytes_FromStringAndSize(t0, mark - t0)
        req.query_string = PyBytes_FromStringAndSize(mark + 1, t0 + tlen - mark - 1)
    req.method = method
    req.raw_headers = headers
    req.http_version = "1.1"
    req.keep_alive = keep
    req._body = b""
    if not keep:
        # nothing after it is answered; the connection closes after *its* response,
        # not after the response to a request before it (RFC 9112 9.6)
        conn.input_done = True
    conn._take_request(req)
    return end + 4 - p


cdef bint _has_header(list headers, bytes lower_name):
    for k, _ in headers:
        if (<bytes>k).lower() == lower_name:
            return True
    return False


cdef Py_ssize_t _skip_empty_lines(const char* data, Py_ssize_t n):
    """The empty lines llhttp skips before a request: how many bytes they take at data."""
    cdef Py_ssize_t i = 0
    while i < n and (data[i] == 13 or data[i] == 10):
        i += 1
    return i


cdef Py_ssize_t _blank_line_end(const char* data, Py_ssize_t n, int* state):
    """Scan a head for the empty line that ends it: the offset just past it, or -1 with *state
    kept for the next read (0: within a line, 1: just after its LF, 2: after LF CR)."""
    cdef Py_ssize_t i = 0
    cdef int s = state[0]
    cdef const char* q
    cdef char c
    while i < n:
        if s == 0:
            q = <const char*>memchr(data + i, 10, n - i)   # (a line's bytes, CRs too, keep 0)
            if q == NULL:
                break
            i = q - data + 1
            s = 1
            continue
        c = data[i]
        if c == 10:
            return i + 1
        s = 2 if c == 13 and s == 1 else 0
        i += 1
    state[0] = s
    return -1


cdef Py_ssize_t _continued_head_end(Http1Parser conn, const char* data, Py_ssize_t n):
    """Where in the read being fed (data) the head that began in earlier reads ends, just past
    its empty line, or -1 (it does not end there, or its reads were not scanned)."""
    cdef int eol = conn.feed_eol
    if eol < 0:
        return -1
    return _blank_line_end(data, n, &eol)


cdef Py_ssize_t _head_end_here(Http1Parser conn):
    """Where in the read being fed the head llhttp has just read to its end ends (just past its
    empty line): from its request line there, or from the state of its earlier reads. -1 when
    not known."""
    cdef int eol = 0
    cdef Py_ssize_t end
    if conn.feed_line >= 0:
        end = _blank_line_end(conn.feed_ptr + conn.feed_line, conn.feed_n - conn.feed_line, &eol)
        return conn.feed_line + end if end >= 0 else -1
    if conn.feed_cur is not None and conn.feed_cur is conn.cur:
        return _continued_head_end(conn, conn.feed_ptr, conn.feed_n)
    return -1


cdef Py_ssize_t _head_size(Http1Parser conn):
    """The raw size of the head llhttp has just read to its end, empty lines before it left
    out, when it is known: it began in the read being fed, or in earlier reads that head_raw
    counts. Else -1."""
    cdef Py_ssize_t end
    if conn.feed_ptr == NULL:
        return -1
    if conn.feed_line >= 0:
        end = _head_end_here(conn)
        return end - conn.feed_line if end >= 0 else -1
    if conn.feed_cur is not None and conn.feed_cur is conn.cur:
        end = _continued_head_end(conn, conn.feed_ptr, conn.feed_n)
        return conn.head_raw + end if end >= 0 else -1
    return -1


cdef enum:
    # _scan_line's states (LineScan.state)
    RL_BEFORE = 0    # before a request line: empty lines may come first
    RL_CR = 1        # ... just after a CR, which only LF may follow
    RL_METHOD = 2
    RL_TARGET0 = 3   # just after the SP that ends the method
    RL_TARGET = 4
    RL_VERSION0 = 5  # just after the SP that ends the target
    RL_VERSION = 6
    RL_END_CR = 7    # just after the CR that ends the line
    RL_DONE = 8      # after the line, or past a target longer than max_url_size (llhttp's 414)
    RL_LOST = 9      # where the line begins is not known (see on_message_begin)
    # LineScan.flags
    RL_ODD = 1       # not strictly token SP target SP HTTP/DIGIT.DIGIT CRLF (whitespace aside)
    RL_NOT_HEAD = 2  # the method so far is not the beginning of HEAD
    RL_HEAD = 4      # the method is HEAD (a 400 for it has no body)

cdef str _BAD_LINE = "Invalid request line"


cdef int _scan_line(LineScan* s, const char* p, Py_ssize_t n, Py_ssize_t url_limit) noexcept nogil:
    """Read the next n bytes at p of a request line (and of the empty lines before it) ahead of
    llhttp: 1 once the line is whole (s.state is then RL_DONE), 0 while it goes on after them,
    -1 for a line whose three parts are not separated by exactly one SP (400).

    RFC 9112 3 lets a recipient split a request line on any whitespace, and llhttp takes any
    run of SP between the parts and skips any CR or LF before a request: a proxy in front that
    splits the line otherwise than we do can smuggle a request past its checks. So the line is
    refused for two SPs, HTAB, VT, FF, a bare CR (RFC 9112 2.2) or a bare LF in it, and for
    whitespace before the method or before the CRLF; empty lines (CRLF, or LF) before it are
    skipped (RFC 9112 2.2). The rest is llhttp's to judge; what is not strictly token SP target SP
    HTTP/DIGIT.DIGIT CRLF is noted in s.flags (RL_ODD, for _invalid_method_status), and a target
    longer than url_limit is left unjudged (llhttp's 414), whichever way the line is split."""
    cdef Py_ssize_t i = 0, j, k
    cdef int st = s.state
    cdef int flags = s.flags
    cdef Py_ssize_t count = s.count   # (locals: p's bytes may alias *s)
    cdef int cls
    cdef unsigned char c
    cdef const char* version = "HTTP/0.0"
    cdef const char* head = "HEAD"
    while i < n:
        if st == RL_TARGET:
            j = i
            while i < n and _LINE_CLASS[<unsigned char>p[i]] == LC_VISIBLE:
                i += 1
            count += i - j
            if i < n and _LINE_CLASS[<unsigned char>p[i]] == LC_OTHER:
                flags |= RL_ODD
                count += 1
                i += 1
            if count > url_limit:
                st = RL_DONE
                break
            if i == n:
                break
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls == LC_SP:
                st = RL_VERSION0
            elif cls == LC_CR:
                st = RL_END_CR   # no version: llhttp reads it as HTTP/0.9 (505)
                flags |= RL_ODD
            elif cls != LC_VISIBLE and cls != LC_OTHER:
                s.state = st
                s.flags = flags
                return -1
            else:
                continue   # (an LC_OTHER byte after the one above)
        elif st == RL_METHOD:
            j = i
            while i < n and _TCHAR[<unsigned char>p[i]]:
                i += 1
            if not (flags & RL_NOT_HEAD):
                k = j
                while k < i:
                    if count + k - j >= 4 or p[k] != head[count + k - j]:
                        flags |= RL_NOT_HEAD
                        break
                    k += 1
            count += i - j
            if i == n:
                break
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls == LC_VISIBLE or cls == LC_OTHER:
                flags |= RL_ODD | RL_NOT_HEAD   # not a token
                count += 1
                i += 1
                continue
            if count == 4 and not (flags & RL_NOT_HEAD):
                flags |= RL_HEAD
            if cls != LC_SP:
                s.state = st
                s.flags = flags
                return -1
            st = RL_TARGET0
        elif st == RL_VERSION:
            if (count == 0 and n - i >= 9 and memcmp(p + i, version, 5) == 0
                    and 48 <= p[i + 5] <= 57 and p[i + 6] == b"." and 48 <= p[i + 7] <= 57
                    and p[i + 8] == 13):
                i += 9   # (the whole version and the CR after it, as nearly always)
                count = 8
                st = RL_END_CR
                continue
            c = <unsigned char>p[i]
            cls = _LINE_CLASS[c]
            if cls == LC_VISIBLE or cls == LC_OTHER:
                if count >= 8 or not (
                        48 <= c <= 57 if version[count] == b"0" else c == version[count]):
                    flags |= RL_ODD
                count += 1
            elif cls == LC_CR:
                if count != 8:
                    flags |= RL_ODD
                st = RL_END_CR
            else:
                s.state = st
                s.flags = flags
                return -1
        elif st == RL_END_CR:
            if p[i] != 10:
                s.state = st
                s.flags = flags
                return -1
            st = RL_DONE
            break
        elif st == RL_BEFORE:
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls == LC_VISIBLE or cls == LC_OTHER:
                st = RL_METHOD
                flags = 0
                count = 0
                continue   # (the method's first byte)
            if cls == LC_CR:
                st = RL_CR
            elif cls != LC_LF:
                s.state = st
                s.flags = flags
                return -1
        elif st == RL_CR:
            if p[i] != 10:
                s.state = st
                s.flags = flags
                return -1
            st = RL_BEFORE
        elif st == RL_TARGET0 or st == RL_VERSION0:
            cls = _LINE_CLASS[<unsigned char>p[i]]
            if cls != LC_VISIBLE and cls != LC_OTHER:
                s.state = st
                s.flags = flags
                return -1
            st += 1   # RL_TARGET or RL_VERSION
            count = 0
            continue
        else:
            break   # RL_DONE, RL_LOST: nothing to read
        i += 1
    s.state = st
    s.flags = flags
    s.count = count
    return 1 if st == RL_DONE else 0


cdef int _invalid_method_status(const char* data, Py_ssize_t n):
    """501 for a well-formed request line (token SP target SP HTTP/DIGIT.DIGIT CRLF, after empty
    lines) whose method we do not implement, 400 for anything else, 0 while the n bytes so far
    could begin either. (_scan_line reads it: the same line as for any other method.)"""
    cdef LineScan s
    cdef int r
    s.state = RL_BEFORE
    s.flags = 0
    s.count = 0
    r = _scan_line(&s, data, n, n)
    if r < 0 or s.flags & RL_ODD:
        return 400
    return 501 if r > 0 else 0


cdef enum:
    # _chunked_end's states (ChunkScan.state)
    CK_SIZE = 0       # in a chunk's size
    CK_SIZE_LINE = 1  # in the rest of its line (extensions), up to its LF
    CK_DATA = 2
    CK_DATA_END = 3   # in the CRLF after its data
    CK_TRAILERS = 4   # in the trailer section, up to its empty line
    CK_LOST = 5       # not followed from the body's beginning


cdef inline void _chunks_begin(ChunkScan* s) noexcept nogil:
    s.state = CK_SIZE
    s.eol = 0
    s.left = 0


cdef Py_ssize_t _chunked_end(ChunkScan* s, const char* p, Py_ssize_t n):
    """Follow a chunked body's framing (RFC 9112 7.1), as llhttp accepted it, through the next n
    bytes at p: the offset just past the body (its trailer section's empty line), or -1 when it
    goes on after them (s keeps where it is). llhttp has checked the framing: its lines end in
    CRLF, and a chunk-ext (quoted strings too) holds no LF."""
    cdef Py_ssize_t i = 0, k
    cdef const char* q
    cdef unsigned char c
    while i < n:
        if s.state == CK_SIZE:
            c = <unsigned char>p[i]
            if _is_hex(c):
                if s.left < (<uint64_t>1 << 59):   # (llhttp refuses a size past 64 bits)
                    s.left = s.left * 16 + (c - 48 if c <= 57 else (c | 32) - 87)
                i += 1
                continue
            s.state = CK_SIZE_LINE
        elif s.state == CK_SIZE_LINE or s.state == CK_DATA_END:
            q = <const char*>memchr(p + i, 10, n - i)
            if q == NULL:
                return -1
            i = q - p + 1
            if s.state == CK_DATA_END:
                _chunks_begin(s)
            elif s.left == 0:
                s.state = CK_TRAILERS   # the last chunk
                s.eol = 1               # (just after an LF)
            else:
                s.state = CK_DATA
        elif s.state == CK_DATA:
            k = n - i if <uint64_t>(n - i) < s.left else <Py_ssize_t>s.left
            i += k
            s.left -= k
            if s.left == 0:
                s.state = CK_DATA_END
        elif s.state == CK_TRAILERS:
            k = _blank_line_end(p + i, n - i, &s.eol)
            return i + k if k >= 0 else -1
        else:
            return -1   # CK_LOST
    return -1


cdef bint _unknown_coding_before_chunked(bytes te):
    """True for e.g. 'gzip, chunked' (RFC 9112 6.1: 501). Without a final chunked the
    request is left to llhttp, which answers 400 (its length cannot be known)."""
    cdef list codings = []
    cdef bytes item
    cdef Py_ssize_t i, last
    for item in te.split(b","):
        item = item.strip().lower()
        if item:
            codings.append(item)
    last = len(codings) - 1   # (no negative indexes: wraparound is off)
    if last < 1 or codings[last] != b"chunked":
        return False
    for i in range(last):
        if codings[i] != b"chunked":
            return True
    return False


cdef tuple _origin_form(str method, bytes target):
    """(authority, path?query) of an absolute-form target, (None, b"*") of the asterisk
    form, or None for a target we do not serve (RFC 9112 3.2)."""
    cdef Py_ssize_t start, i, n = len(target)
    cdef unsigned char c
    if target == b"*":
        return (None, b"*") if method == "OPTIONS" else None
    if target[:7].lower() == b"http://":
        start = 7
    elif target[:8].lower() == b"https://":
        start = 8
    else:
        return None   # another scheme, or an authority form outside CONNECT
    i = start
    while i < n:
        c = target[i]
        if c == b"/" or c == b"?" or c == b"#":
            break   # the authority ends here, the path too if it is empty (RFC 3986 3.3)
        if c == b"@":
            return None   # userinfo in an http(s) URI (RFC 9110 4.2.4)
        i += 1
    if i == start:
        return None   # no host
    if i == n:
        return target[start:i], b"/"
    if target[i] == 47:   # '/'
        return target[start:i], target[i:]
    return target[start:i], b"/" + target[i:]
