"""Building blocks of the declarative schema.

The entries in :mod:`lbtx.schema.events`, :mod:`lbtx.schema.enums` and
:mod:`lbtx.schema.status` are written with the functions below. Everything a
reader of an entry should not have to spell out (numeric codes, ULM keys,
Python names, default sentinels) is derived here, once.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass, field as dc_field
from typing import Any

#: The "unset" sentinel of each attribute type (``conventions.null`` of the schema).
TYPE_NULL: dict[str, Any] = {
    "string": None,
    "int": 0,
    "float": 0.0,
    "double": 0.0,
    "bool": 0,
    "port": 0,
    "timeval": 0,
    "jobid": None,
    "notifid": None,
    "logsrc": 0,
    "taglist": None,
    "usertag": None,
    "strlist": None,
    "intlist": None,
    "stslist": None,
    "jobstat": None,
    "cclassad": None,
}

#: Types whose values are lists or records rather than scalars.
STRUCTURED_TYPES = frozenset({"strlist", "intlist", "stslist", "taglist"})


def snake_case(name: str) -> str:
    """Return the Python name for an upstream name (``notifId`` -> ``notif_id``, ``from`` -> ``from_``)."""
    s = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()
    return s + "_" if keyword.iskeyword(s) else s


@dataclass(frozen=True)
class AttrSpec:
    """One attribute of an event type or of the common header."""

    name: str
    type: str
    enum: str | None
    optional: bool
    null: Any
    py_name: str
    doc: str
    hint: str | None = None
    ulm_key: str = ""
    quoted: bool = True
    set_by: str | None = None
    flags: str | None = None

    @property
    def required(self) -> bool:
        return not self.optional


@dataclass(frozen=True)
class EventSpec:
    """One event type: its name, family, attributes and derived code and ULM prefix."""

    name: str
    family: str
    doc: str
    attrs: tuple[AttrSpec, ...]
    note: str | None = None
    code: int = 0
    ulm_prefix: str = ""


@dataclass(frozen=True)
class FamilySpec:
    name: str
    code_base: int
    job_types: tuple[str, ...]
    doc: str


@dataclass(frozen=True)
class EnumSpec:
    """One enumeration: members as ``(name, text, value)`` triples."""

    name: str
    scope: str
    doc: str
    members: tuple[tuple[str, str | None, int], ...]
    undefined: tuple[str, str, int] | None = None
    kind: str | None = None
    aliases: dict[str, str] = dc_field(default_factory=dict)
    initial: int | None = None
    extra: dict[str, Any] = dc_field(default_factory=dict)


@dataclass(frozen=True)
class FieldSpec:
    """One field of the job status record."""

    name: str
    type: str
    enum: str | None
    null: Any
    py_name: str
    section: str
    indexed: bool
    doc: str
    hint: str | None = None

    @property
    def structured(self) -> bool:
        return self.type in STRUCTURED_TYPES and self.section == "generic"


def attr(name, type, *, enum=None, optional=False, null=..., py=None, hint=None, doc=""):
    """An event attribute; ``enum`` defaults to ``Source`` for the ``logsrc`` type."""
    return header(name, type, "", enum=enum, optional=optional, null=null, py=py, doc=doc,
                  hint=hint)


def header(name, type, ulm_key, *, enum=None, optional=False, null=..., py=None, quoted=True,
           set_by=None, flags=None, hint=None, doc=""):
    """A field of the common header, with its fixed ULM key (event attributes get
    theirs from :func:`number_events`)."""
    if type == "logsrc" and enum is None:
        enum = "Source"
    return AttrSpec(
        name=name,
        type=type,
        enum=enum,
        optional=optional,
        null=TYPE_NULL[type] if null is ... else null,
        py_name=py or snake_case(name),
        doc=doc,
        hint=hint,
        ulm_key=ulm_key,
        quoted=quoted,
        set_by=set_by,
        flags=flags,
    )


def event(name, family, doc, *attrs, note=None):
    """An event type; its code and ULM keys are filled in by :func:`number_events`."""
    return EventSpec(name=name, family=family, doc=doc, attrs=tuple(attrs), note=note)


def family(name, code_base, job_types, doc):
    return FamilySpec(name=name, code_base=code_base, job_types=tuple(job_types), doc=doc)


def enum(name, scope, doc, members, *, undefined=None, kind=None, aliases=None, initial=None, **extra):
    """An enumeration. Members without an explicit value are numbered consecutively
    from the value after ``undefined`` (or from 0)."""
    start = undefined[2] + 1 if undefined else 0
    out = []
    for i, m in enumerate(members):
        if isinstance(m, str):
            out.append((m, m, start + i))
        elif len(m) == 2:
            out.append((m[0], m[1], start + i))
        else:
            out.append((m[0], m[1], m[2]))
    return EnumSpec(
        name=name,
        scope=scope,
        doc=doc,
        members=tuple(out),
        undefined=undefined,
        kind=kind,
        aliases=dict(aliases or {}),
        initial=initial,
        extra=extra,
    )


def field(name, type, *, enum=None, null=..., py=None, indexed=False, hint=None, section, doc=""):
    return FieldSpec(
        name=name,
        type=type,
        enum=enum,
        null=TYPE_NULL[type] if null is ... else null,
        py_name=py or snake_case(name),
        section=section,
        indexed=indexed,
        doc=doc,
        hint=hint,
    )


def number_events(events, families) -> tuple[EventSpec, ...]:
    """Give every event its numeric code (family base + position) and its ULM keys."""
    bases = {f.name: f.code_base for f in families}
    position: dict[str, int] = {}
    out = []
    for ev in events:
        position[ev.family] = position.get(ev.family, 0) + 1
        prefix = "DG." + ev.name.upper() + "."
        attrs = tuple(
            AttrSpec(**{**a.__dict__, "ulm_key": prefix + a.name.upper()}) for a in ev.attrs
        )
        out.append(
            EventSpec(
                name=ev.name,
                family=ev.family,
                doc=ev.doc,
                attrs=attrs,
                note=ev.note,
                code=bases[ev.family] + position[ev.family],
                ulm_prefix=prefix,
            )
        )
    return tuple(out)
