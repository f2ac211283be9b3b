"""Sequence codes: the clock-free order of a job's events (formats.md §3).

Three flavours exist:

* gLite: ``UI=%06d:NS=%010d:WM=%06d:BH=%010d:JSS=%06d:LM=%06d:LRMS=%06d:APP=%06d:LBS=%06d``,
  one counter per WMS component, compared lexicographically (UI most significant);
* PBS: ``CLIENT=%06d:SERVER=%010d:SCHED=%06d:SMOM=%06d:MOM=%06d``, likewise;
* Condor: ``TIMESTAMP=<14>:POS=<10>:EV.CODE=<3>:SRC=<letter>``, compared by the
  rules of §3.6 (which are not a total order).

gLite and PBS codes are tuples of ints, so ``<`` compares them; Condor codes
compare with :func:`condor_compare`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from lbtx.errors import SeqCodeError

GLITE_SLOTS = ("UI", "NS", "WM", "BH", "JSS", "LM", "LRMS", "APP", "LBS")
_GLITE_WIDTHS = (6, 10, 6, 10, 6, 6, 6, 6, 6)
PBS_SLOTS = ("CLIENT", "SERVER", "SCHED", "SMOM", "MOM")
_PBS_WIDTHS = (6, 10, 6, 6, 6)
# the texts of codes (counters of other types than int are not expected)
_GLITE_FORMAT = ":".join(f"{s}=%0{w}d" for s, w in zip(GLITE_SLOTS, _GLITE_WIDTHS))
_PBS_FORMAT = ":".join(f"{s}=%0{w}d" for s, w in zip(PBS_SLOTS, _PBS_WIDTHS))
#: Longest sequence code text accepted.
MAX_SEQCODE_LENGTH = 512

# ASCII digits only (re.ASCII): counters are read with %d, which knows no other digits
_GLITE_RE = re.compile(
    r"UI=(\d+):NS=(\d+):WM=(\d+):BH=(\d+):JSS=(\d+):LM=(\d+):LRMS=(\d+):APP=(\d+)(?::LBS=(\d+))?\Z",
    re.ASCII,
)
_PBS_RE = re.compile(r"CLIENT=(\d+):SERVER=(\d+):SCHED=(\d+):SMOM=(\d+):MOM=(\d+)\Z", re.ASCII)
_CONDOR_RE = re.compile(r"TIMESTAMP=(.{14}):POS=(.{10}):EV\.CODE=(\d{3}):SRC=(.)\Z", re.S | re.ASCII)


def _slot_index(slots: tuple[str, ...], slot: str) -> int:
    try:
        return slots.index(slot)
    except ValueError:
        raise SeqCodeError(f"no counter {slot!r} in a sequence code with {', '.join(slots)}") from None


def _check_text(text) -> None:
    if not isinstance(text, str):
        raise SeqCodeError(f"sequence code must be text, not {type(text).__name__}")
    if len(text) > MAX_SEQCODE_LENGTH:
        raise SeqCodeError(f"sequence code longer than {MAX_SEQCODE_LENGTH} characters")


class GliteSeqCode(NamedTuple):
    """A gLite WMS sequence code; tuple order is the comparison order."""

    ui: int = 0
    ns: int = 0
    wm: int = 0
    bh: int = 0
    jss: int = 0
    lm: int = 0
    lrms: int = 0
    app: int = 0
    lbs: int = 0

    @classmethod
    def parse(cls, text: str) -> "GliteSeqCode":
        _check_text(text)
        m = _GLITE_RE.match(text)
        if m is None:
            raise SeqCodeError(f"not a gLite sequence code: {text[:120]!r}")
        lbs = m.group(9)
        return cls(*(int(g) for g in m.groups()[:8]), int(lbs) if lbs is not None else 0)

    def format(self) -> str:
        return _GLITE_FORMAT % self

    def __str__(self) -> str:
        return self.format()

    def counter(self, slot: str) -> int:
        return self[_slot_index(GLITE_SLOTS, slot)]

    def with_counter(self, slot: str, value: int) -> "GliteSeqCode":
        if value < 0:
            raise SeqCodeError("sequence code counters cannot be negative")
        i = _slot_index(GLITE_SLOTS, slot)
        return GliteSeqCode(*self[:i], value, *self[i + 1:])

    def increment(self, slot: str, by: int = 1) -> "GliteSeqCode":
        return self.with_counter(slot, self.counter(slot) + by)


class PBSSeqCode(NamedTuple):
    """A PBS/Torque sequence code; tuple order is the comparison order."""

    client: int = 0
    server: int = 0
    sched: int = 0
    smom: int = 0
    mom: int = 0

    @classmethod
    def parse(cls, text: str) -> "PBSSeqCode":
        _check_text(text)
        m = _PBS_RE.match(text)
        if m is None:
            raise SeqCodeError(f"not a PBS sequence code: {text[:120]!r}")
        return cls(*(int(g) for g in m.groups()))

    def format(self) -> str:
        return _PBS_FORMAT % self

    def __str__(self) -> str:
        return self.format()

    def counter(self, slot: str) -> int:
        return self[_slot_index(PBS_SLOTS, slot)]

    def with_counter(self, slot: str, value: int) -> "PBSSeqCode":
        if value < 0:
            raise SeqCodeError("sequence code counters cannot be negative")
        i = _slot_index(PBS_SLOTS, slot)
        return PBSSeqCode(*self[:i], value, *self[i + 1:])

    def increment(self, slot: str, by: int = 1) -> "PBSSeqCode":
        return self.with_counter(slot, self.counter(slot) + by)


class CondorSeqCode(NamedTuple):
    """A Condor sequence code: log timestamp, position, event code and source letter."""

    timestamp: str
    pos: str
    ev_code: int
    src: str

    @classmethod
    def parse(cls, text: str) -> "CondorSeqCode":
        _check_text(text)
        m = _CONDOR_RE.match(text)
        if m is None:
            raise SeqCodeError(f"not a Condor sequence code: {text[:120]!r}")
        return cls(m.group(1), m.group(2), int(m.group(3)), m.group(4))

    def format(self) -> str:
        return f"TIMESTAMP={self.timestamp}:POS={self.pos}:EV.CODE={self.ev_code:03d}:SRC={self.src}"

    def __str__(self) -> str:
        return self.format()

    def increment(self, slot: str = "POS", by: int = 1) -> "CondorSeqCode":
        """Advance the position counter (the only counter a Condor code has)."""
        if slot != "POS" or not self.pos.isdigit():
            raise SeqCodeError("only a numeric POS of a Condor code can be incremented")
        return self._replace(pos=f"{int(self.pos) + by:010d}")


#: Event code of RegJob; a Condor code carrying it sorts before every other.
_REGJOB_CODE = 17


def condor_compare(a: CondorSeqCode, b: CondorSeqCode) -> int:
    """Compare two Condor codes as §3.3 of state-machines.md says: -1, 0 or 1."""
    if a.ev_code == _REGJOB_CODE:
        return -1
    if b.ev_code == _REGJOB_CODE:
        return 1
    if a.timestamp != b.timestamp:
        return -1 if a.timestamp < b.timestamp else 1
    if a.src == b.src:
        if a.pos == b.pos:
            return 0
        return -1 if a.pos < b.pos else 1
    for letter in ("m", "s"):
        if a.src == letter:
            return 1
        if b.src == letter:
            return -1
    return 0


def flavour(text: str) -> str | None:
    """Name the flavour of a code text (``glite``, ``pbs``, ``condor``), or ``None``."""
    if text.startswith("UI="):
        return "glite"
    if text.startswith("CLIENT=") or "SMOM=" in text:
        return "pbs"
    if text.startswith("TIMESTAMP="):
        return "condor"
    return None


_PARSERS = {"glite": GliteSeqCode.parse, "pbs": PBSSeqCode.parse, "condor": CondorSeqCode.parse}


def parse(text: str):
    """Parse a code of any flavour; raise :class:`SeqCodeError` if it is none of them."""
    _check_text(text)
    kind = flavour(text)
    if kind is None:
        raise SeqCodeError(f"unrecognised sequence code {text[:120]!r}")
    return _PARSERS[kind](text)


def compare(a, b) -> int:
    """Compare two parsed codes of the same flavour: -1, 0 or 1."""
    if type(a) is not type(b):
        raise SeqCodeError(f"cannot compare a {type(a).__name__} with a {type(b).__name__}")
    if isinstance(a, CondorSeqCode):
        return condor_compare(a, b)
    return (a > b) - (a < b)


ZERO_GLITE = GliteSeqCode()
ZERO_PBS = PBSSeqCode()
