"""Query conditions as JSON: the condition model of :mod:`lbtx.query.conditions`
in the documents of the JSON API (docs/api.md), both directions.

A query is a list of disjunctions, each a list of condition objects; the
disjunctions are combined by conjunction::

    [[{"attr": "owner", "op": "equal", "value": null}],
     [{"attr": "status", "value": "Running"}, {"attr": "status", "value": "Scheduled"}]]

Condition keys: ``attr`` (a name of formats.md §8.1), ``op`` (``equal`` - the
default -, ``unequal``, ``less``, ``greater``, ``within``, ``changed``), ``value``,
``value2`` (the upper bound of ``within``), ``name`` (the tag of ``usertag``, the
attribute of ``jdl``) and ``state`` (the state of ``time``). Values:

* ``jobid``, ``parent_job``: full job ids; ``owner``: a subject, ``null`` for the caller;
* ``status``, ``jobtype``, ``vm_status``: names (or numeric codes);
* ``source``: a source name or number; ``type``: an event name or code;
* ``level``, ``donecode``, ``exitcode``, ``resubmitted``: integers;
* ``time``, ``stateentertime``, ``lastupdatetime``: UNIX seconds, or ISO 8601 UTC
  text (``2012-03-14T10:00:00Z``);
* ``location``, ``destination``, ``networkserver``, ``host``, ``instance``,
  ``usertag``, ``jdl``: text.

:func:`parse_query` raises :class:`ConditionDocumentError` for a document of the
wrong shape (``malformed``), for one over the limits (``too_big``) and for a
condition the model refuses; it does not apply the nesting rule (the backend
does, for every front end alike).
"""

from __future__ import annotations

from typing import Any

from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.query.conditions import EVENT_ATTRS, JOB_ATTRS, Attr, Condition, Op, QueryError
from lbtx.schema import EVENTS_BY_CODE, EVENTS_BY_NAME, JobState, Source, StatJobtype, StatVmState
from lbtx.timeval import Timeval

__all__ = ["ConditionDocumentError", "parse_query", "condition_budget", "query_to_json",
           "condition_to_json", "MAX_CONDITIONS", "MAX_DISJUNCTIONS"]

MAX_CONDITIONS = 1000     #: conditions in one document (job and event ones together)
MAX_DISJUNCTIONS = 256    #: disjunctions in one condition list

_ATTRS = {a.value: a for a in Attr}
_OPS = {op.value: op for op in Op}
_KEYS = frozenset({"attr", "op", "value", "value2", "name", "state"})
_TEXT = frozenset({Attr.LOCATION, Attr.DESTINATION, Attr.NETWORK_SERVER, Attr.USERTAG,
                   Attr.JDL_ATTR, Attr.HOST, Attr.INSTANCE})
_INT = frozenset({Attr.DONECODE, Attr.EXITCODE, Attr.RESUBMITTED, Attr.LEVEL})
_TIME = frozenset({Attr.TIME, Attr.STATEENTERTIME, Attr.LASTUPDATETIME})
_ENUMS = {Attr.STATUS: JobState, Attr.JOBTYPE: StatJobtype, Attr.VM_STATUS: StatVmState,
          Attr.SOURCE: Source}


class ConditionDocumentError(QueryError):
    """A condition document that cannot be accepted.

    :ivar malformed: the document does not have the documented shape.
    :ivar too_big: it holds more conditions or disjunctions than allowed.
    """

    def __init__(self, reason: str, *, malformed: bool = True, too_big: bool = False):
        super().__init__(reason)
        self.malformed = malformed
        self.too_big = too_big


def _where(i: int, j: int) -> str:
    return f"condition [{i}][{j}]"


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConditionDocumentError(f"{where}: {value!r:.60} is not an integer")
    if not -2**63 <= value < 2**63:
        raise ConditionDocumentError(f"{where}: integer out of range")
    return value


def _enum(cls, value: Any, where: str):
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return cls(value)
        except ValueError:
            raise ConditionDocumentError(f"{where}: {value} is no {cls.__name__} code") from None
    member = cls.from_text(value) if isinstance(value, str) and value else None
    if member is None:
        raise ConditionDocumentError(f"{where}: {value!r:.60} is no {cls.__name__} name")
    return member


def _value(attr: Attr, value: Any, where: str) -> Any:
    if attr in (Attr.JOBID, Attr.PARENT):
        try:
            return JobId.parse(value) if isinstance(value, str) else JobId.parse("")
        except LBFormatError:
            raise ConditionDocumentError(f"{where}: {value!r:.80} is not a job id") from None
    if attr == Attr.OWNER:
        if value is None or isinstance(value, str):
            return value
        raise ConditionDocumentError(f"{where}: an owner is a subject or null")
    if attr in _TEXT:
        if not isinstance(value, str):
            raise ConditionDocumentError(f"{where}: {attr.value} takes text")
        return value
    if attr in _ENUMS:
        return _enum(_ENUMS[attr], value, where)
    if attr == Attr.EVENT_TYPE:
        if isinstance(value, str):
            spec = EVENTS_BY_NAME.get(value)
            if spec is None:
                raise ConditionDocumentError(f"{where}: {value!r:.60} is no event type")
            return spec.code
        code = _int(value, where)
        if code not in EVENTS_BY_CODE:
            raise ConditionDocumentError(f"{where}: {code} is no event code")
        return code
    if attr in _TIME:
        if isinstance(value, str):
            try:
                return Timeval.from_iso(value).sec
            except LBFormatError:
                raise ConditionDocumentError(f"{where}: {value!r:.60} is not a time") from None
        return _int(value, where)
    if attr in _INT:
        return _int(value, where)
    raise ConditionDocumentError(f"{where}: {attr.value} conditions are not supported")


def _condition(doc: Any, allowed: frozenset, where: str) -> Condition:
    if not isinstance(doc, dict):
        raise ConditionDocumentError(f"{where}: a condition is an object")
    unknown = set(doc) - _KEYS
    if unknown:
        raise ConditionDocumentError(f"{where}: unknown key(s) {sorted(unknown)!r:.80}")
    attr = _ATTRS.get(doc.get("attr")) if isinstance(doc.get("attr"), str) else None
    if attr is None:
        raise ConditionDocumentError(f"{where}: unknown attribute {doc.get('attr')!r:.60}")
    if attr not in allowed:
        raise ConditionDocumentError(f"{where}: {attr.value} is not allowed here")
    op = _OPS.get(doc.get("op", "equal")) if isinstance(doc.get("op", "equal"), str) else None
    if op is None:
        raise ConditionDocumentError(f"{where}: unknown operator {doc.get('op')!r:.40}")
    name = doc.get("name")
    if attr == Attr.TIME:
        state = doc.get("state")
        member = JobState.from_text(state) if isinstance(state, str) else None
        if member is None:
            raise ConditionDocumentError(f"{where}: time needs the name of a state in 'state'")
        name = member.text
    elif attr in (Attr.USERTAG, Attr.JDL_ATTR):
        if not isinstance(name, str) or not name:
            raise ConditionDocumentError(f"{where}: {attr.value} needs a 'name'")
    elif name is not None or "state" in doc:
        raise ConditionDocumentError(f"{where}: {attr.value} takes no name or state")
    if op == Op.CHANGED:
        value = value2 = None
    else:
        if "value" not in doc and attr != Attr.OWNER:
            raise ConditionDocumentError(f"{where}: no value")
        value = _value(attr, doc.get("value"), where)
        value2 = None
        if op == Op.WITHIN:
            if "value2" not in doc:
                raise ConditionDocumentError(f"{where}: 'within' needs 'value2'")
            value2 = _value(attr, doc["value2"], where)
        elif "value2" in doc:
            raise ConditionDocumentError(f"{where}: only 'within' takes 'value2'")
    try:
        return Condition(attr, op, value, value2, name)
    except QueryError as e:
        raise ConditionDocumentError(f"{where}: {e.reason}", malformed=False) from None


class _Counter:
    def __init__(self, limit: int):
        self.left = limit
        self.limit = limit

    def take(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise ConditionDocumentError(f"more than {self.limit} conditions", too_big=True)


def parse_query(doc: Any, *, events: bool = False, counter: "_Counter | None" = None,
                max_conditions: int = MAX_CONDITIONS,
                max_disjunctions: int = MAX_DISJUNCTIONS) -> tuple[tuple[Condition, ...], ...]:
    """A JSON condition list as a query of job (or, with ``events``, event) conditions.

    ``counter`` shares the condition budget between the lists of one document
    (see :func:`condition_budget`).
    """
    if not isinstance(doc, list):
        raise ConditionDocumentError("conditions are a list of disjunctions (lists)")
    if len(doc) > max_disjunctions:
        raise ConditionDocumentError(f"more than {max_disjunctions} disjunctions", too_big=True)
    counter = counter or _Counter(max_conditions)
    allowed = EVENT_ATTRS if events else JOB_ATTRS
    out = []
    for i, ors in enumerate(doc):
        if not isinstance(ors, list) or not ors:
            raise ConditionDocumentError(f"disjunction [{i}] is not a non-empty list")
        counter.take(len(ors))
        out.append(tuple(_condition(c, allowed, _where(i, j)) for j, c in enumerate(ors)))
    return tuple(out)


def condition_budget(limit: int = MAX_CONDITIONS) -> _Counter:
    """A condition budget to share between the condition lists of one document."""
    return _Counter(limit)


# --- writing -------------------------------------------------------------------

def _json_value(attr: Attr, value: Any) -> Any:
    if value is None:
        return None
    if attr in _ENUMS:
        return value.text if hasattr(value, "text") else int(value)
    if attr == Attr.EVENT_TYPE:
        spec = EVENTS_BY_CODE.get(int(value))
        return spec.name if spec is not None else int(value)
    if isinstance(value, JobId):
        return str(value)
    return value


def condition_to_json(c: Condition) -> dict[str, Any]:
    """One condition as the JSON API reads it."""
    out: dict[str, Any] = {"attr": c.attr.value, "op": c.op.value}
    if c.attr == Attr.TIME:
        out["state"] = c.name if isinstance(c.name, str) else c.name.text
    elif c.name is not None:
        out["name"] = c.name
    if c.op != Op.CHANGED:
        out["value"] = _json_value(c.attr, c.value)
        if c.op == Op.WITHIN:
            out["value2"] = _json_value(c.attr, c.value2)
    return out


def query_to_json(query) -> list[list[dict[str, Any]]]:
    """A query (conjunction of disjunctions) as a JSON condition list."""
    return [[condition_to_json(c) for c in ors] for ors in query]
