"""Skeleton shared by the non-gLite machines (state-machines.md §6–§9).

Those machines all work the same way: classify the event (usable or late),
run the event type's rule (state part only when usable, data part always),
post-process a usable event (last_seqcode, lastUpdateTime, stateEnterTime(s))
and finally give the job the machine's default location when it has none.
:class:`SimpleMachine` is that loop; each machine supplies the rules.

Also here: the sequence-code order used for per-tag UserTag ordering on these
jobs (:func:`tag_newer`), with cached parsers, and the RegJob job-type rule.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

from zope.interface import implementer

from lbtx.errors import LBFormatError
from lbtx.events import Event
from lbtx.machines.common import record_state_entry
from lbtx.machines.interfaces import IJobStateMachine, Transition
from lbtx.machines.registry import REGJOB_TO_STATUS
from lbtx.seqcode import CondorSeqCode, GliteSeqCode, PBSSeqCode
from lbtx.status import JobStatus

#: A rule: ``rule(st, ev, usable)`` applies its state part when ``usable``.
Rule = Callable[[JobStatus, Event, bool], None]


# --- sequence codes -----------------------------------------------------------

@lru_cache(maxsize=8192)
def parse_pbs(text) -> PBSSeqCode | None:
    """The PBS code in ``text`` (§3.2), or ``None`` when it does not parse."""
    try:
        return PBSSeqCode.parse(text)
    except (LBFormatError, TypeError):
        return None


@lru_cache(maxsize=8192)
def parse_glite(text) -> GliteSeqCode | None:
    """The gLite code in ``text`` (§3.1), or ``None`` when it does not parse."""
    try:
        return GliteSeqCode.parse(text)
    except (LBFormatError, TypeError):
        return None


@lru_cache(maxsize=8192)
def parse_condor(text) -> CondorSeqCode | None:
    """The Condor code in ``text`` (§3.3), or ``None`` when it does not parse."""
    try:
        return CondorSeqCode.parse(text)
    except (LBFormatError, TypeError):
        return None


def tag_newer(new: str, old: str) -> bool:
    """Whether code ``new`` is strictly greater than ``old`` for UserTag ordering
    (§4.8): PBS order when both are PBS codes (an unparsable one is never newer),
    gLite order otherwise (an unparsable ``new`` is not newer, an unparsable
    ``old`` is beaten by anything)."""
    if "SMOM=" in new and "SMOM=" in old:
        a, b = parse_pbs(new), parse_pbs(old)
        return a is not None and b is not None and a > b
    a = parse_glite(new)
    if a is None:
        return False
    b = parse_glite(old)
    return b is None or a > b


# --- shared rules ---------------------------------------------------------------

def set_jobtype(st: JobStatus, ev: Event) -> bool:
    """RegJob: the first registration fixes ``jobtype`` (§4.1). Returns False when
    the job has no job type and the event names none we know (invalid RegJob)."""
    if st.jobtype is not None:
        return True
    jobtype = REGJOB_TO_STATUS.get(getattr(ev, "jobtype", None))
    if jobtype is None:
        return False
    st.jobtype = jobtype
    return True


def ignore(st: JobStatus, ev: Event, usable: bool) -> None:
    """An event type without effect on this machine (post-processing still runs)."""


# --- the machine loop -----------------------------------------------------------

@implementer(IJobStateMachine)
class SimpleMachine:
    """One non-gLite machine: a rule per event type plus the common loop.

    Subclasses (or instances) set ``name``, ``job_types``, ``rules`` (type name ->
    :data:`Rule`), ``default_location`` and ``keeps_seqcode``, and may override
    :meth:`is_usable`.
    """

    name = "simple"
    job_types: tuple = ()
    rules: dict[str, Rule] = {}
    default_location = ""
    keeps_seqcode = True

    def is_usable(self, st: JobStatus, ev: Event) -> bool:
        """Classification; by default every event is usable (§3.4)."""
        return True

    def rules_for(self, st: JobStatus) -> dict[str, Rule]:
        """The rule table for this job (one machine may serve several job types)."""
        return self.rules

    def seqcode_to_keep(self, ev: Event) -> str | None:
        """The code stored as last_seqcode after a usable event."""
        return ev.seqcode

    def apply(self, status: JobStatus, event: Event) -> Transition:
        """Apply ``event`` to a copy of ``status``; never raises (odd events have no effect)."""
        try:
            return Transition(self._apply(status, event), ())
        except Exception:  # a defensive net: the interface promises never to raise
            return Transition(status.copy(), ())

    def _apply(self, status: JobStatus, ev: Event) -> JobStatus:
        st = status.copy()
        type_name = ev.type_name
        if type_name == "RegJob":
            if not set_jobtype(st, ev):
                return st
        elif st.jobtype is None:
            return st  # no registration processed yet: ignored (§4.1)
        old_state = st.state
        usable = self.is_usable(st, ev)
        rule = self.rules_for(st).get(type_name, ignore)
        rule(st, ev, usable)
        if usable:
            self.post_process(st, old_state, ev)
        if st.location is None:
            st.location = self.default_location
        return st

    def post_process(self, st: JobStatus, old_state, ev: Event) -> None:
        """Usable event: last_seqcode, lastUpdateTime and stateEnterTime(s) (§4.4,
        without the gLite-specific jw_status/suspend resets)."""
        if self.keeps_seqcode:
            code = self.seqcode_to_keep(ev)
            if code is not None:
                st.internal["last_seqcode"] = code
        record_state_entry(st, old_state, ev)
