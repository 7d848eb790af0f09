"""Checks of the options Catzilla(...) and the responses take: a bad value is a clear error
when the app or the response is made, not a server that misbehaves later (a negative timeout
turned into an unsigned count of milliseconds, say, or a header that ends a line)."""

from __future__ import annotations

import math
from typing import Any


def seconds(name: str, value: Any, *, zero: str | None = None) -> float:
    """A finite number of seconds above 0; 0 too where ``zero`` says what it means."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (value == 0 and zero is None):
        allowed = f"0 ({zero}) or more" if zero is not None else "above 0"
        raise ValueError(f"{name} must be a finite number of seconds, {allowed}; got {value!r}")
    return float(value)


def count(name: str, value: Any, *, minimum: int = 1) -> int:
    """A whole number of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return value


def rate(name: str, value: Any) -> float:
    """Bytes per second, 0 (no minimum) or more."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of bytes per second, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number of bytes per second, 0 (no minimum) "
                         f"or more; got {value!r}")
    return float(value)


def header_value(name: str, value: Any) -> str | None:
    """A header field value of ours: None (no header), or visible latin-1 text and spaces, no
    line break (which would end the field and start another)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str or None, got {value!r}")
    if any(not (c == "\t" or " " <= c <= "~" or "\xa0" <= c <= "\xff") for c in value):
        raise ValueError(f"{name} must be printable latin-1 text with no line break, "
                         f"got {value!r}")
    return value
