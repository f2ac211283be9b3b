"""The condition syntax of web queries, ``/?query=...`` (formats.md §8.6).

``status=scheduled|=running&lastupdatetime>past86400``: the text is URL-decoded,
each ``&`` part is one disjunction over one attribute, its ``|`` parts are the
alternatives, each an operator (``=`` ``<`` ``>`` ``<>`` or ``><``) and a value.
Attribute names are the query attribute names, in any case. Times are UNIX
seconds, or ``last<N>`` / ``past<N>`` for N seconds ago. States, job types and VM
states are given by name; ``jobid`` and ``parent_job`` by full id.

:func:`parse_query` raises :class:`WebQueryError`; its ``unsupported`` flag tells
an attribute this syntax cannot express (``501``) from malformed text (``579``).
"""

from __future__ import annotations

from typing import Callable
from urllib.parse import unquote

from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, JobQuery, Op, QueryError
from lbtx.schema import JobState, StatJobtype, StatVmState

__all__ = ["WebQueryError", "parse_query", "MAX_PARTS"]

#: conditions one query may hold (hostile input is refused before any work)
MAX_PARTS = 200

_OPS = {"=": Op.EQUAL, "<": Op.LESS, ">": Op.GREATER, "<>": Op.UNEQUAL, "><": Op.UNEQUAL}


class WebQueryError(ValueError):
    def __init__(self, reason: str, *, unsupported: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.unsupported = unsupported


def _int(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise WebQueryError(f"not a number: {text[:40]!r}") from None


def _time(now: int) -> Callable[[str], int]:
    def convert(text: str) -> int:
        if text[:4] in ("last", "past"):
            return now - _int(text[4:])
        return _int(text)
    return convert


def _named(cls, what: str) -> Callable[[str], object]:
    def convert(text: str):
        value = cls.from_text(text)
        if value is None:
            raise WebQueryError(f"unknown {what} {text[:40]!r}")
        return value
    return convert


def _job_id(text: str) -> JobId:
    try:
        return JobId.parse(text)
    except LBFormatError:
        raise WebQueryError(f"cannot parse job id {text[:80]!r}") from None


def _converters(now: int) -> dict[Attr, Callable[[str], object]]:
    when = _time(now)
    return {
        Attr.JOBID: _job_id, Attr.PARENT: _job_id,
        Attr.OWNER: str, Attr.LOCATION: str, Attr.DESTINATION: str,
        Attr.NETWORK_SERVER: str,
        Attr.STATUS: _named(JobState, "job state"),
        Attr.JOBTYPE: _named(StatJobtype, "job type"),
        Attr.VM_STATUS: _named(StatVmState, "VM state"),
        Attr.DONECODE: _int, Attr.EXITCODE: _int, Attr.RESUBMITTED: _int,
        Attr.STATEENTERTIME: when, Attr.LASTUPDATETIME: when,
    }


_BY_NAME = {a.value.lower(): a for a in Attr}


def _split_op(alternative: str) -> tuple[Op, str]:
    n = 0
    while n < len(alternative) and alternative[n] in "=<>":
        n += 1
    if n == 0:
        raise WebQueryError(f"missing operator before {alternative[:40]!r}")
    op = _OPS.get(alternative[:n])
    if op is None:
        raise WebQueryError(f"unknown operator {alternative[:n]!r}")
    if n == len(alternative):
        raise WebQueryError("an operator without a value")
    return op, alternative[n:]


def parse_query(raw: str, *, now: int) -> JobQuery:
    """The job query of the raw (still URL-encoded) text after ``query=``."""
    text = unquote(raw)
    parts = [p for p in text.split("&") if p]
    if not parts:
        raise WebQueryError("an empty query")
    if len(parts) > MAX_PARTS or text.count("|") > MAX_PARTS:
        raise WebQueryError(f"more than {MAX_PARTS} conditions")
    convert = _converters(now)
    query = []
    for part in parts:
        cut = next((i for i, c in enumerate(part) if c in "=<>"), None)
        if cut is None:
            raise WebQueryError(f"missing operator in condition {part[:80]!r}")
        name = part[:cut].lower()
        attr = _BY_NAME.get(name)
        if attr is None:
            raise WebQueryError(f"unknown attribute {part[:cut][:40]!r}")
        if attr not in convert:
            raise WebQueryError(f"conditions on {attr.value} cannot be written in a web query",
                                unsupported=True)
        group = []
        for alternative in part[cut:].split("|"):
            if not alternative:
                continue
            op, value = _split_op(alternative)
            try:
                group.append(Condition(attr, op, convert[attr](value)))
            except QueryError as e:
                raise WebQueryError(e.reason) from None
        query.append(tuple(group))
    return tuple(query)
