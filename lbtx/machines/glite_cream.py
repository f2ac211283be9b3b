"""CREAM events on a WMS job (state-machines.md §4.9).

The CREAM data part (§8.2, :func:`lbtx.machines.cream.apply_data_part`) runs first
for events from CREAMExecutor/CREAMInterface, whatever their classification;
:func:`cream_data_part` calls it. The state effects below then follow the gLite
classification (CREAM sources have no counter, so their events repeat the last
code and are not late by themselves).
"""

from __future__ import annotations

from lbtx.machines.cream import CREAM_TO_LB
from lbtx.machines.glite_classify import USABLE, Ctx
from lbtx.schema import ENUMS, JobState, Source, StatCreamState

__all__ = ["CREAM_RULES", "CREAM_SOURCES", "cream_data_part"]

CREAM_SOURCES = frozenset({Source.CREAM_EXECUTOR, Source.CREAM_INTERFACE})

_CMD = ENUMS["CREAMStoreCommand"]
_STORE_OK = ENUMS["CREAMStoreResult"].OK
_CALL_OK = ENUMS["CREAMCallResult"].OK
_CANCEL_DONE = ENUMS["CREAMCancelStatusCode"].DONE
_STATUS_DONE = ENUMS["CREAMStatusResult"].DONE
_CS = StatCreamState

_data_part = None


def cream_data_part(st, ev) -> None:
    """§4.9: apply the CREAM machine's data part (imported lazily, once)."""
    global _data_part
    if _data_part is None:
        try:
            from lbtx.machines import cream
            _data_part = cream.apply_data_part
        except (ImportError, AttributeError):  # CREAM machine not installed
            _data_part = False
    if _data_part:
        _data_part(st, ev)


def _reasons_if_present(st, reason) -> None:
    """reason and cream_reason := the event reason when present."""
    if reason is not None:
        st.reason = st.cream_reason = reason


def cream_store(c: Ctx) -> bool:
    """CREAMStore, usable: CMDSTART/OK → Waiting, cream_state pending; CMDSUSPEND/OK
    and CMDRESUME/OK set and clear ``suspended``; reasons when present."""
    if c.res == USABLE:
        st, ev = c.st, c.ev
        ok = ev.result == _STORE_OK
        if ok and ev.command == _CMD.CMDSTART:
            st.state = JobState.WAITING
            st.cream_state = _CS["CREAM_PENDING"]
        elif ok and ev.command == _CMD.CMDSUSPEND:
            st.suspended = True
        elif ok and ev.command == _CMD.CMDRESUME:
            st.suspended = False
        _reasons_if_present(st, ev.reason)
    return True


def cream_call(c: Ctx) -> bool:
    """CREAMCall, usable: the executor's CMDSTART/OK call to the LRMS → Scheduled,
    cream_state idle; CMDCANCEL/OK (any source) → cancelling and cream_cancelling;
    reasons when present."""
    if c.res == USABLE:
        st, ev = c.st, c.ev
        ok = ev.result == _CALL_OK
        if (ok and ev.command == _CMD.CMDSTART and ev.source == Source.CREAM_EXECUTOR
                and ev.callee == Source.LRMS):
            st.state = JobState.SCHEDULED
            st.cream_state = _CS["CREAM_IDLE"]
            _reasons_if_present(st, ev.reason)
        if ok and ev.command == _CMD.CMDCANCEL:
            st.cancelling = st.cream_cancelling = True
            _reasons_if_present(st, ev.reason)
    return True


def cream_cancel(c: Ctx) -> bool:
    """CREAMCancel, usable: DONE → Cancelled, cream_state aborted; reasons := reason."""
    if c.res == USABLE:
        st, ev = c.st, c.ev
        if ev.status_code == _CANCEL_DONE:
            st.state = JobState.CANCELLED
            st.cream_state = _CS["CREAM_ABORTED"]
        st.reason = st.cream_reason = ev.reason
    return True


def cream_abort(c: Ctx) -> bool:
    """CREAMAbort, usable: Aborted, cream_state aborted, reasons := reason."""
    if c.res == USABLE:
        st = c.st
        st.state = JobState.ABORTED
        st.cream_state = _CS["CREAM_ABORTED"]
        st.reason = st.cream_reason = c.ev.reason
    return True


# CREAM state -> (job state, jw_status, done code): the CREAM machine's table (§8.1).


def cream_status(c: Ctx) -> bool:
    """CREAMStatus with result DONE, usable: cream_state := new_state (unknown name:
    unset) and the job state it maps to (§8.1)."""
    st, ev = c.st, c.ev
    if c.res != USABLE or ev.result != _STATUS_DONE:
        return True
    cs = _CS.from_text(ev.new_state) if isinstance(ev.new_state, str) else None
    st.cream_state = cs
    mapped = CREAM_TO_LB.get(cs)
    if mapped is not None:
        state, jw, done_code = mapped
        st.state = state
        if jw is not None:
            st.jw_status = jw
        if done_code is not None:
            st.done_code = st.cream_done_code = done_code
    return True


def cream_nothing(c: Ctx) -> bool:
    """CREAMStart, CREAMPurge, CREAMAccepted: nothing beyond the data part."""
    return True


CREAM_RULES = {
    "CREAMStart": cream_nothing,
    "CREAMPurge": cream_nothing,
    "CREAMAccepted": cream_nothing,
    "CREAMStore": cream_store,
    "CREAMCall": cream_call,
    "CREAMCancel": cream_cancel,
    "CREAMAbort": cream_abort,
    "CREAMStatus": cream_status,
}
