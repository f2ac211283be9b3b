"""Query conditions in XML (formats.md §7.6, §8.1), both directions.

::

    <and>
      <orJobConditions>
        <OP><ATTR [name="..."|state="..."]>VALUE</ATTR>[<ATTR>VALUE2</ATTR>]</OP> ...
      </orJobConditions>
      <orEventConditions> ... </orEventConditions>
    </and>

:func:`parse_block` reads one ``or*Conditions`` element into a tuple of
:class:`~lbtx.query.conditions.Condition`; :func:`write_and` writes blocks back as
the legacy client does. Element names match case-insensitively. Values are typed
as the condition model expects: job ids, :class:`~lbtx.schema.JobState`, job types
and VM states by name (or number), times and numbers as integers, sources as
:class:`~lbtx.schema.Source` from their number (or name).

Shape errors (unknown operator or attribute, a missing or extra value element, a
value of the wrong form) are malformed requests; a condition the model refuses
(an operator the attribute does not take) is ``EINVAL``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.query.conditions import EVENT_ATTRS, JOB_ATTRS, Attr, Condition, Op, QueryError
from lbtx.protocols.legacy_query.errors import ErrorCode, RequestError
from lbtx.protocols.legacy_query.escaping import escape
from lbtx.protocols.legacy_query.xml_tree import Node
from lbtx.schema import JobState, Source, StatJobtype, StatVmState

__all__ = ["parse_block", "write_and", "write_block", "write_condition", "ConditionCounter",
           "ATTR_ELEMENTS"]

_OPS = {op.value: op for op in Op}
#: attribute by folded element name; ``jobId`` is how clients spell ``jobid``
ATTR_ELEMENTS = {a.value.lower(): a for a in Attr}
#: element names the writer uses (the legacy client's spelling)
_WRITE_NAME = {Attr.JOBID: "jobId"}
_TEXT_ATTRS = frozenset({Attr.LOCATION, Attr.DESTINATION, Attr.NETWORK_SERVER, Attr.USERTAG,
                         Attr.JDL_ATTR, Attr.HOST, Attr.INSTANCE})
_INT_ATTRS = frozenset({Attr.DONECODE, Attr.EXITCODE, Attr.RESUBMITTED, Attr.LEVEL,
                        Attr.EVENT_TYPE})
_TIME_ATTRS = frozenset({Attr.TIME, Attr.STATEENTERTIME, Attr.LASTUPDATETIME})
#: event attributes accepted and dropped (§8.1: jdl in event conditions is ignored)
_IGNORED_EVENT_ATTRS = frozenset({Attr.JDL_ATTR})


def _bad(node: Node, what: str) -> RequestError:
    return RequestError(ErrorCode.XML_PARSE, f"{what} in {node.describe()}")


def _int(node: Node, text: str) -> int:
    t = text.strip()
    if not t or not (t.isascii() and (t.isdigit() or (t[0] in "+-" and t[1:].isdigit()))):
        raise _bad(node, f"{text[:40]!r} is not an integer")
    value = int(t)
    if not -2**63 <= value < 2**63:
        raise _bad(node, "integer out of range")
    return value


def _enum(cls, node: Node, text: str):
    t = text.strip()
    if t.isascii() and t.lstrip("-").isdigit():
        try:
            return cls(int(t))
        except ValueError:
            raise _bad(node, f"{t[:20]} is no {cls.__name__} code") from None
    member = cls.from_text(t) if t else None
    if member is None:
        raise _bad(node, f"{text[:40]!r} is no {cls.__name__} name")
    return member


def _value(attr: Attr, node: Node, owner_null: bool) -> Any:
    text = node.value()
    if attr in (Attr.JOBID, Attr.PARENT):
        try:
            return JobId.parse(text)
        except LBFormatError:
            raise _bad(node, f"{text[:80]!r}: invalid JobId") from None
    if attr == Attr.OWNER:
        return None if owner_null and text == "NULL" else text
    if attr in _TEXT_ATTRS:
        return text
    if attr == Attr.STATUS:
        return _enum(JobState, node, text)
    if attr == Attr.JOBTYPE:
        return _enum(StatJobtype, node, text)
    if attr == Attr.VM_STATUS:
        return _enum(StatVmState, node, text)
    if attr == Attr.SOURCE:
        return _enum(Source, node, text)
    if attr in _INT_ATTRS or attr in _TIME_ATTRS:
        return _int(node, text)
    raise _bad(node, f"{attr.value}: invalid attribute type")  # pragma: no cover


class ConditionCounter:
    """Counts conditions over one document against the limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.count = 0

    def add(self) -> None:
        self.count += 1
        if self.count > self.limit:
            raise RequestError(ErrorCode.E2BIG, f"more than {self.limit} query conditions")


def _condition(op_node: Node, allowed: frozenset, owner_null: bool) -> Condition | None:
    op = _OPS.get(op_node.name)
    if op is None:
        raise _bad(op_node, "unexpected operator")
    if op_node.text:
        raise _bad(op_node, "unexpected text")
    values = op_node.children
    want = 2 if op == Op.WITHIN else 1
    if len(values) != want:
        raise _bad(op_node, f"'{op.value}' needs {want} attribute element(s), has {len(values)}")
    attrs = [ATTR_ELEMENTS.get(v.name) for v in values]
    attr = attrs[0]
    if attr is None or any(a is not attr for a in attrs):
        raise _bad(values[0], "unexpected attribute")
    if attr not in allowed:
        raise _bad(values[0], f"{attr.value}: invalid attribute type")
    name = None
    extra = [v for v in values if v.children]
    if extra:
        raise _bad(extra[0], "unexpected element")
    for v in values:
        keys = set(v.attrs)
        if attr in (Attr.USERTAG, Attr.JDL_ATTR):
            if keys != {"name"}:
                raise _bad(v, f"{attr.value} needs exactly a name attribute")
            name = v.attr("name")
        elif attr == Attr.TIME:
            if keys != {"state"}:
                raise _bad(v, "time needs exactly a state attribute")
            state = JobState.from_text(v.attr("state") or "")
            if state is None:
                raise _bad(v, "unknown state")
            name = state.text
        elif keys:
            raise _bad(v, "unexpected XML attribute")
    if attr == Attr.USERTAG and not name:
        raise _bad(values[0], "usertag needs a tag name")
    if op == Op.CHANGED:
        if values[0].text:
            raise _bad(values[0], "'changed' takes an empty attribute element")
        value = value2 = None
    else:
        value = _value(attr, values[0], owner_null)
        value2 = _value(attr, values[1], owner_null) if op == Op.WITHIN else None
    try:
        return Condition(attr, op, value, value2, name)
    except QueryError as e:
        raise RequestError(ErrorCode.EINVAL, e.reason, malformed=False) from None


def parse_block(block: Node, *, events: bool, owner_null: bool,
                counter: ConditionCounter) -> tuple[Condition, ...]:
    """One ``orJobConditions``/``orEventConditions`` element as a disjunction.

    ``owner_null``: whether ``<owner>NULL</owner>`` means the caller (``value=None``).
    Event ``jdl`` conditions are read and dropped (a block of only those is empty).
    """
    if block.text:
        raise _bad(block, "unexpected text")
    allowed = (EVENT_ATTRS | _IGNORED_EVENT_ATTRS) if events else JOB_ATTRS
    out = []
    for op_node in block.children:
        counter.add()
        c = _condition(op_node, allowed, owner_null)
        if events and c.attr in _IGNORED_EVENT_ATTRS:
            continue
        out.append(c)
    return tuple(out)


# --- writing -------------------------------------------------------------------

def _text(attr: Attr, value: Any) -> str:
    if value is None and attr == Attr.OWNER:
        return "NULL"
    if isinstance(value, (JobState, StatJobtype, StatVmState)):
        return value.text
    if isinstance(value, Source):
        return str(int(value))
    if isinstance(value, bool):
        return str(int(value))
    return str(value)


def write_condition(c: Condition) -> str:
    """``<op><attr ...>value</attr></op>`` with the legacy writer's layout."""
    tag = _WRITE_NAME.get(c.attr, c.attr.value)
    if c.attr in (Attr.USERTAG, Attr.JDL_ATTR):
        open_tag = f'{tag} name="{escape(c.name or "")}"'
    elif c.attr == Attr.TIME:
        open_tag = f'{tag} state="{escape(c.name or "")}"'
    else:
        open_tag = tag
    if c.op == Op.CHANGED:
        inner = f"\t\t\t<{open_tag}/>\r\n"
    else:
        values = [c.value] + ([c.value2] if c.op == Op.WITHIN else [])
        inner = "".join(f"\t\t\t<{open_tag}>{escape(_text(c.attr, v))}</{tag}>\r\n"
                        for v in values)
    return f"\t\t\t<{c.op.value}>\n\t\t{inner}\t\t\t</{c.op.value}>\r\n"


def write_block(conditions: Iterable[Condition], *, events: bool = False) -> str:
    tag = "orEventConditions" if events else "orJobConditions"
    return f"\t\t<{tag}>\r\n" + "".join(map(write_condition, conditions)) + f"\t\t</{tag}>\r\n"


def write_and(job: Iterable[Iterable[Condition]], events: Iterable[Iterable[Condition]] = (),
              write: Callable[..., str] = write_block) -> str:
    """The ``<and>`` element of a request: job blocks, then event blocks."""
    body = "".join(write(ors) for ors in job)
    body += "".join(write(ors, events=True) for ors in events)
    return f"\t<and>\r\n{body}\t</and>\r\n"
