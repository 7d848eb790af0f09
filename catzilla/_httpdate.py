"""HTTP-date (RFC 9110 §5.6.7): format the preferred form, parse all three.

Written out here so that the core does not import ``email.utils`` (with ``email``,
``calendar`` and ``datetime`` it adds about 1.4 MiB to every server's resident size).
"""

from __future__ import annotations

import time

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_LONG_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name: i + 1 for i, name in enumerate(_MONTHS)}


def format_http_date(timestamp: float | None = None) -> str:
    """IMF-fixdate, e.g. ``Sun, 06 Nov 1994 08:49:37 GMT`` (now when ``timestamp`` is None)."""
    # (gmtime(None) reads time(2), a coarser clock than time.time()'s: it can be a second off)
    t = time.gmtime(time.time() if timestamp is None else timestamp)
    return "%s, %02d %s %04d %02d:%02d:%02d GMT" % (
        _DAYS[t.tm_wday], t.tm_mday, _MONTHS[t.tm_mon - 1], t.tm_year,
        t.tm_hour, t.tm_min, t.tm_sec)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _clock(value: str) -> tuple[int, int, int] | None:
    parts = value.split(":")
    if len(parts) != 3 or not all(len(p) == 2 and p.isdigit() for p in parts):
        return None
    hour, minute, second = (int(p) for p in parts)
    if hour > 23 or minute > 59 or second > 60:     # 60: a leap second
        return None
    return hour, minute, second


def parse_http_date(value: str, now: float | None = None) -> int | None:
    """Seconds since the epoch of an HTTP-date, or None when ``value`` is not one.

    Accepts IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), the obsolete RFC 850 form
    (``Sunday, 06-Nov-94 08:49:37 GMT``) and asctime (``Sun Nov  6 08:49:37 1994``). A two-digit
    RFC 850 year more than 50 years ahead of ``now`` is read as the latest such year in the past.
    """
    fields = value.split()
    if len(fields) == 6 and fields[0] in (d + "," for d in _DAYS) and fields[5] == "GMT":
        day, month, year, clock = fields[1], fields[2], fields[3], fields[4]
        if len(day) != 2 or len(year) != 4:
            return None
    elif len(fields) == 4 and fields[0] in (d + "," for d in _LONG_DAYS) and fields[3] == "GMT":
        day, month, year = (fields[1].split("-") + ["", "", ""])[:3]
        clock = fields[2]
        if len(day) != 2 or len(year) != 2 or fields[1].count("-") != 2:
            return None
    elif len(fields) == 5 and fields[0] in _DAYS:
        month, day, clock, year = fields[1], fields[2], fields[3], fields[4]
        if len(day) not in (1, 2) or len(year) != 4:
            return None
    else:
        return None
    if not (day.isdigit() and year.isdigit()) or month not in _MONTH_NUMBER:
        return None
    hms = _clock(clock)
    if hms is None:
        return None
    y, m, d = int(year), _MONTH_NUMBER[month], int(day)
    if len(year) == 2:
        this_year = time.gmtime(now).tm_year
        y += this_year - this_year % 100
        if y > this_year + 50:
            y -= 100
    if not 1 <= d <= _days_in_month(y, m):
        return None
    return _days_from_civil(y, m, d) * 86400 + hms[0] * 3600 + hms[1] * 60 + hms[2]
