"""Type stubs for catzilla._router (the Cython trie router)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

class Route:
    path: str
    endpoint: Any
    methods: frozenset[str]
    name: str | None
    param_names: tuple[str, ...]

class Router:
    def __init__(self) -> None: ...
    def add(
        self, path: str, endpoint: Any, methods: Iterable[str] | str, name: str | None = ...
    ) -> Route: ...
    def match(self, method: str, path: str) -> tuple[int, Any, dict[str, Any] | None]: ...
    @property
    def routes(self) -> list[Route]: ...
    def url_path_for(self, name: str, **params: Any) -> str: ...
    def __len__(self) -> int: ...
