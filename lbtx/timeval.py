"""Points in time with microsecond precision, as L&B carries them.

A :class:`Timeval` is ``(sec, usec)`` since the Unix epoch, UTC. ULM writes it as
``YYYYMMDDhhmmss.uuuuuu``; JSON and the scenario files as
``YYYY-MM-DDThh:mm:ss.ffffffZ``.
"""

from __future__ import annotations

import calendar
import functools
import time
from typing import NamedTuple

from lbtx.errors import LBFormatError

_DIGITS = frozenset("0123456789")


def _month_days(year: int, month: int) -> int:
    if month == 2:
        return 29 if calendar.isleap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


class Timeval(NamedTuple):
    sec: int
    usec: int

    @classmethod
    def now(cls, clock=time.time) -> "Timeval":
        t = clock()
        sec = int(t)
        return cls(sec, int(round((t - sec) * 1_000_000)) % 1_000_000)

    @classmethod
    def from_float(cls, t: float) -> "Timeval":
        sec = int(t // 1)
        return cls(sec, min(999_999, int(round((t - sec) * 1_000_000))))

    def to_float(self) -> float:
        return self.sec + self.usec / 1_000_000

    def is_null(self) -> bool:
        return self.sec == 0 and self.usec == 0

    # --- ULM ---
    @classmethod
    def from_ulm(cls, text: str) -> "Timeval":
        """Parse ``YYYYMMDDhhmmss[.uuuuuu]``; fewer than six microsecond digits are
        read as an integer count, as upstream does."""
        if type(text) is str and len(text) == 21 and text[14] == "." and text.isascii() \
                and text[:14].isdigit() and text[15:].isdigit():
            # the usual YYYYMMDDhhmmss.uuuuuu (ASCII digits only), read the same way
            minute = _minute_start(text[:12])
            s = int(text[12:14])
            if minute is not None and s < 61:
                return _new(cls, (minute + s, int(text[15:])))
        if not isinstance(text, str):
            raise LBFormatError(f"a ULM date is text, not {type(text).__name__}")
        if len(text) < 14 or not _DIGITS.issuperset(text[:14]):
            raise LBFormatError(f"bad ULM date {text[:40]!r}: expected YYYYMMDDhhmmss.uuuuuu")
        usec = 0
        rest = text[14:]
        if rest:
            if rest[0] != "." or len(rest) > 7 or (len(rest) > 1 and not _DIGITS.issuperset(rest[1:])):
                raise LBFormatError(f"bad ULM date {text[:40]!r}: expected .uuuuuu after the seconds")
            usec = int(rest[1:]) if len(rest) > 1 else 0
        day = _day_start(text[:8])
        h, mi, s = int(text[8:10]), int(text[10:12]), int(text[12:14])
        if day is None or not (h < 24 and mi < 60 and s < 61):
            raise LBFormatError(f"bad ULM date {text!r}: field out of range")
        return cls(day + h * 3600 + mi * 60 + s, usec)

    def to_ulm(self) -> str:
        t = time.gmtime(self.sec)
        return "%04d%02d%02d%02d%02d%02d.%06d" % (t[0], t[1], t[2], t[3], t[4], t[5], self.usec)

    # --- ISO 8601 (JSON, scenarios) ---
    @classmethod
    def from_iso(cls, text: str) -> "Timeval":
        """Parse ``YYYY-MM-DDThh:mm:ss[.ffffff]Z``."""
        if not isinstance(text, str):
            raise LBFormatError(f"a timestamp is text, not {type(text).__name__}")
        fast = _iso_fast(text)
        if fast is not None:
            return fast
        try:
            if not text.endswith("Z") or text[4] != "-" or text[10] != "T":
                raise ValueError
            base, dot, frac = text[:-1].partition(".")
            if dot and not (frac and _DIGITS.issuperset(frac)):
                raise ValueError
            st = time.strptime(base, "%Y-%m-%dT%H:%M:%S")
            usec = int(frac.ljust(6, "0")[:6]) if frac else 0
        except (ValueError, IndexError):
            raise LBFormatError(f"bad timestamp {text[:40]!r}: expected YYYY-MM-DDThh:mm:ss.ffffffZ") from None
        return cls(calendar.timegm(st), usec)

    def to_iso(self) -> str:
        t = time.gmtime(self.sec)
        return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (t[0], t[1], t[2], t[3], t[4], t[5], self.usec)

    def to_iso_seconds(self) -> str:
        t = time.gmtime(self.sec)
        return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (t[0], t[1], t[2], t[3], t[4], t[5])


NULL_TIME = Timeval(0, 0)


@functools.lru_cache(maxsize=4096)
def _day_start(ymd: str) -> int | None:
    """Seconds of 00:00:00 UTC of the day ``YYYYMMDD`` (digits checked by the caller),
    or None if there is no such day. Cached: a stream's events share few days."""
    y, mo, d = int(ymd[0:4]), int(ymd[4:6]), int(ymd[6:8])
    if not (y >= 1 and 1 <= mo <= 12 and 1 <= d) or (d > 28 and d > _month_days(y, mo)):
        return None
    return calendar.timegm((y, mo, d, 0, 0, 0))


@functools.lru_cache(maxsize=4096)
def _minute_start(ymdhm: str) -> int | None:
    """Seconds of the minute ``YYYYMMDDhhmm`` (digits checked by the caller), or None
    if there is no such minute. Cached: a stream's events share few minutes."""
    day = _day_start(ymdhm[:8])
    h, mi = int(ymdhm[8:10]), int(ymdhm[10:12])
    if day is None or not (h < 24 and mi < 60):
        return None
    return day + h * 3600 + mi * 60


_new = tuple.__new__


def _iso_fast(text: str) -> "Timeval | None":
    """The canonical forms ``YYYY-MM-DDThh:mm:ssZ`` and ``...ss.ffffffZ`` without
    strptime (stored statuses hold thousands of them); None sends anything else,
    valid or not, to the general parser."""
    n = len(text)
    if (n != 20 and n != 27) or text[-1] != "Z" or text[4] != "-" or text[7] != "-" \
            or text[10] != "T" or text[13] != ":" or text[16] != ":":
        return None
    digits = text[0:4] + text[5:7] + text[8:10] + text[11:13] + text[14:16] + text[17:19]
    usec = 0
    if n == 27:
        if text[19] != ".":
            return None
        digits += text[20:26]
        usec = int(text[20:26]) if _DIGITS.issuperset(text[20:26]) else -1
    if usec < 0 or not _DIGITS.issuperset(digits):
        return None
    h, mi, sec = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if h > 23 or mi > 59 or sec > 59:
        return None
    day = _day_start(text[0:4] + text[5:7] + text[8:10])
    if day is None:
        return None
    return Timeval(day + h * 3600 + mi * 60 + sec, usec)
