"""Headers, query parameters, addresses and other small value types."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote, unquote_plus, unquote_to_bytes


class Address(NamedTuple):
    host: str
    port: int


class State:
    """A free-form attribute bag (``request.state.user = ...``)."""

    def __repr__(self) -> str:
        return "State(%r)" % vars(self)


class MultiDict(Mapping):
    """An immutable mapping that keeps every value of repeated keys.

    ``d[key]`` and ``d.get(key)`` give the last value, ``d.getlist(key)`` all of them:

    >>> q = QueryParams(b"a=1&a=2&b=3")
    >>> q["a"], q.getlist("a"), q.get("c", "none")
    ('2', ['1', '2'], 'none')
    """

    __slots__ = ("_list", "_dict")

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._list = items
        self._dict = dict(items)

    def __getitem__(self, key: str) -> str:
        return self._dict[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._dict.get(key, default)   # (Mapping.get: two frames and, on a miss, a raise)

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._list if k == key]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._list)

    def __repr__(self) -> str:
        return "%s(%r)" % (type(self).__name__, self._list)


class QueryParams(MultiDict):
    """Parsed ``application/x-www-form-urlencoded`` data (a query string or a form body).
    Bytes are UTF-8 (invalid sequences replaced), raw or percent-encoded."""

    __slots__ = ()

    def __init__(self, raw: bytes | str | list[tuple[str, str]] = b"") -> None:
        if isinstance(raw, (bytes, bytearray)):
            raw = raw.decode("utf-8", errors="replace")
        items = parse_query(raw) if isinstance(raw, str) else list(raw)
        super().__init__(items)


def parse_query(raw: str) -> list[tuple[str, str]]:
    """``urllib.parse.parse_qsl(raw, keep_blank_values=True, errors="replace")``, about twice
    as fast: only fields with ``%`` or ``+`` go through unquoting."""
    items = []
    for field in raw.split("&"):
        if not field:
            continue
        name, _, value = field.partition("=")
        if "%" in field or "+" in field:
            name = unquote_plus(name, errors="replace")
            value = unquote_plus(value, errors="replace")
        items.append((name, value))
    return items


class Headers(Mapping):
    """Case-insensitive, multi-value request headers built from raw byte pairs."""

    __slots__ = ("_list",)

    def __init__(self, raw: list[tuple[bytes, bytes]] | None = None) -> None:
        self._list = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in raw or ()]

    def __getitem__(self, key: str) -> str:
        key = key.lower()
        for k, v in reversed(self._list):
            if k == key:
                return v
        raise KeyError(key)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, str):
            return False
        key = key.lower()
        return any(k == key for k, _ in self._list)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(k for k, _ in self._list))

    def __len__(self) -> int:
        return len({k for k, _ in self._list})

    def getlist(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self._list if k == key]

    def raw_items(self) -> list[tuple[str, str]]:
        return list(self._list)

    def __repr__(self) -> str:
        return "Headers(%r)" % self._list


class MutableHeaders:
    """A live, case-insensitive view over a response's ``raw_headers`` list of byte pairs."""

    __slots__ = ("_raw",)

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self._raw = raw

    def _key(self, key: str) -> bytes:
        return key.lower().encode("latin-1")

    def __getitem__(self, key: str) -> str:
        k = self._key(key)
        for name, value in self._raw:
            if name.lower() == k:
                return value.decode("latin-1")
        raise KeyError(key)

    def get(self, key: str, default: str | None = None) -> str | None:
        try:
            return self[key]
        except KeyError:
            return default

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def __setitem__(self, key: str, value: str) -> None:
        k = self._key(key)
        self._raw[:] = [(n, v) for n, v in self._raw if n.lower() != k]
        self._raw.append((key.encode("latin-1"), str(value).encode("latin-1")))

    def __delitem__(self, key: str) -> None:
        k = self._key(key)
        before = len(self._raw)
        self._raw[:] = [(n, v) for n, v in self._raw if n.lower() != k]
        if len(self._raw) == before:
            raise KeyError(key)

    def append(self, key: str, value: str) -> None:
        self._raw.append((key.encode("latin-1"), str(value).encode("latin-1")))

    def setdefault(self, key: str, value: str) -> str:
        existing = self.get(key)
        if existing is None:
            self.append(key, value)
            return value
        return existing

    def items(self) -> list[tuple[str, str]]:
        return [(n.decode("latin-1"), v.decode("latin-1")) for n, v in self._raw]

    def keys(self) -> list[str]:
        return [n for n, _ in self.items()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return "MutableHeaders(%r)" % self.items()


def unquote_path(raw: bytes) -> str:
    """Percent-decode a request path (UTF-8, invalid sequences replaced)."""
    if b"%" not in raw:
        return raw.decode("latin-1")
    return unquote_to_bytes(raw).decode("utf-8", errors="replace")


def parse_cookie_header(value: str) -> dict[str, str]:
    """Parse a ``Cookie`` request header into a dict (browser behaviour: lenient, last wins)."""
    cookies: dict[str, str] = {}
    for chunk in value.split(";"):
        if "=" in chunk:
            key, val = chunk.split("=", 1)
        else:
            key, val = "", chunk
        key, val = key.strip(), val.strip()
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        if key or val:
            cookies[key] = unquote(val)
    return cookies


def charset_of(content_type: str) -> str | None:
    """The ``charset`` parameter of a Content-Type value, if any."""
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None
