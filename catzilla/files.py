"""Files: FileResponse (sendfile, Range, ETag/Last-Modified, HEAD) and safe_join."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from catzilla._httpdate import format_http_date, parse_http_date
from catzilla.responses import JSONResponse, Response

if TYPE_CHECKING:
    from pathlib import Path


class UnsafePathError(ValueError):
    """A user-supplied name would leave the directory it is joined to."""


def safe_join(root: str | os.PathLike[str], name: str) -> Path:
    """Join a user-supplied relative ``name`` to ``root``; refuse anything that escapes it.

    >>> safe_join("uploads", "reports/2026.csv")      # uploads/reports/2026.csv
    >>> safe_join("uploads", "../etc/passwd")          # raises UnsafePathError

    Refused: absolute names, ``..`` segments, backslashes, NUL, percent-encoded separators
    or dots left in the name (a sign of double encoding), and symlinks resolving outside root.
    """
    if not isinstance(name, str) or not name:
        raise UnsafePathError("empty file name")
    lowered = name.lower()
    if "\x00" in name or "\\" in name or "%2f" in lowered or "%5c" in lowered or "%2e" in lowered:
        raise UnsafePathError("invalid character in file name %r" % name)
    if name.startswith("/") or os.path.isabs(name):
        raise UnsafePathError("absolute file name %r" % name)
    parts = name.split("/")
    if any(p in ("..", ".") for p in parts):
        raise UnsafePathError("file name %r leaves its directory" % name)
    from pathlib import Path  # here, not at import: the server itself never needs pathlib

    base = Path(root).resolve()
    target = (base / name).resolve()
    if target != base and base not in target.parents:
        raise UnsafePathError("file name %r resolves outside %s" % (name, base))
    return target


class FileResponse(Response):
    """Send a file with sendfile(2): ``Content-Length``, ``ETag``, ``Last-Modified``,
    single ``Range`` requests (206, 416), conditional requests (304) and HEAD.

    >>> FileResponse(safe_join("uploads", name), filename=name)

    One FileResponse may be returned for any number of requests (a module-level
    ``ICON = FileResponse("favicon.ico")``): what each request gets (200, 206, 304 or 416,
    its ``Content-Range`` and ``Content-Length``) is decided per request and never stored
    in the object.
    """

    media_type = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        filename: str | None = None,
        content_type: str | None = None,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        *,
        media_type: str | None = None,
        content_disposition_type: str = "attachment",
    ) -> None:
        self.path = os.fspath(path)
        self.filename = filename
        media = content_type or media_type
        if media is None:
            import mimetypes  # here: its tables are read on first use anyway

            media = mimetypes.guess_type(filename or self.path)[0] or "application/octet-stream"
        super().__init__(None, status_code, headers, media)
        if filename is not None:
            self.raw_headers.append(
                (b"Content-Disposition",
                 content_disposition(filename, content_disposition_type).encode("latin-1")))
        self.file_range: tuple[str, int, int] | None = None

    def prepare(self, request: Any) -> Response:
        """Decide status, range and headers for ``request``. Returns a copy of this object for
        this request alone, with ``file_range`` (path, offset, count) set, when the file body
        is to be sent; or another, complete Response (304, 404, 416). The object itself is
        left as it was, so one FileResponse can answer any number of requests."""
        try:
            st = os.stat(self.path)
        except (FileNotFoundError, NotADirectoryError):
            return JSONResponse({"detail": "Not Found"}, 404)
        if not stat.S_ISREG(st.st_mode):
            return JSONResponse({"detail": "Not Found"}, 404)
        size = st.st_size
        etag = '"%x-%x"' % (st.st_mtime_ns, size)
        last_modified = format_http_date(st.st_mtime)
        validators = [(b"ETag", etag.encode()), (b"Last-Modified", last_modified.encode())]
        headers = request.headers
        status = self.status_code
        if status == 200 and _not_modified(headers, etag, st.st_mtime):
            # what a 200 would have carried of these, the 304 must too (RFC 9110 15.4.5)
            response = Response(None, 304)
            response.raw_headers = [(k, v) for k, v in self.raw_headers
                                    if k.lower() in _KEPT_BY_304] + validators
            return response
        raw = self.raw_headers + validators
        raw.append((b"Accept-Ranges", b"bytes"))
        offset, count = 0, size
        range_header = headers.get("range")
        if (status == 200 and range_header is not None
                and _if_range_holds(headers.get("if-range"), etag, last_modified)):
            parsed = _parse_range(range_header, size)
            if parsed == "unsatisfiable":
                response = JSONResponse({"detail": "Range Not Satisfiable"}, 416)
                response.raw_headers.append((b"Content-Range", b"bytes */%d" % size))
                return response
            if parsed is not None:
                start, end = parsed
                offset, count = start, end - start + 1
                status = 206
                raw.append((b"Content-Range", b"bytes %d-%d/%d" % (start, end, size)))
        raw.append((b"Content-Length", b"%d" % count))
        prepared = object.__new__(type(self))
        prepared.__dict__.update(self.__dict__)
        prepared.status_code = status
        prepared.raw_headers = raw
        prepared.file_range = (self.path, offset, count)
        return prepared


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """A Content-Disposition value for any file name: ``attachment; filename="..."`` with
    an ASCII fallback (quoted-string, RFC 9110 section 5.6.4: ``\\`` and ``"`` escaped,
    controls and non-ASCII replaced), plus ``filename*=utf-8''...`` (RFC 8187) when the
    fallback is not the exact name.

    >>> content_disposition("日本.txt")
    # attachment; filename="??.txt"; filename*=utf-8''%E6%97%A5%E6%9C%AC.txt
    """
    fallback = _NOT_QDTEXT.sub("_", filename.encode("ascii", "replace").decode("ascii"))
    value = '%s; filename="%s"' % (
        disposition, fallback.replace("\\", "\\\\").replace('"', '\\"'))
    if fallback != filename or '"' in filename or "\\" in filename:
        value += "; filename*=utf-8''%s" % quote(filename, safe="!#$&+-.^_`|~")
    return value


_NOT_QDTEXT = re.compile(r"[\x00-\x1f\x7f]")


_KEPT_BY_304 = {b"cache-control", b"content-location", b"expires", b"vary"}


def _not_modified(headers: Any, etag: str, mtime: float) -> bool:
    inm = headers.get("if-none-match")
    if inm is not None:
        tags = [t.strip().removeprefix("W/") for t in inm.split(",")]
        return "*" in tags or etag in tags
    ims = headers.get("if-modified-since")
    if ims is not None:
        since = parse_http_date(ims)     # not an HTTP-date: ignored (RFC 9110 §13.1.3)
        return since is not None and int(mtime) <= since
    return False


def _if_range_holds(if_range: str | None, etag: str, last_modified: str) -> bool:
    return if_range is None or if_range.strip() in (etag, last_modified)


def _parse_range(value: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range as (first, last) inclusive; "unsatisfiable"; or None to ignore
    the header (malformed, or several ranges: the whole file is sent instead)."""
    unit, _, spec = value.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable" if suffix == 0 else None
            return (max(0, size - suffix), size - 1) if size else "unsatisfiable"
        start = int(first)
        end = int(last) if last else None
    except ValueError:
        return None
    if start < 0 or (end is not None and end < start):
        return None                  # an invalid range-spec: the header is ignored
    if start >= size:
        return "unsatisfiable"       # bytes=<size>- as well (RFC 9110 section 14.1.2)
    return start, size - 1 if end is None else min(end, size - 1)
