"""Steps shared by several state machines (state-machines.md §4.4, §4.8)."""

from __future__ import annotations

from typing import Callable

from lbtx.events import Event
from lbtx.schema import JobState
from lbtx.status import HIST_SIZE, JobStatus


def record_state_entry(st: JobStatus, old_state, ev: Event) -> None:
    """Post-processing of a usable event: lastUpdateTime always; on a state change
    stateEnterTime and stateEnterTimes[state] (whole seconds, overwriting)."""
    st.last_update_time = ev.timestamp
    if st.state != old_state:
        st.state_enter_time = ev.timestamp
        set_state_enter_time(st, st.state, ev)


def set_state_enter_time(st: JobStatus, state: JobState, ev: Event) -> None:
    """stateEnterTimes[state] := the event's timestamp in whole seconds."""
    times = st.state_enter_times
    times = list(times) if times is not None else [0] * HIST_SIZE
    times[int(state)] = ev.timestamp.sec
    st.state_enter_times = times


def apply_user_tag(st: JobStatus, ev: Event, newer: Callable[[str, str], bool]) -> bool:
    """UserTag data part (§4.8): append an unknown tag; replace a known one only if
    ``newer(event seqcode, seqcode that set the value)``. Names are lower-cased.
    Returns False for an invalid tag (no name or no value)."""
    if not ev.name or ev.value is None:
        return False
    name = ev.name.lower()
    tags = dict(st.user_tags) if st.user_tags is not None else {}
    codes = st.internal.setdefault("tag_seq", {})
    if name in tags and not newer(ev.seqcode or "", codes.get(name, "")):
        return True
    tags[name] = ev.value
    codes[name] = ev.seqcode or ""
    st.user_tags = tags
    return True


def location(source_text: str, host: str | None, instance: str | None) -> str:
    """The ``S/h/i`` location form; unset parts are written as empty text."""
    return f"{source_text}/{host or ''}/{instance or ''}"
