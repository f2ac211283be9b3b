"""The condition language of ``glite-lb-query_ext`` input (cli.md §3.8).

One condition group per line; the conditions of a line (separated by blanks or
``;``) are OR-ed, the lines are AND-ed; an empty line ends a query. A condition
is ``attr OP value`` with ``OP`` one of ``=`` ``<>`` ``<`` ``>`` ``@`` (within:
two values). A value is double-quoted (no escapes; needed for blanks) or runs to
the next blank, ``;`` or the end of the line. Attribute names are case-sensitive;
a name that is not an attribute is a user tag::

    status=running; status=done            # (running or done)
    last_update_time>"2024-05-01 12:00:00" # and updated since
    time@"2024-05-01 00:00:00" "2024-05-02 00:00:00" Running
    jdl_attr=VOCE VirtualOrganisation

``time`` takes the state after its value(s) (optional for event conditions,
where the server ignores it); ``jdl_attr`` takes the JDL attribute name after
its value. Times are UTC ``"YYYY-MM-DD HH:MM:SS"`` (or whole UNIX seconds).

:func:`parse_lines` turns a group of lines into a condition conjunction;
:func:`split_queries` cuts input text into queries. Bad input raises
:class:`ConditionSyntaxError` whose message is what the tool prints.
"""

from __future__ import annotations

import calendar
import time
from typing import Callable, Iterable

from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.query.conditions import Attr, Condition, Op, QueryError
from lbtx.schema import EVENTS_BY_NAME, JobState, Source, StatJobtype, StatVmState, event_spec

__all__ = ["ConditionSyntaxError", "parse_lines", "split_queries", "parse_time",
           "JOB_ATTRIBUTES", "EVENT_ATTRIBUTES"]

_OPS = (("<>", Op.UNEQUAL), ("=", Op.EQUAL), ("<", Op.LESS), (">", Op.GREATER),
        ("@", Op.WITHIN))
_BLANKS = " \t"
_ENDS = " \t;"
#: the sources an event condition may name (cli.md: only the eight WMS sources)
_EVENT_SOURCES = frozenset({Source.USER_INTERFACE, Source.NETWORK_SERVER,
                            Source.WORKLOAD_MANAGER, Source.BIG_HELPER, Source.JOB_SUBMISSION,
                            Source.LOG_MONITOR, Source.LRMS, Source.APPLICATION})


class ConditionSyntaxError(ValueError):
    """Input the condition language does not allow; the message says why."""


def parse_time(text: str) -> int:
    """UTC ``YYYY-MM-DD HH:MM:SS`` (or a number of seconds) as UNIX seconds."""
    t = text.strip()
    if t.isascii() and t.isdigit():
        return int(t)
    try:
        return calendar.timegm(time.strptime(t, "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        raise ConditionSyntaxError(f"invalid time value ({text})") from None


def _int(kind: str) -> Callable[[str], int]:
    def convert(text: str) -> int:
        try:
            return int(text, 0) if text.strip().lower().startswith("0x") else int(text)
        except ValueError:
            raise ConditionSyntaxError(f"invalid {kind} value ({text})") from None
    return convert


def _jobid(text: str) -> JobId:
    try:
        return JobId.parse(text)
    except LBFormatError:
        raise ConditionSyntaxError(f"cannot parse jobId ({text})") from None


def _state(text: str) -> JobState:
    state = JobState.from_text(text)
    if state is None:
        raise ConditionSyntaxError(f"invalid status value ({text})")
    return state


def _jobtype(text: str) -> StatJobtype:
    jt = StatJobtype.from_text(text)
    if jt is None:
        raise ConditionSyntaxError(f"invalid job_type value ({text})")
    return jt


def _vm_state(text: str) -> StatVmState:
    vm = StatVmState.from_text(text) or StatVmState.from_text("vm_" + text)
    if vm is None:
        raise ConditionSyntaxError(f"invalid vm_status value ({text})")
    return vm


def _source(text: str) -> Source:
    src = Source.from_text(text)
    if src is None or src not in _EVENT_SOURCES:
        raise ConditionSyntaxError(f"invalid source value ({text})")
    return src


def _event_type(text: str) -> int:
    t = text.strip()
    if t.isascii() and t.isdigit():
        return int(t)
    spec = event_spec(t)
    if spec is None:
        raise ConditionSyntaxError(f"invalid event_type value ({text})")
    return EVENTS_BY_NAME[spec.name].code


def _owner(text: str):
    return None if text == "NULL" else text


#: attribute name -> (Attr, value converter)
JOB_ATTRIBUTES = {
    "jobid": (Attr.JOBID, _jobid),
    "owner": (Attr.OWNER, _owner),
    "status": (Attr.STATUS, _state),
    "location": (Attr.LOCATION, str),
    "destination": (Attr.DESTINATION, str),
    "done_code": (Attr.DONECODE, _int("done_code")),
    "exit_code": (Attr.EXITCODE, _int("exit_code")),
    "parent_job": (Attr.PARENT, _jobid),
    "time": (Attr.TIME, parse_time),
    "state_enter_time": (Attr.STATEENTERTIME, parse_time),
    "last_update_time": (Attr.LASTUPDATETIME, parse_time),
    "jdl_attr": (Attr.JDL_ATTR, str),
    "job_type": (Attr.JOBTYPE, _jobtype),
    "vm_status": (Attr.VM_STATUS, _vm_state),
}
EVENT_ATTRIBUTES = {
    "time": (Attr.TIME, parse_time),
    "state_enter_time": (Attr.STATEENTERTIME, parse_time),
    "last_update_time": (Attr.LASTUPDATETIME, parse_time),
    "jdl_attr": (Attr.JDL_ATTR, str),
    "level": (Attr.LEVEL, _int("level")),
    "event_type": (Attr.EVENT_TYPE, _event_type),
    "host": (Attr.HOST, str),
    "source": (Attr.SOURCE, _source),
    "instance": (Attr.INSTANCE, str),
}


class _Scanner:
    """Reads one line left to right."""

    def __init__(self, line: str):
        self.line = line
        self.i = 0

    def skip(self, chars: str = _BLANKS) -> None:
        while self.i < len(self.line) and self.line[self.i] in chars:
            self.i += 1

    @property
    def done(self) -> bool:
        return self.i >= len(self.line)

    def name(self) -> str:
        start = self.i
        while self.i < len(self.line) and (self.line[self.i].isalnum()
                                           or self.line[self.i] in "_-.:"):
            self.i += 1
        return self.line[start:self.i]

    def op(self) -> Op | None:
        for text, op in _OPS:
            if self.line.startswith(text, self.i):
                self.i += len(text)
                return op
        return None

    def value(self, what: str) -> str:
        self.skip()
        if self.done or self.line[self.i] == ";":
            raise ConditionSyntaxError(f"missing {what}")
        if self.line[self.i] == '"':
            end = self.line.find('"', self.i + 1)
            if end < 0:
                raise ConditionSyntaxError(f"unterminated quoted value: {self.line[self.i:]}")
            text = self.line[self.i + 1:end]
            self.i = end + 1
            if not self.done and self.line[self.i] not in _ENDS:
                raise ConditionSyntaxError(f"unexpected text after a quoted value: "
                                           f"{self.line[self.i:]}")
            return text
        start = self.i
        while not self.done and self.line[self.i] not in _ENDS:
            self.i += 1
        return self.line[start:self.i]

    def peek_word(self) -> bool:
        """Whether another word (not a ``;`` or the end) follows after blanks."""
        save = self.i
        self.skip()
        more = not self.done and self.line[self.i] != ";"
        self.i = save
        return more


def _condition(sc: _Scanner, table: dict, events: bool) -> Condition:
    name = sc.name()
    if not name:
        raise ConditionSyntaxError(f"attribute name expected: {sc.line[sc.i:]}")
    sc.skip()
    op = sc.op()
    if op is None:
        raise ConditionSyntaxError(f"operator expected after {name}: {sc.line[sc.i:]}")
    attr, convert = table.get(name, (Attr.USERTAG, str))
    tag = name if attr is Attr.USERTAG else None
    value = convert(sc.value(f"value of {name}"))
    value2 = convert(sc.value(f"second value of {name}")) if op is Op.WITHIN else None
    if attr is Attr.TIME:
        if events and not sc.peek_word():
            tag = JobState.UNDEFINED.text  # events: the server ignores the state
        else:
            tag = _state(sc.value("state of the time condition")).text
    elif attr is Attr.JDL_ATTR:
        tag = sc.value("JDL attribute name of jdl_attr")
    try:
        return Condition(attr, op, value, value2, tag)
    except QueryError as e:
        raise ConditionSyntaxError(f"{name}: {e.reason}") from None


def parse_line(line: str, *, events: bool = False) -> tuple[Condition, ...]:
    """One line: its conditions, to be OR-ed."""
    if not line.strip():
        raise ConditionSyntaxError("a line of blanks is not a condition")
    table = EVENT_ATTRIBUTES if events else JOB_ATTRIBUTES
    sc = _Scanner(line.rstrip("\r\n"))
    out = []
    sc.skip(_ENDS)
    while not sc.done:
        out.append(_condition(sc, table, events))
        if not sc.done and sc.line[sc.i] not in _ENDS:
            raise ConditionSyntaxError(f"unexpected text: {sc.line[sc.i:]}")
        sc.skip(_ENDS)
    return tuple(out)


def parse_lines(lines: Iterable[str], *, events: bool = False) -> tuple[tuple[Condition, ...], ...]:
    """Lines of one query: a conjunction (one tuple per line) of disjunctions."""
    return tuple(parse_line(line, events=events) for line in lines)


def split_queries(text: str) -> list[list[str]]:
    """Input cut at empty lines into groups of condition lines (empty groups dropped).

    A line holding only blanks stays in its group (it is a syntax error there).
    """
    groups: list[list[str]] = [[]]
    for line in text.splitlines():
        if line == "":
            if groups[-1]:
                groups.append([])
            continue
        groups[-1].append(line)
    return [g for g in groups if g]
