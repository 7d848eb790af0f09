"""Response classes. The core writes ``status_code``, ``raw_headers`` and ``body``.

Each class sets defaults as class attributes and converts its content in ``render()``
(the starlette model). Content-Length, Date, Server and Connection are added by the writer.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Mapping
from typing import Any

from catzilla import _checks
from catzilla.datastructures import MutableHeaders, charset_of

_ENCODED_TYPES: dict[tuple[str, str], tuple[tuple[bytes, bytes], str | None]] = {}


def _content_type_header(media_type: str, charset: str) -> tuple[tuple[bytes, bytes], str | None]:
    """The Content-Type header for ``media_type`` and the codec its own ``charset``
    parameter names (None when it names none: the class's ``charset`` is used, and added
    to text/* types)."""
    key = (media_type, charset)
    cached = _ENCODED_TYPES.get(key)
    if cached is None:
        value = media_type
        explicit = _codec_of(media_type)
        if media_type.startswith("text/") and "charset" not in media_type.lower():
            value = "%s; charset=%s" % (media_type, charset)
        cached = ((b"Content-Type", value.encode("latin-1")), explicit)
        if len(_ENCODED_TYPES) < 256:
            _ENCODED_TYPES[key] = cached
    return cached


def _codec_of(content_type: str) -> str | None:
    """The Python codec for the ``charset`` parameter of a Content-Type value, or None when
    there is none. An unknown charset is a ValueError: the body could not match the header."""
    if "charset" not in content_type.lower():
        return None
    charset = charset_of(content_type)
    if charset is None:
        return None
    try:
        info = codecs.lookup(charset)
    except LookupError:
        info = None
    if info is None or not getattr(info, "_is_text_encoding", True):
        raise ValueError("unknown charset %r in Content-Type %r" % (charset, content_type))
    return info.name


def _has_content(status_code: Any) -> bool:
    return status_code not in (204, 304)


class Response:
    """A complete HTTP response.

    >>> Response("hello")                                     # text/plain; charset=utf-8
    >>> Response(json.dumps(data), content_type="application/json")
    >>> Response(body=b"\\x00\\x01", media_type="application/octet-stream", status_code=201)
    """

    media_type: str | None = "text/plain"
    charset = "utf-8"

    def __init__(
        self,
        content: Any = None,
        status_code: int = 200,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        *,
        media_type: str | None = None,
        body: Any = None,
    ) -> None:
        if body is not None:
            if content is not None:
                raise TypeError("pass the body as `content` or as `body=`, not both")
            content = body
        if not isinstance(status_code, int) or not 200 <= status_code <= 599:
            # 1xx are interim: a client given one as the final answer waits for another one
            raise ValueError("status_code must be an int from 200 to 599, got %r" % (status_code,))
        self.status_code = status_code
        explicit = content_type is not None or media_type is not None
        if explicit:
            self.media_type = content_type or media_type
        # the headers first: a charset in the Content-Type decides how a str body is encoded
        if headers:
            self.raw_headers = self._init_headers(headers, explicit)
        else:
            # (the common answer, without a call per step: this runs for every response)
            media = self.media_type
            if media is not None and (explicit or (status_code != 204 and status_code != 304)):
                header = _ENCODED_TYPES.get((media, self.charset))
                if header is None:
                    header = _content_type_header(media, self.charset)
                if header[1] is not None:
                    self.charset = header[1]
                self.raw_headers = [header[0]]
            else:
                self.raw_headers = []
        self.body = self.render(content)

    def render(self, content: Any) -> bytes:
        if content is None:
            return b""
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode(self.charset)
        if isinstance(content, (bytearray, memoryview)):
            return bytes(content)
        raise TypeError(
            "%s content must be str or bytes, got %s"
            % (type(self).__name__, type(content).__name__)
        )

    def _init_headers(
        self, headers: Mapping[str, str] | list[tuple[str, str]] | None, explicit: bool
    ) -> list[tuple[bytes, bytes]]:
        """``explicit``: the response was given a media type (not the class's default)."""
        raw: list[tuple[bytes, bytes]] = []
        has_type = False
        if headers:
            items = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in items:
                if value is None:
                    raise TypeError(f"the response header {name!r} has no value (None)")
                name_b = name.encode("latin-1") if isinstance(name, str) else bytes(name)
                value_b = (
                    value.encode("latin-1") if isinstance(value, str) else str(value).encode()
                    if not isinstance(value, bytes) else value
                )
                if name_b.lower() == b"content-type":
                    has_type = True
                    codec = _codec_of(value_b.decode("latin-1"))
                    if codec is not None:
                        self.charset = codec
                raw.append((name_b, value_b))
        if (not has_type and self.media_type is not None
                and (explicit or _has_content(self.status_code))):
            # (204 and 304 have no content: no default Content-Type, only one asked for)
            header, codec = _content_type_header(self.media_type, self.charset)
            if codec is not None:
                self.charset = codec
            raw.append(header)
        return raw

    @property
    def headers(self) -> MutableHeaders:
        """Mutable, case-insensitive access to the headers: ``response.headers["X-A"] = "1"``."""
        return MutableHeaders(self.raw_headers)

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    def set_cookie(
        self,
        key: str,
        value: str = "",
        max_age: int | None = None,
        expires: int | None = None,
        path: str | None = "/",
        domain: str | None = None,
        secure: bool = False,
        httponly: bool = False,
        samesite: str | None = "lax",
    ) -> None:
        from http.cookies import SimpleCookie  # here: most servers never set a cookie

        cookie = SimpleCookie()
        cookie[key] = value
        morsel = cookie[key]
        if max_age is not None:
            morsel["max-age"] = max_age
        if expires is not None:
            morsel["expires"] = expires
        if path is not None:
            morsel["path"] = path
        if domain is not None:
            morsel["domain"] = domain
        if secure:
            morsel["secure"] = True
        if httponly:
            morsel["httponly"] = True
        if samesite is not None:
            if samesite.lower() not in ("strict", "lax", "none"):
                raise ValueError("samesite must be 'strict', 'lax' or 'none'")
            morsel["samesite"] = samesite
        self.raw_headers.append((b"Set-Cookie", morsel.OutputString().encode("latin-1")))

    def delete_cookie(self, key: str, path: str = "/", domain: str | None = None) -> None:
        self.set_cookie(key, max_age=0, expires=0, path=path, domain=domain)

    def __repr__(self) -> str:
        return "<%s status_code=%d>" % (type(self).__name__, self.status_code)


class PlainTextResponse(Response):
    media_type = "text/plain"


class HTMLResponse(Response):
    media_type = "text/html"


_json_encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    # The C encoder that JSONEncoder.encode() builds on every call, built once. Without the
    # circular-reference markers (per-call state) a cycle ends in RecursionError instead of
    # ValueError; either way the handler fails with a 500.
    _json_chunks = _c_make_encoder(
        None, _json_encoder.default, json.encoder.c_encode_basestring, None, ":", ",",
        False, False, False)

    def _json_bytes(content: Any) -> bytes:
        return "".join(_json_chunks(content, 0)).encode("utf-8")
else:  # pragma: no cover - CPython always has the C encoder
    def _json_bytes(content: Any) -> bytes:
        return _json_encoder.encode(content).encode("utf-8")


class JSONResponse(Response):
    """``JSONResponse({"message": "hi"}, status_code=201)``: compact UTF-8 JSON."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _json_bytes(content)


class RedirectResponse(Response):
    media_type = None

    def __init__(
        self, url: str, status_code: int = 307, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(None, status_code, headers)
        self.raw_headers.append((b"Location", _uri_reference(url).encode("ascii")))


def _uri_reference(url: str) -> str:
    """``url`` with every character a URI cannot hold percent-encoded as UTF-8 (non-ASCII,
    controls, space, ``"<>\\^`{|}``, a ``%`` not starting an escape); reserved characters and
    existing ``%XX`` escapes are kept (RFC 3986 section 2)."""
    if not isinstance(url, str):
        raise TypeError("the redirect URL must be a str, got %s" % type(url).__name__)
    if _NOT_URI.search(url) is None:
        return url
    return _NOT_URI.sub(_percent_encode, url)


def _percent_encode(match: Any) -> str:
    # surrogateescape: a str from os.fsdecode() gets the bytes of the original name back
    return "".join("%%%02X" % b for b in match.group().encode("utf-8", "surrogateescape"))


_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+|%(?![0-9A-Fa-f]{2})")


class StreamingResponse(Response):
    """A response whose body is produced while it is sent.

    ``content`` is a sync generator, iterator or iterable (run on a worker thread, so it may
    block or ``time.sleep``), an async generator or iterator (run on the event loop), or a
    callable returning one of those. Chunks may be ``str`` (encoded with the charset that
    ``content_type`` names, UTF-8 by default) or bytes-like. The body is sent with chunked
    transfer-encoding unless a ``Content-Length`` header is given.

    At a graceful stop the stream runs on until it ends or the app's ``shutdown_timeout``
    passes (then the client sees a reset). An endless stream would hold the stop for the
    whole deadline: ``stop_on_shutdown=True`` ends it at once instead (its producer's
    ``finally:`` runs, and the body ends without its terminating chunk).

    >>> def ticks():
    ...     for i in range(3):
    ...         yield f"data: {i}\\n\\n"
    ...         time.sleep(1)
    >>> StreamingResponse(ticks(), content_type="text/event-stream")
    """

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        *,
        media_type: str | None = None,
        stop_on_shutdown: bool = False,
    ) -> None:
        if content is None:
            raise TypeError("StreamingResponse needs content: a generator, iterator or iterable")
        super().__init__(None, status_code, headers, content_type, media_type=media_type)
        self.content = content
        self.stop_on_shutdown = bool(stop_on_shutdown)


class EventSourceResponse(StreamingResponse):
    """A Server-Sent Events stream.

    ``content`` is anything StreamingResponse accepts, or ``hub.subscribe(channel)``; it may
    yield ``ServerSentEvent``, a ``dict`` of fields, or ``str``/``bytes`` sent untouched (so
    hand-formatted ``"data: ...\\n\\n"`` strings work). After ``ping`` seconds without a write
    a ``: ping`` comment keeps proxies from closing the stream (a libuv timer per stream, reset
    by every write). A client whose socket has not drained for ``send_timeout`` seconds is
    disconnected. ``retry`` (ms) is sent first. A graceful stop ends the stream at once (its
    client resumes by ``Last-Event-ID``) unless ``stop_on_shutdown=False``.

    >>> EventSourceResponse(app.broadcast.subscribe("news", request.last_event_id))
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: Any,
        ping: float | None = 15.0,
        headers: Mapping[str, str] | None = None,
        status_code: int = 200,
        send_timeout: float | None = None,
        retry: int | None = None,
        *,
        stop_on_shutdown: bool = True,
    ) -> None:
        merged = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        if headers:
            merged.update(headers)
        super().__init__(content, status_code, merged, stop_on_shutdown=stop_on_shutdown)
        if ping is not None:
            _checks.seconds("ping", ping, zero="no pings")
        if send_timeout is not None:
            _checks.seconds("send_timeout", send_timeout, zero="the app's send_timeout alone")
        if retry is not None:
            _checks.count("retry", retry, minimum=0)
        self.ping = ping
        self.send_timeout = send_timeout
        self.retry = retry


def stop_reconnecting() -> Response:
    """A 204 No Content answer, which tells a browser's EventSource to stop reconnecting."""
    return Response(status_code=204)


def to_response(result: Any) -> Response:
    """Turn what a handler returned into a Response (dict/list -> JSON, str -> text)."""
    if isinstance(result, Response):
        return result
    if isinstance(result, (dict, list)):
        return JSONResponse(result)
    if isinstance(result, str):
        return PlainTextResponse(result)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Response(result, media_type="application/octet-stream")
    if result is None:
        raise TypeError("the handler returned None; return a Response, a dict, a list or a str")
    raise TypeError(
        "the handler returned %s; return a Response, a dict, a list or a str"
        % type(result).__name__
    )
