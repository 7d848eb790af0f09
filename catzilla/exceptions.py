"""Exceptions a handler raises to answer with an HTTP error."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus


class HTTPException(Exception):
    """Raise in a handler to answer with ``status_code`` and a JSON ``{"detail": ...}`` body.

    >>> raise HTTPException(404, "No such user")
    """

    def __init__(
        self,
        status_code: int,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if detail is None:
            try:
                detail = HTTPStatus(status_code).phrase
            except ValueError:
                detail = ""
        super().__init__(status_code, detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = dict(headers) if headers else None

    def __str__(self) -> str:
        return "%d: %s" % (self.status_code, self.detail)

    def __repr__(self) -> str:
        name = type(self).__name__
        return "%s(status_code=%r, detail=%r)" % (name, self.status_code, self.detail)
