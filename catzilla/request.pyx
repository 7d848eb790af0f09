# The Request: what the HTTP/1.1 protocol parsed, its parts decoded on first use.

import json as _json

cdef class Request:
    """An HTTP request. Headers, query parameters and cookies are parsed on first use."""

    @property
    def path(self):
        """The percent-decoded path, e.g. '/files/a b' for b'/files/a%20b'."""
        if self._path is None:
            self._path = _ds.unquote_path(self.raw_path)
        return self._path

    @property
    def headers(self):
        if self._headers is None:
            self._headers = _ds.Headers(self.raw_headers)
        return self._headers

    @property
    def trailers(self):
        """The trailer fields that followed a chunked body (empty for most requests)."""
        return _ds.Headers(self.raw_trailers or [])

    @property
    def query_params(self):
        if self._query is None:
            self._query = _ds.QueryParams(self.query_string)
        return self._query

    @property
    def cookies(self):
        if self._cookies is None:
            self._cookies = _ds.parse_cookie_header(self.headers.get("cookie", ""))
        return self._cookies

    @property
    def body(self):
        return self._body

    @property
    def last_event_id(self):
        """The ``Last-Event-ID`` header a reconnecting EventSource sends, or None."""
        return self.headers.get("last-event-id")

    @property
    def content_type(self):
        return self.headers.get("content-type", "")

    def text(self, encoding=None):
        """The body as str: decoded with ``encoding``, else the Content-Type's charset, else
        UTF-8; undecodable bytes are replaced. A charset Python does not know raises
        RequestBodyError (uncaught: 400)."""
        if encoding is not None:
            return self._body.decode(encoding, errors="replace")
        charset = _ds.charset_of(self.content_type)
        if charset is None:
            return self._body.decode("utf-8", errors="replace")
        try:
            return self._body.decode(charset, errors="replace")
        except (LookupError, UnicodeError):
            # LookupError also for bytes-to-bytes codecs such as base64
            from catzilla.exceptions import RequestBodyError
            raise RequestBodyError("Unsupported charset %r in the request's Content-Type"
                                   % charset[:64]) from None

    def json(self):
        """The body parsed as JSON (UTF-8, -16 or -32). An empty or invalid body raises
        RequestJSONError: a ValueError and json.JSONDecodeError (uncaught: 400)."""
        cdef bytes body = self._body
        if self._json is None:
            try:
                if not body:
                    raise _json.JSONDecodeError("Expecting value (the body is empty)", "", 0)
                self._json = _json.loads(body)
            except (ValueError, RecursionError) as exc:
                # the client's error: UnicodeDecodeError (not UTF-8/16/32), an int past
                # sys.get_int_max_str_digits(), nesting deeper than the recursion limit
                from catzilla.exceptions import RequestJSONError
                if isinstance(exc, _json.JSONDecodeError):
                    raise RequestJSONError(exc.msg, exc.doc, exc.pos) from None
                raise RequestJSONError(
                    "Nesting too deep" if isinstance(exc, RecursionError) else str(exc),
                    body.decode("utf-8", errors="replace"),
                    exc.start if isinstance(exc, UnicodeDecodeError) else 0) from None
        return self._json

    def form(self):
        """The urlencoded form fields of the body, as a multi-value mapping."""
        return _ds.QueryParams(self._body.decode("utf-8", errors="replace"))

    @property
    def client(self):
        if self.conn is None:
            return None
        return self.conn.client

    @property
    def connection_id(self):
        return self.conn.id if self.conn is not None else None

    @property
    def connection(self):
        return self.conn

    def is_disconnected(self):
        return self.conn is None or self.conn.closed

    @property
    def app(self):
        return self.conn.server.app if self.conn is not None else None

    @property
    def state(self):
        if self._state is None:
            self._state = _ds.State()
        return self._state

    @property
    def url(self):
        if self._authority:   # an absolute-form target's own host (RFC 9112 3.2.2)
            host = self._authority.decode("latin-1")
        else:
            host = self.headers.get("host") or "localhost"
        url = "http://%s%s" % (host, self.raw_path.decode("latin-1"))
        if self.query_string:
            url += "?" + self.query_string.decode("latin-1")
        return url

    def __repr__(self):
        return "<Request %s %s>" % (self.method, self.raw_path.decode("latin-1"))
