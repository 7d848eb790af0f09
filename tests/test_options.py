"""Catzilla(...) and EventSourceResponse(...) check their options when they are made."""

import math

import pytest

from catzilla import Catzilla, EventSourceResponse

TIMEOUTS = ["keep_alive_timeout", "request_timeout", "lingering_timeout", "lingering_time",
            "stream_thread_idle_timeout"]
COUNTS = ["max_header_size", "max_url_size", "max_headers", "max_body_size", "write_high_water",
          "max_stream_threads"]


@pytest.mark.parametrize("name", TIMEOUTS + ["send_timeout", "shutdown_timeout"])
@pytest.mark.parametrize("value", [-1, -0.5, math.inf, math.nan])
def test_a_timeout_must_be_finite_and_not_negative(name, value):
    with pytest.raises(ValueError, match=name):
        Catzilla(**{name: value})


@pytest.mark.parametrize("name", TIMEOUTS)
def test_a_timeout_of_zero_is_refused_where_it_means_nothing(name):
    with pytest.raises(ValueError, match=f"{name} must be .* above 0"):
        Catzilla(**{name: 0})


@pytest.mark.parametrize("name", ["send_timeout", "shutdown_timeout"])
def test_zero_is_allowed_where_it_has_a_meaning(name):
    app = Catzilla(**{name: 0})
    assert (app.limits.get(name) if name in app.limits else app.shutdown_timeout) == 0


@pytest.mark.parametrize("name", TIMEOUTS + ["send_timeout", "shutdown_timeout"])
@pytest.mark.parametrize("value", ["5", None, True])
def test_a_timeout_must_be_a_number(name, value):
    with pytest.raises(TypeError, match=name):
        Catzilla(**{name: value})


@pytest.mark.parametrize("name", COUNTS)
@pytest.mark.parametrize("value,error", [(0, ValueError), (-3, ValueError), (1.5, TypeError),
                                         ("10", TypeError), (True, TypeError)])
def test_sizes_and_counts_are_positive_ints(name, value, error):
    with pytest.raises(error, match=name):
        Catzilla(**{name: value})


def test_write_marks_are_ordered():
    Catzilla(write_high_water=1024, write_low_water=0)
    Catzilla(write_high_water=1024, write_low_water=1024)
    with pytest.raises(ValueError, match="write_low_water .* write_high_water"):
        Catzilla(write_high_water=1024, write_low_water=2048)
    with pytest.raises(ValueError, match="write_low_water"):
        Catzilla(write_low_water=-1)


@pytest.mark.parametrize("value", [-1, math.nan, math.inf])
def test_min_body_rate(value):
    Catzilla(min_body_rate=0)
    with pytest.raises(ValueError, match="min_body_rate"):
        Catzilla(min_body_rate=value)


@pytest.mark.parametrize("value", ["x\r\nSet-Cookie: a=b", "x\n", "a\x00b", "snowman \u2603"])
def test_server_header_is_one_line_of_latin1(value):
    with pytest.raises(ValueError, match="server_header"):
        Catzilla(server_header=value)


def test_server_header_may_be_none_or_text():
    Catzilla(server_header=None)
    Catzilla(server_header="my-app/1.0 (caf\xe9)")
    with pytest.raises(TypeError, match="server_header"):
        Catzilla(server_header=b"bytes")


def test_the_defaults_pass_their_own_checks():
    app = Catzilla()
    assert app.limits["lingering_timeout"] == 2.0 and app.shutdown_timeout == 5.0


def _events():
    yield "data: x\n\n"


@pytest.mark.parametrize("kw,error", [
    ({"ping": -1}, ValueError), ({"ping": math.nan}, ValueError), ({"ping": "15"}, TypeError),
    ({"send_timeout": -2}, ValueError), ({"send_timeout": math.inf}, ValueError),
    ({"retry": -1}, ValueError), ({"retry": 1.5}, TypeError), ({"retry": True}, TypeError),
])
def test_event_source_options(kw, error):
    with pytest.raises(error, match=next(iter(kw))):
        EventSourceResponse(_events(), **kw)


def test_event_source_zero_and_none():
    r = EventSourceResponse(_events(), ping=None, send_timeout=None, retry=None)
    assert (r.ping, r.send_timeout, r.retry) == (None, None, None)
    r = EventSourceResponse(_events(), ping=0, send_timeout=0, retry=0)
    assert (r.ping, r.send_timeout, r.retry) == (0, 0, 0)
