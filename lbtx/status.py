"""The job status record, derived from the status fields of the schema.

:class:`JobStatus` has one slot per public field (by ``py_name``) plus
``internal``, a JSON-friendly dict where the state machines keep their private
bookkeeping (last sequence codes, branch rows, tag codes...). The server stores
both; queries show only the public part.

Values: enumerations are :class:`~lbtx.schema.LBEnum` members; status enumerations
and ``-1``-sentinel integers that are unset hold ``None``; time points are
:class:`~lbtx.timeval.Timeval`; ``children_hist`` and ``state_enter_times`` are lists
of 12 entries indexed by :class:`~lbtx.schema.JobState` value (``None`` until set);
``user_tags`` is an ordered dict name -> value.

:func:`to_json` encodes a record as the scenarios and ``lbtx replay --json`` do;
:func:`from_json` reverses it (with ``internal``) for storage.
"""

from __future__ import annotations

from typing import Any

from lbtx.jobid import JobId
from lbtx.schema import ENUMS, STATUS_FIELDS, FieldSpec, JobState
from lbtx.timeval import NULL_TIME, Timeval

__all__ = ["JobStatus", "to_json", "from_json", "STATUS_SLOTS", "HIST_SIZE", "TERMINAL_STATES"]

HIST_SIZE = len(JobState)  # 12: Undefined .. Purged
TERMINAL_STATES = frozenset(
    JobState[n] for n in ENUMS["JobState"].spec.extra.get("terminal", ())
)


def _initial(f: FieldSpec) -> Any:
    enum_name = f.enum or f.hint
    if f.type == "timeval":
        return NULL_TIME
    if f.type == "bool":
        return False
    if enum_name is not None:
        cls = ENUMS[enum_name]
        if f.null == -1 or f.null is None:
            return None
        return cls(f.null)
    if f.type in ("int",) and f.null == -1:
        return None
    return f.null


STATUS_SLOTS = tuple(f.py_name for f in STATUS_FIELDS)
_INITIAL = {f.py_name: _initial(f) for f in STATUS_FIELDS}
_MUTABLE = frozenset(f.py_name for f in STATUS_FIELDS
                     if f.type in ("strlist", "intlist", "stslist", "taglist"))
_MUTABLE_LIST = tuple(n for n in STATUS_SLOTS if n in _MUTABLE or n == "user_tags")


def _json_copy(value: Any) -> Any:
    """Copy a JSON-like value (dicts, lists, scalars): much cheaper than deepcopy."""
    t = type(value)
    if t is dict:
        return {k: (_json_copy(v) if type(v) in _CONTAINERS else v) for k, v in value.items()}
    if t is list:
        return [(_json_copy(v) if type(v) in _CONTAINERS else v) for v in value]
    return value


_CONTAINERS = (dict, list)


class JobStatus:
    """The state of one job as the state machines compute it.

    Fields live in the instance dict (not slots) so that :meth:`copy`, done once
    per event, is a dict copy. ``internal`` holds JSON-like data: scalars, and lists
    and dicts of them one level deep (rows are lists, replaced when they change).
    """

    def __init__(self, **values: Any):
        d = self.__dict__
        d.update(_INITIAL)
        internal = values.pop("internal", None)
        unknown = [k for k in values if k not in _INITIAL]
        if unknown:
            raise TypeError(f"JobStatus has no field(s) {', '.join(sorted(unknown))}")
        d.update(values)
        d["internal"] = internal or {}

    def copy(self) -> "JobStatus":
        """An independent copy: containers are copied, values are immutable."""
        new = JobStatus.__new__(JobStatus)
        d = self.__dict__.copy()
        for name in _MUTABLE_LIST:
            v = d[name]
            if type(v) in _CONTAINERS:
                d[name] = v.copy()
        # Machine bookkeeping is copied one level deep: its containers (lists of
        # branch rows, the tag code map) are new, their items are shared, so machines
        # replace an item rather than change it in place.
        d["internal"] = {k: (v.copy() if type(v) in _CONTAINERS else v)
                         for k, v in d["internal"].items()}
        new.__dict__ = d
        return new

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, JobStatus):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __repr__(self) -> str:
        state = self.state.text if self.state is not None else None
        return f"<JobStatus {self.job_id} {state}>"

    def public_changes(self, other: "JobStatus") -> dict[str, tuple[Any, Any]]:
        """Fields that differ from ``other``: name -> (other's value, this value)."""
        return {n: (getattr(other, n), getattr(self, n)) for n in STATUS_SLOTS
                if getattr(self, n) != getattr(other, n)}


# --- JSON encoding ------------------------------------------------------------

_TEXT_ENUMS = {"JobState", "StatCreamState"}  # encoded by text; the others by name


def _state_map_out(values: list | None, encode) -> dict | None:
    if values is None:
        return None
    out = {}
    for i, v in enumerate(values):
        if i and v:
            out[JobState(i).text] = encode(v)
    return out


def _encode_field(f: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    enum_name = f.enum or f.hint
    if enum_name is not None:
        if isinstance(value, int) and not isinstance(value, ENUMS[enum_name]):
            value = ENUMS[enum_name](value)
        return value.text if enum_name in _TEXT_ENUMS else value.name
    if f.name == "stateEnterTimes":
        return _state_map_out(value, lambda s: Timeval(s, 0).to_iso_seconds())
    if f.name == "children_hist":
        return _state_map_out(value, int)
    if f.type == "timeval":
        return None if value == NULL_TIME else value.to_iso()
    if f.type in ("jobid",):
        return str(value)
    if f.type == "bool":
        return bool(value)
    if f.type == "taglist":
        if f.name == "user_tags":
            return dict(value)
        return [list(p) for p in value]
    if f.type == "strlist":
        return [str(x) for x in value]
    return value


def to_json(status: JobStatus, *, internal: bool = False) -> dict[str, Any]:
    """The record as a JSON object keyed by the upstream field names, plus ``jobid``.

    ``children_hist`` and ``stateEnterTimes`` become objects (state -> value) with the
    set entries only. ``internal=True`` adds the machines' bookkeeping under
    ``"_internal"``, for storage.
    """
    out: dict[str, Any] = {"jobid": str(status.job_id) if status.job_id is not None else None}
    for f in STATUS_FIELDS:
        out[f.name] = _encode_field(f, getattr(status, f.py_name))
    if internal:
        out["_internal"] = status.internal
    return out


def _decode_field(f: FieldSpec, value: Any) -> Any:
    if value is None:
        return _INITIAL[f.py_name] if f.type not in ("timeval",) else NULL_TIME
    enum_name = f.enum or f.hint
    if enum_name is not None and isinstance(value, str):
        cls = ENUMS[enum_name]
        member = cls.from_text(value)
        if member is None:
            raise ValueError(f"bad {enum_name} value {value!r} for {f.name}")
        return member
    if f.name in ("stateEnterTimes", "children_hist"):
        arr = [0] * HIST_SIZE
        for k, v in value.items():
            i = int(JobState.from_text(k))
            arr[i] = Timeval.from_iso(v).sec if f.name == "stateEnterTimes" else int(v)
        return arr
    if f.type == "timeval":
        return Timeval.from_iso(value)
    if f.type == "jobid":
        return JobId.parse(value)
    if f.type == "bool":
        return bool(value)
    if f.type == "taglist":
        return dict(value) if f.name == "user_tags" else tuple(tuple(p) for p in value)
    if f.type == "strlist":
        return list(value)
    return value


def from_json(data: dict[str, Any]) -> JobStatus:
    """Rebuild a record written by :func:`to_json` (with ``internal=True`` for a full copy)."""
    st = JobStatus()
    for f in STATUS_FIELDS:
        if f.name in data:
            setattr(st, f.py_name, _decode_field(f, data[f.name]))
    st.internal = _json_copy(data.get("_internal") or {})
    return st
