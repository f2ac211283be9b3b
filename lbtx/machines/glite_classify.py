"""Classification of an event for the gLite WMS machine (state-machines.md §4.2).

:func:`classify` decides whether the event is usable for the state part or late
(the coarse result ``res``) and why (the fine result ``fine``: too old, on the
selected branch, on another branch). The per-event rules of §4.3 may change
``res`` afterwards (ignored START/REFUSED results, LRMS protection, Cancel and
WM Abort rules); they work on the :class:`Ctx` that carries the verdict.
"""

from __future__ import annotations

from lbtx.events import Event
from lbtx.machines.glite_seq import before_deep, entered_wm_again, is_before, parse_code, same_branch
from lbtx.schema import JobState
from lbtx.seqcode import GliteSeqCode
from lbtx.status import JobStatus

__all__ = ["Ctx", "classify", "USABLE", "LATE", "IGNORE", "NONE", "TOO_OLD", "BAD_BRANCH",
           "GOOD_BRANCH", "K_LAST", "K_CANCEL", "K_DEEP", "K_TAG", "K_LAST_BRANCH"]

# Coarse results: only USABLE runs the state part; the data part runs for all three.
USABLE, LATE, IGNORE = 0, 1, 2
# Fine results.
NONE, TOO_OLD, BAD_BRANCH, GOOD_BRANCH = 0, 1, 2, 3

# Keys of the sequence-code bookkeeping in JobStatus.internal (§2).
K_LAST = "last_seqcode"
K_CANCEL = "last_cancel_seqcode"
K_DEEP = "deep_resubmit_seqcode"
K_TAG = "branch_tag_seqcode"
K_LAST_BRANCH = "last_branch_seqcode"

_TERMINAL = frozenset({JobState.CANCELLED, JobState.CLEARED})


class Ctx:
    """One event being applied: the working status, the event, its parsed code and
    the classification verdict, plus the flags the post-processing needs."""

    __slots__ = ("st", "ev", "seq", "old", "res", "fine", "lm_favour", "ignore_seq", "abort")

    def __init__(self, st: JobStatus, ev: Event, seq: GliteSeqCode | None):
        self.st = st
        self.ev = ev
        self.seq = seq
        self.old = st.state
        self.res = USABLE
        self.fine = NONE
        #: LM-zeroing of the stored code (§4.4); the event does not advance
        #: last_seqcode (payload ownership); processing stops after the state part
        #: (D5: Done/KILLED)
        self.lm_favour = self.ignore_seq = self.abort = False

    @property
    def too_old_or_bad(self) -> bool:
        """``fine`` ∈ {TOO_OLD, BAD_BRANCH} (§4.2 "too-old/bad")."""
        return self.fine == TOO_OLD or self.fine == BAD_BRANCH


def is_terminal_for(old, type_name: str) -> bool:
    """§4.2/§4.7: Cancelled and Cleared are terminal; Aborted too, except for
    CollectionState (an aborted collection may run again)."""
    return old in _TERMINAL or (old == JobState.ABORTED and type_name != "CollectionState")


def forget_branches_on_reentry(internal: dict, seq: GliteSeqCode | None, type_name: str) -> None:
    """§4.2: an event (other than Cancel) that came through NS or UI again forgets the
    selected branch, the deep-resubmission mark and the branch position."""
    if K_TAG not in internal and K_DEEP not in internal and K_LAST_BRANCH not in internal:
        return  # nothing to forget (the common case)
    last = internal.get(K_LAST)
    if type_name != "Cancel" and last is not None and entered_wm_again(seq, parse_code(last)):
        internal.pop(K_TAG, None)
        internal.pop(K_DEEP, None)
        internal.pop(K_LAST_BRANCH, None)


def classify(c: Ctx) -> None:
    """Set ``c.res`` and ``c.fine`` by the pseudo-code of §4.2. An unparsable code on
    the event makes it late whatever the bookkeeping says (decision D9)."""
    internal = c.st.internal
    seq = c.seq
    type_name = c.ev.type_name
    res, fine = USABLE, NONE
    if is_terminal_for(c.old, type_name):
        res = LATE
    forget_branches_on_reentry(internal, seq, type_name)
    deep = internal.get(K_DEEP)
    tag = internal.get(K_TAG)
    if deep is not None and before_deep(seq, parse_code(deep)):
        res, fine = LATE, TOO_OLD
    elif tag is not None:
        if same_branch(seq, parse_code(tag)):
            fine = GOOD_BRANCH
            last_branch = internal.get(K_LAST_BRANCH)
            if last_branch is not None and is_before(seq, parse_code(last_branch)):
                res = LATE
        else:
            res, fine = LATE, BAD_BRANCH
    else:
        last = internal.get(K_LAST)
        if last is not None and is_before(seq, parse_code(last)):
            res = LATE
    if seq is None:
        res = LATE
    c.res, c.fine = res, fine
