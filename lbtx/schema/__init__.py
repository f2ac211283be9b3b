"""The lbtx data schema: every event type, enumeration and status field of L&B.

The entries live in three declarative modules (:mod:`.events`, :mod:`.enums`,
:mod:`.status`); this package numbers and indexes them and builds the enumeration
classes. Event classes are derived in :mod:`lbtx.events`, the status record in
:mod:`lbtx.status`, the ULM codec in :mod:`lbtx.ulm`.
"""

from __future__ import annotations

from lbtx.schema._model import AttrSpec, EnumSpec, EventSpec, FamilySpec, FieldSpec
from lbtx.schema.enums import ENUMS as _ENUM_ENTRIES
from lbtx.schema.enumtypes import LBEnum, build_enum
from lbtx.schema.events import EVENTS as _EVENT_ENTRIES, FAMILIES, HEADER
from lbtx.schema._model import number_events
from lbtx.schema.status import STATUS_FIELDS

__all__ = [
    "AttrSpec", "EnumSpec", "EventSpec", "FamilySpec", "FieldSpec", "LBEnum",
    "EVENT_SPECS", "EVENTS_BY_NAME", "EVENTS_BY_CODE", "FAMILIES", "HEADER", "ENUM_SPECS",
    "ENUMS", "STATUS_FIELDS", "event_spec",
    "Level", "Source", "LogFlag", "JobState", "StatJobtype", "StatDoneCode",
    "StatSandboxRetrieved", "StatJwStatus", "StatCreamState", "StatFtSandboxType", "StatVmState",
    "RegJobJobtype",
]

EVENT_SPECS: tuple[EventSpec, ...] = number_events(_EVENT_ENTRIES, FAMILIES)
EVENTS_BY_NAME: dict[str, EventSpec] = {e.name: e for e in EVENT_SPECS}
EVENTS_BY_CODE: dict[int, EventSpec] = {e.code: e for e in EVENT_SPECS}
_EVENTS_BY_FOLDED = {e.name.casefold(): e for e in EVENT_SPECS}

ENUM_SPECS: dict[str, EnumSpec] = {e.name: e for e in _ENUM_ENTRIES}
ENUMS: dict[str, type[LBEnum]] = {name: build_enum(spec) for name, spec in ENUM_SPECS.items()}


def event_spec(name: str) -> EventSpec | None:
    """Return the event type called ``name`` (case-insensitive), or ``None``."""
    return _EVENTS_BY_FOLDED.get(name.casefold())


Level = ENUMS["Level"]
Source = ENUMS["Source"]
LogFlag = ENUMS["LogFlag"]
JobState = ENUMS["JobState"]
StatJobtype = ENUMS["StatJobtype"]
StatDoneCode = ENUMS["StatDoneCode"]
StatSandboxRetrieved = ENUMS["StatSandboxRetrieved"]
StatJwStatus = ENUMS["StatJwStatus"]
StatCreamState = ENUMS["StatCreamState"]
StatFtSandboxType = ENUMS["StatFtSandboxType"]
StatVmState = ENUMS["StatVmState"]
RegJobJobtype = ENUMS["RegJobJobtype"]


def _check() -> None:
    for ev in EVENT_SPECS:
        for a in ev.attrs:
            if a.enum is not None and a.enum not in ENUMS:
                raise AssertionError(f"{ev.name}.{a.name}: unknown enum {a.enum}")
    for f in STATUS_FIELDS:
        if f.enum is not None and f.enum not in ENUMS:
            raise AssertionError(f"status {f.name}: unknown enum {f.enum}")


_check()
