"""The gLite WMS job state machine (state-machines.md §4, §5.4, §10).

Jobs of type SIMPLE, DAG and COLLECTION. For each event, in arrival order:

1. classify it (§4.2, :mod:`.glite_classify`): usable, or late (delayed, older
   resubmission cycle, other branch, terminal state);
2. for CREAM-sourced events, apply the CREAM data part first (§4.9);
3. apply the event type's rule (§4.3–§4.9: :mod:`.glite_transitions`,
   :mod:`.glite_branches`, :mod:`.glite_endings`, :mod:`.glite_service`,
   :mod:`.glite_cream`): state part only when usable, data part always;
4. post-process a usable event (§4.4): timestamps, jw_status reset, sequence-code
   bookkeeping, suspension reset, branch position;
5. for any valid event from the NetworkServer, default ``network_server`` (§4.4).

Invalid events (unknown type, unexpected source, missing attributes, events before
the job type is known) have no effect at all. The machine keeps its bookkeeping in
``JobStatus.internal`` as JSON-friendly values (see §2 for the keys).
"""

from __future__ import annotations

from zope.interface import implementer

from lbtx.events import Event
from lbtx.machines.common import set_state_enter_time
from lbtx.machines.glite_classify import GOOD_BRANCH, K_CANCEL, K_LAST, K_LAST_BRANCH, USABLE, Ctx, classify
from lbtx.machines.glite_branches import really_running
from lbtx.machines.glite_cream import CREAM_RULES, CREAM_SOURCES, cream_data_part
from lbtx.machines.glite_endings import ENDING_RULES
from lbtx.machines.glite_service import SERVICE_RULES
from lbtx.machines.glite_transitions import HANDOVER_RULES
from lbtx.machines.glite_seq import lm_zeroed, parse_code
from lbtx.machines.interfaces import IJobStateMachine, Transition
from lbtx.machines.registry import REGJOB_TO_STATUS
from lbtx.schema import JobState, Source, StatJobtype, StatJwStatus
from lbtx.status import JobStatus

__all__ = ["MACHINE", "GliteMachine", "RULES"]

#: Every event type the machine knows, with its rule (ReallyRunning: §4.5).
RULES = {**HANDOVER_RULES, "ReallyRunning": really_running, **ENDING_RULES, **SERVICE_RULES,
         **CREAM_RULES}

_JOB_TYPES = (StatJobtype.SIMPLE, StatJobtype.DAG, StatJobtype.COLLECTION)
_RESET_JW = frozenset({JobState.WAITING, JobState.READY, JobState.SCHEDULED})


def post_process(c: Ctx) -> None:
    """§4.4 for a usable event: lastUpdateTime; on a state change stateEnterTime,
    stateEnterTimes[state] and (Waiting/Ready/Scheduled) jw_status UNKNOWN; the
    sequence-code bookkeeping (Cancel mark, LM-zeroed code, or last_seqcode); leaving
    Running ends a suspension; an event on the selected branch advances the branch
    position."""
    st, ev = c.st, c.ev
    st.last_update_time = ev.timestamp
    state = st.state
    if state != c.old and state is not None:
        st.state_enter_time = ev.timestamp
        set_state_enter_time(st, state, ev)
        if state in _RESET_JW:
            st.jw_status = StatJwStatus.UNKNOWN
    internal = st.internal
    if ev.type_name == "Cancel":
        internal[K_CANCEL] = ev.seqcode
    elif c.lm_favour:
        internal[K_LAST] = lm_zeroed(c.seq)
    elif not c.ignore_seq:
        internal[K_LAST] = ev.seqcode
    if state != JobState.RUNNING:
        st.suspended = False
        st.suspend_reason = None
    if c.fine == GOOD_BRANCH:
        internal[K_LAST_BRANCH] = ev.seqcode


def default_network_server(st: JobStatus, ev: Event) -> None:
    """§4.4: an event from the NetworkServer names the job's network server when it
    has none: ``<host>:<instance>``, or ``<host> `` without an instance."""
    if ev.source == Source.NETWORK_SERVER and st.network_server is None:
        inst = ev.src_instance
        host = ev.host or ""
        st.network_server = f"{host}:{inst}" if inst is not None else f"{host} "


def process(st: JobStatus, ev: Event) -> bool:
    """Apply ``ev`` to ``st`` in place; False if the event is invalid (then ``st`` is
    to be thrown away)."""
    type_name = ev.type_name
    rule = RULES.get(type_name)
    if rule is None or (st.jobtype is None and type_name != "RegJob"):
        return False
    c = Ctx(st, ev, parse_code(ev.seqcode))
    classify(c)
    if ev.source in CREAM_SOURCES:
        cream_data_part(st, ev)
    if not rule(c):
        return False
    if c.abort:
        return True  # D5: Done/KILLED stops after its state part, as upstream
    if c.res == USABLE:
        post_process(c)
    default_network_server(st, ev)
    return True


@implementer(IJobStateMachine)
class GliteMachine:
    """The gLite WMS machine (§4): pure, one event at a time."""

    name = "glite"
    job_types = _JOB_TYPES

    def apply(self, status: JobStatus, event: Event) -> Transition:
        """Apply ``event`` to a copy of ``status``. An invalid event leaves the
        status as it was (an unchanged copy is returned)."""
        if status.jobtype is None and event.type_name == "RegJob":
            other = _other_machine(event)
            if other is not None:
                return other.apply(status, event)
        st = status.copy()
        if process(st, event):
            return Transition(st, ())
        return Transition(status.copy(), ())


def _other_machine(event: Event):
    """The machine of a first RegJob naming a non-WMS job type (§4.1), if loadable."""
    jobtype = REGJOB_TO_STATUS.get(event.jobtype)
    if jobtype is None or jobtype in _JOB_TYPES:
        return None
    try:
        from lbtx.machines.registry import machine_for
        return machine_for(jobtype)
    except (ImportError, KeyError):
        return None


MACHINE = GliteMachine()
