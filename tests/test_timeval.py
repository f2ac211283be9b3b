"""Timestamps: the ULM form (formats.md §0.3) and the ISO form of JSON and the scenarios."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given, settings, strategies as st

from lbtx.errors import LBFormatError
from lbtx.timeval import NULL_TIME, Timeval

MAX_SEC = calendar.timegm((9999, 12, 31, 23, 59, 59))


def test_spec_example():
    """§0.3: 20240301120000.000500 = 1709294400 s + 500 µs."""
    t = Timeval.from_ulm("20240301120000.000500")
    assert t == Timeval(1709294400, 500)
    assert t.to_ulm() == "20240301120000.000500"
    assert len(t.to_ulm()) == 21


def test_ulm_examples():
    assert Timeval.from_ulm("19700101000000.000000") == NULL_TIME
    assert Timeval.from_ulm("20040831150159.702224") == Timeval(1093964519, 702224)
    assert Timeval(1093964519, 702224).to_ulm() == "20040831150159.702224"
    assert NULL_TIME.to_ulm() == "19700101000000.000000"
    assert NULL_TIME.is_null() and not Timeval(0, 1).is_null()


def test_ulm_without_or_with_short_microseconds():
    """The microseconds are read as an integer count (atol), so fewer digits are tolerated."""
    assert Timeval.from_ulm("20240301120000") == Timeval(1709294400, 0)
    assert Timeval.from_ulm("20240301120000.") == Timeval(1709294400, 0)
    assert Timeval.from_ulm("20240301120000.5") == Timeval(1709294400, 5)
    assert Timeval.from_ulm("20240301120000.000005") == Timeval(1709294400, 5)
    assert Timeval.from_ulm("20240301120000.999999") == Timeval(1709294400, 999999)


def test_leap_day():
    assert Timeval.from_ulm("20240229000000.000000").to_ulm() == "20240229000000.000000"
    assert Timeval.from_ulm("20000229000000").to_iso() == "2000-02-29T00:00:00.000000Z"


@pytest.mark.parametrize("text", [
    "",
    "2024",
    "2024030112000",            # 13 digits
    "2024030112000x.000000",
    "20240301 120000.000000",
    "20240301120000,000500",    # comma instead of dot
    "20240301120000.0005000",   # seven microsecond digits
    "20240301120000.00a500",
    "20240301120000.-00500",
    "20240301120000.+00500",
    "20240301120000.000500 ",
    "20240301120000.000500Z",
    "20241301120000.000000",    # month 13
    "20240001120000.000000",    # month 0
    "20240100120000.000000",    # day 0
    "20240132120000.000000",    # day 32
    "20240230120000.000000",    # 30 February
    "20230229120000.000000",    # 29 February of a common year
    "21000229120000.000000",    # 2100 is not a leap year
    "20240431120000.000000",    # 31 April
    "20240301240000.000000",    # hour 24
    "20240301126000.000000",    # minute 60
    "20240301120061.000000",    # second 61
    "00000101000000.000000",    # year 0
    "\u0662\u0660\u0662\u0664\u0660\u0663\u0660\u0661\u0661\u0662\u0660\u0660\u0660\u0660",
    "2024-03-01T12:00:00Z",
])
def test_bad_ulm_dates(text):
    with pytest.raises(LBFormatError):
        Timeval.from_ulm(text)


@pytest.mark.parametrize("value", [None, 20240301120000, b"20240301120000.000000"])
def test_ulm_non_text(value):
    with pytest.raises(LBFormatError):
        Timeval.from_ulm(value)


def test_iso_form():
    t = Timeval.from_iso("2024-03-01T12:00:00.000500Z")
    assert t == Timeval(1709294400, 500)
    assert t.to_iso() == "2024-03-01T12:00:00.000500Z"
    assert t.to_iso_seconds() == "2024-03-01T12:00:00Z"
    assert Timeval.from_iso("2024-03-01T12:00:00Z") == Timeval(1709294400, 0)
    # a shorter fraction is a fraction of a second, not a count of microseconds
    assert Timeval.from_iso("2024-03-01T12:00:00.5Z") == Timeval(1709294400, 500000)
    assert Timeval.from_iso("2012-03-15T09:00:00.500000Z").to_ulm() == "20120315090000.500000"


@pytest.mark.parametrize("text", [
    "",
    "2024-03-01T12:00:00",          # no Z
    "2024-03-01 12:00:00Z",
    "2024-03-01T12:00:00+00:00",
    "20240301120000.000000",
    "2024-13-01T12:00:00Z",
    "2024-02-30T12:00:00Z",
    "2024-03-01T25:00:00Z",
    "2024-03-01T12:00:00.Z",
    "2024-03-01T12:00:00.+5Z",
    "2024-03-01T12:00:00. 5Z",
    "2024-03-01T12:00:00.5aZ",
    "2024-03-01T12:00Z",
    "x",
])
def test_bad_iso(text):
    with pytest.raises(LBFormatError):
        Timeval.from_iso(text)


@pytest.mark.parametrize("value", [None, 1709294400, b"2024-03-01T12:00:00Z"])
def test_iso_non_text(value):
    with pytest.raises(LBFormatError):
        Timeval.from_iso(value)


def test_float_conversions():
    t = Timeval.from_float(1709294400.25)
    assert t == Timeval(1709294400, 250000)
    assert t.to_float() == 1709294400.25
    assert Timeval.from_float(1.9999999).usec <= 999999
    assert Timeval.now(clock=lambda: 1709294400.000500) == Timeval(1709294400, 500)


def test_ordering_is_time_order():
    assert Timeval(1, 999999) < Timeval(2, 0) < Timeval(2, 1)


_timeval = st.builds(Timeval, st.integers(0, MAX_SEC), st.integers(0, 999999))


@settings(max_examples=300, deadline=None)
@given(_timeval)
def test_roundtrips(t):
    assert Timeval.from_ulm(t.to_ulm()) == t
    assert Timeval.from_iso(t.to_iso()) == t
    assert len(t.to_ulm()) == 21
    assert t.to_ulm()[:14] == t.to_iso_seconds().replace("-", "").replace("T", "").replace(":", "")[:14]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789.-+ Zx", max_size=24) | st.text(max_size=24))
def test_parsers_raise_only_lbformaterror(text):
    for parse in (Timeval.from_ulm, Timeval.from_iso):
        try:
            t = parse(text)
        except LBFormatError:
            continue
        assert isinstance(t, Timeval) and 0 <= t.usec <= 999999


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="0123456789", min_size=14, max_size=14) | st.sampled_from(
           ["20240229235960", "20230229000000", "99991231235959", "00010101000000"]),
       st.text(alphabet="0123456789", min_size=6, max_size=6) | st.sampled_from(["00000x", "\u0661" * 6]))
def test_usual_form_read_as_the_general_form(seconds, micros):
    """YYYYMMDDhhmmss.uuuuuu (read by a shortcut) gives what the seconds alone and the
    microseconds (the general reading) give, or the same refusal."""
    text = seconds + "." + micros
    try:
        whole = Timeval.from_ulm(seconds)
    except LBFormatError:
        with pytest.raises(LBFormatError):
            Timeval.from_ulm(text)
        return
    if micros.isascii() and micros.isdigit():
        assert Timeval.from_ulm(text) == Timeval(whole.sec, int(micros))
    else:
        with pytest.raises(LBFormatError):
            Timeval.from_ulm(text)
