"""Event classes, one per event type of the schema, derived at import time.

Every class has the common header slots (``timestamp``, ``host``, ``level``,
``priority``, ``job_id``, ``seqcode``, ``user``, ``source``, ``src_instance``,
``arrived``) and one slot per attribute of its type, named by the attribute's
``py_name``. Unset attributes hold the schema's sentinel (``None`` for texts and
ids, ``0``/``-1`` for numbers, the ``UNDEFINED`` member for enumerations).

>>> ev = EVENT_CLASSES["Running"](node="wn01")
>>> ev.type_name, ev.node
('Running', 'wn01')
"""

from __future__ import annotations

import math
from typing import Any, Iterator

from lbtx.errors import LBFormatError
from lbtx.jobid import JobId, NotifId
from lbtx.schema import ENUMS, EVENT_SPECS, HEADER, AttrSpec, EventSpec, Level, Source, event_spec
from lbtx.timeval import NULL_TIME, Timeval

HEADER_SLOTS = tuple(a.py_name for a in HEADER)
_HEADER_BY_PY = {a.py_name: a for a in HEADER}


def null_value(spec: AttrSpec) -> Any:
    """The Python value that stands for "unset" for an attribute."""
    if spec.type == "timeval":
        return NULL_TIME
    if spec.enum is not None and ENUMS[spec.enum].undefined is not None:
        return ENUMS[spec.enum](spec.null)
    return spec.null


def is_unset(spec: AttrSpec, value: Any) -> bool:
    """Whether ``value`` is the attribute's sentinel (a required attribute must not be)."""
    if spec.type == "timeval":
        return value is None or value == NULL_TIME
    return value is None or value == spec.null


class Event:
    """Base class of all event classes. Subclasses differ only in their slots and ``spec``."""

    __slots__ = HEADER_SLOTS
    spec: EventSpec
    type_name: str
    code: int
    attr_specs: tuple[AttrSpec, ...] = ()
    _defaults: dict[str, Any] = {}

    def __init__(self, **values: Any):
        for name, default in self._defaults.items():
            setattr(self, name, values.pop(name, default))
        if values:
            raise TypeError(f"{self.type_name} has no attribute(s) {', '.join(sorted(values))}")

    # --- access -------------------------------------------------------------
    def attrs(self) -> dict[str, Any]:
        """The type-specific attributes as a dict ``py_name -> value``."""
        return {a.py_name: getattr(self, a.py_name) for a in self.attr_specs}

    def header(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in HEADER_SLOTS}

    def items(self) -> Iterator[tuple[str, Any]]:
        for n in self._defaults:
            yield n, getattr(self, n)

    def copy(self, **changes: Any) -> "Event":
        values = dict(self.items())
        values.update(changes)
        return type(self)(**values)

    def dedupe_key(self) -> tuple:
        """What makes two events of one job the same event (formats.md §6.6)."""
        return (self.code, int(self.source), self.host, self.timestamp, int(self.level), self.seqcode)

    # --- checks -------------------------------------------------------------
    def validate(self, *, require_user: bool = True, require_job_id: bool = True) -> "Event":
        """Check types and completeness; raise :class:`LBFormatError` saying what is wrong.

        Returns the event, so that ``Cls(...).validate()`` reads naturally. (Each
        class gets its own compiled version, :func:`_make_validator`; this one is
        the reference it must agree with.)
        """
        return _validate_reference(self, require_user, require_job_id)

    # --- comparison and display ----------------------------------------------
    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self._defaults)

    def __hash__(self) -> int:
        return hash((self.code, self.seqcode, self.timestamp))

    def __repr__(self) -> str:
        shown = ", ".join(f"{n}={v!r}" for n, v in self.items() if v != self._defaults[n])
        return f"{self.type_name}({shown})"


_TYPE_CHECKS = {
    "string": lambda v: isinstance(v, str) and "\0" not in v,
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63,
    "port": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 65535,
    "bool": lambda v: isinstance(v, (bool, int)),
    "double": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
    "float": lambda v: isinstance(v, (int, float)) and math.isfinite(v),
    "timeval": lambda v: isinstance(v, Timeval) and 0 <= v.usec < 1_000_000 and 0 <= v.sec < 2**37,
    "jobid": lambda v: isinstance(v, JobId),
    "notifid": lambda v: isinstance(v, NotifId),
    "taglist": lambda v: isinstance(v, tuple) and all(
        isinstance(p, tuple) and len(p) == 2 and all(isinstance(x, str) and x and "," not in x
                                                     and "\0" not in x for x in p)
        and "=" not in p[0] for p in v),
}


def _check_value(type_name: str, spec: AttrSpec, value: Any) -> None:
    """Raise LBFormatError if ``value`` is not of the attribute's type."""
    t = spec.type
    if value is None:
        if spec.null is not None and t != "timeval":
            raise LBFormatError(f"{type_name}: {spec.name} cannot be None", key=spec.ulm_key or spec.name)
        return
    if spec.enum is not None:
        cls = ENUMS[spec.enum]
        if spec.flags is None and not isinstance(value, cls):
            raise LBFormatError(f"{type_name}: {spec.name} must be a {cls.__name__}, not {value!r}",
                                key=spec.ulm_key or spec.name)
        return
    ok = _TYPE_CHECKS.get(t)
    if ok is not None and not ok(value):
        raise LBFormatError(f"{type_name}: {spec.name} has a bad {t} value {value!r:.80}",
                            key=spec.ulm_key or spec.name)


def _validate_reference(ev: Event, require_user: bool, require_job_id: bool) -> Event:
    """:meth:`Event.validate` field by field: the definition of what it accepts."""
    for spec in HEADER:
        value = getattr(ev, spec.py_name)
        if spec.py_name == "user" and not require_user and value is None:
            continue
        if spec.py_name == "job_id" and not require_job_id and value is None:
            continue
        _check_field(ev, spec, value, True)
    for spec in ev.attr_specs:
        _check_field(ev, spec, getattr(ev, spec.py_name), False)
    return ev


def _check_field(ev: Event, spec: AttrSpec, value: Any, in_header: bool) -> None:
    """The type and completeness checks of one field of ``ev`` (raise LBFormatError)."""
    _check_value(ev.type_name, spec, value)
    if in_header:
        if spec.required and spec.py_name != "level" and is_unset(spec, value):
            if spec.type == "string" and value == "":
                return  # HOST and DG.SEQCODE may be empty
            raise LBFormatError(f"{ev.type_name}: required header field {spec.ulm_key} is missing",
                                code="MSG_INCOMPLETE", key=spec.ulm_key)
    elif spec.required and is_unset(spec, value):
        raise LBFormatError(f"{ev.type_name}: required attribute {spec.name} is missing",
                            code="MSG_INCOMPLETE", key=spec.ulm_key)


# Conditions (Python expressions over ``v``) under which a value certainly passes the
# type check of _check_value; anything else goes to _check_field, which decides.
_FAST_TYPE = {
    "string": 'type(v) is str and "\\0" not in v',
    "int": "type(v) is int and -9223372036854775808 <= v <= 9223372036854775807",
    "port": "type(v) is int and 0 <= v <= 65535",
    "bool": "type(v) is int or type(v) is bool",
    "double": "type(v) is float and isfinite(v)",
    "float": "type(v) is float and isfinite(v)",
    "timeval": "type(v) is Timeval and 0 <= v[1] < 1000000 and 0 <= v[0] < 137438953472",
    "jobid": "type(v) is JobId",
    "notifid": "type(v) is NotifId",
}


def _fast_condition(spec: AttrSpec, i: int, in_header: bool) -> str | None:
    """An expression true only for values of ``spec`` that _check_field accepts
    (``NULL{i}`` is the sentinel, ``ENUM{i}`` the enumeration class); None if there
    is no cheap one."""
    if spec.enum is not None:
        typed = f"type(v) is ENUM{i}" if spec.flags is None else "type(v) is int"
    else:
        typed = _FAST_TYPE.get(spec.type)
        if typed is None:
            return None
    required = spec.required and not (in_header and spec.py_name == "level")
    if required:
        if spec.null is None and spec.type != "timeval":
            return typed  # the type excludes None, the sentinel
        return f"({typed}) and v != NULL{i}"
    if spec.null is None or spec.type == "timeval":
        return f"v is None or ({typed})"
    return typed


def _make_validator(cls: type[Event]):
    """``validate`` of ``cls``: a compiled sequence of cheap checks, one per slot;
    a value that fails its cheap check is judged by _check_field, so the answers
    (and the first error) are those of _validate_reference."""
    ns: dict[str, Any] = {"Timeval": Timeval, "JobId": JobId, "NotifId": NotifId,
                          "isfinite": math.isfinite, "check": _check_field}
    lines = ["def validate(self, *, require_user=True, require_job_id=True):"]
    fields = [(a, True) for a in HEADER] + [(a, False) for a in cls.attr_specs]
    for i, (a, in_header) in enumerate(fields):
        ns[f"SPEC{i}"] = a
        ns[f"NULL{i}"] = null_value(a)
        if a.enum is not None:
            ns[f"ENUM{i}"] = ENUMS[a.enum]
        cond = _fast_condition(a, i, in_header)
        skip = {"user": "require_user", "job_id": "require_job_id"}.get(a.py_name) if in_header else None
        lines.append(f"    v = self.{a.py_name}")
        test = "True" if cond is None else f"not ({cond})"
        if skip:
            test = f"({test}) and (v is not None or {skip})"
        lines.append(f"    if {test}:")
        lines.append(f"        check(self, SPEC{i}, v, {in_header})")
    lines.append("    return self")
    exec("\n".join(lines) + "\n", ns)
    validate = ns["validate"]
    validate.__doc__ = Event.validate.__doc__
    return validate


def _make_init(cls: type[Event]):
    """``__init__`` of ``cls``: keyword arguments for the slots, defaults for the
    others (as :meth:`Event.__init__`, without its loop)."""
    names = list(cls._defaults)
    ns: dict[str, Any] = {f"D{i}": v for i, v in enumerate(cls._defaults.values())}
    ns["Event"] = Event
    params = ", ".join(f"{n}=D{i}" for i, n in enumerate(names))
    body = "".join(f"    _ev.{n} = {n}\n" for n in names)
    exec(f"def __init__(_ev, *, {params}, **_unknown):\n"
         "    if _unknown:\n"
         "        Event.__init__(_ev, **_unknown)\n"
         f"{body}", ns)
    init = ns["__init__"]
    init.__doc__ = Event.__init__.__doc__
    return init


def _make_class(spec: EventSpec) -> type[Event]:
    slots = tuple(a.py_name for a in spec.attrs)
    defaults = {a.py_name: null_value(a) for a in HEADER}
    defaults.update({a.py_name: null_value(a) for a in spec.attrs})
    cls = type(spec.name, (Event,), {
        "__slots__": slots,
        "spec": spec,
        "type_name": spec.name,
        "code": spec.code,
        "attr_specs": spec.attrs,
        "_defaults": defaults,
        "__doc__": spec.doc,
    })
    cls.validate = _make_validator(cls)
    cls.__init__ = _make_init(cls)
    return cls


#: Event class by type name, e.g. ``EVENT_CLASSES["RegJob"]``.
EVENT_CLASSES: dict[str, type[Event]] = {s.name: _make_class(s) for s in EVENT_SPECS}


def event_class(name: str) -> type[Event]:
    """The class of the event type ``name`` (case-insensitive); LBFormatError if unknown."""
    spec = event_spec(name)
    if spec is None:
        raise LBFormatError(f"unknown event type {name[:60]!r}", code="EVENT_UNDEF", key="DG.EVNT")
    return EVENT_CLASSES[spec.name]


def make_event(type_name: str, **values: Any) -> Event:
    """Build an event of ``type_name`` with producer defaults (level SYSTEM, priority 0)."""
    values.setdefault("level", Level.SYSTEM)
    values.setdefault("priority", 0)
    return event_class(type_name)(**values)


__all__ = ["Event", "EVENT_CLASSES", "event_class", "make_event", "null_value", "is_unset",
           "HEADER_SLOTS", "Source", "Level"]
