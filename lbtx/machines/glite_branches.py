"""Resubmission branches of a WMS job (state-machines.md §4.5, D12).

Branch rows live in ``internal["branch_states"]`` as ``[wm, destination, ce_node,
jdl]`` lists (JSON-friendly), one per WM counter seen on a Match, Running or WM
EnQueued/OK event. A ReallyRunning event selects one branch (the *tag*); the rows
of that branch then restore destination, ce_node and matched_jdl.
"""

from __future__ import annotations

from lbtx.machines.glite_classify import (BAD_BRANCH, K_DEEP, K_LAST, K_LAST_BRANCH, K_TAG, LATE,
                                          TOO_OLD, USABLE, Ctx)
from lbtx.machines.glite_seq import WM, comp, parse_code, same_branch
from lbtx.schema import ENUMS, JobState, Source, StatJwStatus
from lbtx.status import JobStatus

__all__ = ["K_ROWS", "K_RESUBMIT", "update_branch_row", "deep_reset", "restore_branch",
           "really_running"]

K_ROWS = "branch_states"
K_RESUBMIT = "resubmit_type"

_WILLRESUB = ENUMS["ResubmissionResult"].WILLRESUB.name


def update_branch_row(st: JobStatus, seqcode: str | None, destination=None, ce_node=None,
                      jdl=None) -> None:
    """§4.5 "Branch rows": the row keyed by the event's WM counter (created on
    demand) takes each given value that is not ``None``."""
    if seqcode is None:
        return
    wm = comp(parse_code(seqcode), WM)
    rows = st.internal.setdefault(K_ROWS, [])
    for i, row in enumerate(rows):
        if row[0] == wm:
            row = rows[i] = list(row)  # rows are shared with older copies of the status
            break
    else:
        row = [wm, None, None, None]
        rows.append(row)
    if destination is not None:
        row[1] = destination
    if ce_node is not None:
        row[2] = ce_node
    if jdl is not None:
        row[3] = jdl


def deep_reset(st: JobStatus, seqcode: str | None) -> None:
    """§4.5 deep reset (WM Resubmission/WILLRESUB, accepted Abort): candidate lists
    emptied, branch rows dropped, payload not running, branch tag forgotten, the
    event's code becomes the deep-resubmission mark. last_branch_seqcode is kept
    (D12)."""
    internal = st.internal
    internal[K_RESUBMIT] = _WILLRESUB
    st.possible_destinations = []
    st.possible_ce_nodes = []
    internal.pop(K_ROWS, None)
    st.payload_running = False
    internal.pop(K_TAG, None)
    if seqcode is None:
        internal.pop(K_DEEP, None)
    else:
        internal[K_DEEP] = seqcode


def restore_branch(st: JobStatus) -> None:
    """§4.5 branch restore: with the rows sorted by WM counter and *i* the index of
    the tag's row (or the number of rows), copy the non-empty values of rows
    *i*-2, *i*-1, *i* in this order into destination, ce_node and matched_jdl."""
    internal = st.internal
    tag = internal.get(K_TAG)
    rows = internal.get(K_ROWS)
    if tag is None or not rows:
        return
    rows.sort(key=_row_key)
    wm = comp(parse_code(tag), WM)
    i = next((k for k, row in enumerate(rows) if row[0] == wm), len(rows))
    for j in (i - 2, i - 1, i):
        if 0 <= j < len(rows):
            _, destination, ce_node, jdl = rows[j]
            if destination is not None:
                st.destination = destination
            if ce_node is not None:
                st.ce_node = ce_node
            if jdl is not None:
                st.matched_jdl = jdl


def _row_key(row: list) -> int:
    """Rows sort by their WM counter."""
    return row[0]


def really_running(c: Ctx) -> bool:
    """ReallyRunning (§4.5): select the branch the payload started on and mark the
    payload running, also when the event is late but neither too old nor on a bad
    branch. From the LogMonitor, ``wn_seq`` names the branch and must parse (else
    the event is invalid). Returns False for an invalid event."""
    if c.fine == BAD_BRANCH or (c.res == LATE and c.fine == TOO_OLD):
        return True  # ignored (upstream logs an error for the bad branch)
    st, ev = c.st, c.ev
    internal = st.internal
    source = ev.source
    if source == Source.LRMS:
        internal[K_TAG] = ev.seqcode
        if c.res == USABLE:
            internal[K_LAST_BRANCH] = ev.seqcode
            st.state = JobState.RUNNING
    elif source == Source.LOG_MONITOR:
        tagged, positioned = K_TAG in internal, K_LAST_BRANCH in internal
        if not (tagged and positioned) and parse_code(ev.wn_seq) is None:
            return False
        if not tagged:
            internal[K_TAG] = ev.wn_seq
        if not positioned and c.res == USABLE:
            internal[K_LAST_BRANCH] = ev.wn_seq
            st.state = JobState.RUNNING
    _adopt_branch_position(c)
    st.jw_status = StatJwStatus.PAYLOAD_RUNNING
    st.payload_running = True
    restore_branch(st)
    return True


def _adopt_branch_position(c: Ctx) -> None:
    """§4.5 best effort: a late ReallyRunning on the branch of the last usable event
    takes that event's code as the branch position."""
    internal = c.st.internal
    if c.res != LATE or K_LAST_BRANCH in internal:
        return
    last, tag = internal.get(K_LAST), internal.get(K_TAG)
    if last is not None and tag is not None and same_branch(parse_code(last), parse_code(tag)):
        internal[K_LAST_BRANCH] = last
