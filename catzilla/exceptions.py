"""Exceptions a handler raises to answer with an HTTP error."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from json import JSONDecodeError


class HTTPException(Exception):
    """Raise in a handler to answer with ``status_code`` and a JSON ``{"detail": ...}`` body.

    >>> raise HTTPException(404, "No such user")

    ``status_code`` must be a final status, an int from 200 to 599 (ValueError otherwise).
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(status_code, int) or not 200 <= status_code <= 599:
            raise ValueError(
                "HTTPException status_code must be an int from 200 to 599, got %r"
                % (status_code,))
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:
                detail = ""
        # Not super(): in RequestJSONError the next class in the MRO is JSONDecodeError.
        Exception.__init__(self, status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None

    def __str__(self) -> str:
        return "%d: %s" % (self.status_code, self.detail)

    def __repr__(self) -> str:
        name = type(self).__name__
        return "%s(status_code=%r, detail=%r)" % (name, self.status_code, self.detail)


class RequestBodyError(HTTPException, ValueError):
    """The request body cannot be read as asked: ``request.json()`` on a body that is not
    JSON, ``request.text()`` with a charset Python does not know. It is the client's error,
    so uncaught it answers 400 ``{"detail": ...}`` (nothing logged); it is also a
    ``ValueError``, so ``except ValueError`` around ``request.json()`` keeps working.
    """

    def __init__(self, detail: str) -> None:
        HTTPException.__init__(self, 400, detail)
        self.args = (detail,)


class RequestJSONError(RequestBodyError, JSONDecodeError):
    """``request.json()`` on an empty body, invalid JSON, bytes that are not UTF-8/16/32,
    nesting deeper than the recursion limit, or an int over the digit limit. Also a
    ``json.JSONDecodeError`` (``msg``, ``doc``, ``pos``, ``lineno``, ``colno``).
    """

    def __init__(self, msg: str, doc: str, pos: int) -> None:
        lineno = doc.count("\n", 0, pos) + 1
        colno = pos - doc.rfind("\n", 0, pos)
        RequestBodyError.__init__(
            self, "Invalid JSON in the request body: %s: line %d column %d (char %d)"
            % (msg, lineno, colno, pos))
        self.msg = msg
        self.doc = doc
        self.pos = pos
        self.lineno = lineno
        self.colno = colno

    def __reduce__(self):  # type: ignore[override]
        return type(self), (self.msg, self.doc, self.pos)
