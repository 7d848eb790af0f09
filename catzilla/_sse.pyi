"""Type stubs for catzilla._sse, the Server-Sent Events encoder (see its module docstring)."""
from __future__ import annotations

from typing import Any, Mapping

__all__ = ["ServerSentEvent", "encode_item", "format_sse"]

class ServerSentEvent:
    """One event, validated and encoded when created; equal when fields and bytes are equal."""

    def __init__(
        self,
        data: Any = None,
        event: str | None = None,
        id: str | int | None = None,
        retry: int | None = None,
        comment: str | None = None,
    ) -> None: ...
    @property
    def data(self) -> Any: ...
    @property
    def event(self) -> str | None: ...
    @property
    def id(self) -> str | None:
        """An int id is kept as its decimal text."""
    @property
    def retry(self) -> int | None: ...
    @property
    def comment(self) -> str | None: ...
    def encode(self) -> bytes: ...
    def __eq__(self, other: object) -> bool: ...
    def __ne__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...
    def __reduce__(self) -> tuple[type[ServerSentEvent], tuple[Any, ...]]: ...

def format_sse(
    data: Any = None,
    event: str | None = None,
    id: str | int | None = None,
    retry: int | None = None,
    comment: str | None = None,
) -> bytes: ...
def encode_item(
    obj: ServerSentEvent | Mapping[str, Any] | str | bytes | bytearray | memoryview,
) -> bytes:
    """ServerSentEvent -> its bytes; dict -> an event; str / bytes-like -> unchanged bytes."""
