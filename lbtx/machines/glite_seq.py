"""gLite sequence-code helpers of the WMS machine (state-machines.md §3.1, D9).

Codes are kept as text in ``JobStatus.internal`` (it is persisted as JSON) and
parsed through a small cache, so a stored code costs one dictionary lookup per
use. An unparsable code parses to ``None``; the helpers then behave like
upstream: every counter of such a code reads as -1, a comparison with an
unparsable left operand says "lower" and with an unparsable right operand
"higher".
"""

from __future__ import annotations

from functools import lru_cache

from lbtx.errors import LBFormatError
from lbtx.seqcode import GliteSeqCode

__all__ = ["parse_code", "comp", "same_branch", "before_deep", "entered_wm_again",
           "is_before", "tag_newer", "lm_zeroed", "WM", "NS", "UI", "LM"]

# Counter positions in a GliteSeqCode tuple.
UI, NS, WM, LM = 0, 1, 2, 5


@lru_cache(maxsize=16384)
def parse_code(text) -> GliteSeqCode | None:
    """The gLite code in ``text``, or ``None`` when it is missing or unparsable."""
    if not text or not isinstance(text, str):
        return None
    try:
        return GliteSeqCode.parse(text)
    except (LBFormatError, ValueError):
        return None


def comp(code: GliteSeqCode | None, slot: int) -> int:
    """``comp(code, X)`` of §3.1: the value of counter ``slot`` (-1 if unparsable)."""
    return -1 if code is None else code[slot]


def same_branch(a: GliteSeqCode | None, b: GliteSeqCode | None) -> bool:
    """``same_branch(a, b)`` ⇔ equal WM counters (§3.1)."""
    return comp(a, WM) == comp(b, WM)


def before_deep(a: GliteSeqCode | None, mark: GliteSeqCode | None) -> bool:
    """``before_deep(a, mark)`` ⇔ a's WM counter is below the deep-resubmission mark."""
    return comp(a, WM) < comp(mark, WM)


def entered_wm_again(e: GliteSeqCode | None, last: GliteSeqCode | None) -> bool:
    """``entered_wm_again(e, last)``: the event came through NS or UI again (§3.1)."""
    return comp(e, NS) > comp(last, NS) or comp(e, UI) > comp(last, UI)


def is_before(a: GliteSeqCode | None, b: GliteSeqCode | None) -> bool:
    """``a < b`` in the upstream comparison (§3.1): an unparsable ``a`` is lower than
    anything, an unparsable ``b`` (with a parsable ``a``) higher."""
    if a is None:
        return True
    if b is None:
        return False
    return a < b


def tag_newer(new: str, old: str) -> bool:
    """UserTag ordering (§4.8): ``new`` compares strictly greater than ``old``."""
    a = parse_code(new)
    if a is None:
        return False
    b = parse_code(old)
    return b is None or a > b


_FORMAT = "UI=%06d:NS=%010d:WM=%06d:BH=%010d:JSS=%06d:LM=%06d:LRMS=%06d:APP=%06d:LBS=%06d"


def lm_zeroed(code: GliteSeqCode) -> str:
    """LM-zeroing (§4.4): the code text (canonical format) with the LogMonitor
    counter set to 0."""
    return _FORMAT % (code[0], code[1], code[2], code[3], code[4], 0, code[6], code[7], code[8])
