"""HTTP-date formatting and parsing (catzilla/_httpdate.py), checked against email.utils."""

from __future__ import annotations

import random
import time
from email.utils import formatdate, parsedate_to_datetime

import pytest

from catzilla._httpdate import format_http_date, parse_http_date

RFC_EXAMPLE = 784111777    # RFC 9110 §5.6.7: Sun, 06 Nov 1994 08:49:37 GMT


def test_the_rfc_example_in_all_three_forms():
    assert format_http_date(RFC_EXAMPLE) == "Sun, 06 Nov 1994 08:49:37 GMT"
    assert parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == RFC_EXAMPLE
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == RFC_EXAMPLE
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == RFC_EXAMPLE


def test_format_and_parse_agree_with_email_utils_over_random_times():
    rng = random.Random(7)
    for _ in range(2000):
        t = rng.randrange(0, 2**34)            # 1970 to the year 2514
        text = format_http_date(t)
        assert text == formatdate(t, usegmt=True)
        assert parse_http_date(text) == t == int(parsedate_to_datetime(text).timestamp())


def test_now_is_the_default():
    before = int(time.time())
    parsed = parse_http_date(format_http_date())
    assert before <= parsed <= int(time.time())


def test_two_digit_years_more_than_50_years_ahead_are_in_the_past():
    now = parse_http_date("Thu, 26 Nov 2026 00:00:00 GMT")
    assert parse_http_date("Monday, 01-Jan-76 00:00:00 GMT", now) == \
        parse_http_date("Thu, 01 Jan 2076 00:00:00 GMT")
    assert parse_http_date("Friday, 01-Jan-77 00:00:00 GMT", now) == \
        parse_http_date("Fri, 01 Jan 1977 00:00:00 GMT")


@pytest.mark.parametrize("value", [
    "", "yesterday", "Sun, 06 Nov 1994 08:49:37",            # no zone
    "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
    "Sun, 06 Nov 94 08:49:37 GMT", "Sun, 06 Nos 1994 08:49:37 GMT",
    "Sun, 31 Feb 1994 08:49:37 GMT", "Sun, 29 Feb 1900 00:00:00 GMT",
    "Sun, 06 Nov 1994 24:00:00 GMT", "Sun, 06 Nov 1994 08:60:00 GMT",
    "Sun, 06 Nov 1994 8:49:37 GMT", "Sun, 06 Nov 1994 08:49 GMT",
    "Sunday, 06-Nov-1994 08:49:37 GMT", "Sunday, 06-Nov-94-1 08:49:37 GMT",
    "Sun Nov  6 08:49:37 94", "Sun Nov 32 08:49:37 1994", "Sun Nov +6 08:49:37 1994",
    "Sun, 06 Nov 1994 08:49:37 GMT trailing",
])
def test_what_is_not_an_http_date_gives_none(value):
    assert parse_http_date(value) is None


def test_leap_days():
    assert parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT") == 951782400
    assert format_http_date(951782400) == "Tue, 29 Feb 2000 00:00:00 GMT"
