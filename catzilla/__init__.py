"""catzilla: a streaming-first Python web framework with a Cython HTTP core on libuv."""

from catzilla import _uvlink  # noqa: F401  (must run before catzilla._core is imported)
from catzilla._core import Request
from catzilla.app import Catzilla
from catzilla.datastructures import Address, Headers, QueryParams
from catzilla.exceptions import HTTPException
from catzilla.files import FileResponse, UnsafePathError, safe_join
from catzilla.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

__version__ = "0.3.0.dev0"

__all__ = [
    "Address",
    "Catzilla",
    "FileResponse",
    "HTMLResponse",
    "HTTPException",
    "Headers",
    "JSONResponse",
    "PlainTextResponse",
    "QueryParams",
    "RedirectResponse",
    "Request",
    "Response",
    "StreamingResponse",
    "UnsafePathError",
    "safe_join",
]
