"""catzilla: a streaming-first Python web framework with a Cython HTTP core on libuv."""

from catzilla import _uvlink  # noqa: F401  (must run before catzilla._core is imported)
from catzilla._core import Request
from catzilla._sse import ServerSentEvent, format_sse
from catzilla.app import Catzilla
from catzilla.datastructures import Address, Headers, QueryParams
from catzilla.exceptions import HTTPException
from catzilla.files import FileResponse, UnsafePathError, content_disposition, safe_join
from catzilla.hub import Broadcast
from catzilla.responses import (
    EventSourceResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
    stop_reconnecting,
)

__version__ = "0.3.0.dev0"

__all__ = [
    "Address",
    "Broadcast",
    "EventSourceResponse",
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
    "ServerSentEvent",
    "StreamingResponse",
    "UnsafePathError",
    "content_disposition",
    "format_sse",
    "safe_join",
    "stop_reconnecting",
]
