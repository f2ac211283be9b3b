"""Parsers for the request documents of the legacy query protocol (formats.md §7.7-7.14).

Each ``parse_*`` function takes the request body (bytes) and returns the typed
request of :mod:`.messages`, or raises :class:`~.errors.RequestError` - and nothing
else, whatever the bytes. Root and container element names match
case-insensitively, XML attribute names exactly (as upstream). Unknown elements and
attributes are errors; so are repeated singletons and text where none belongs.

Job conditions are checked against the nesting rule of §8.3 (one attribute per
disjunction): a violation is ``EINVAL`` (not malformed), as is a query the
condition model refuses. An empty job condition list parses (the service answers it
with "unrestricted queries unsupported").
"""

from __future__ import annotations

from lbtx.errors import LBFormatError
from lbtx.jobid import JobId, NotifId
from lbtx.query.conditions import QueryError, check_job_query
from lbtx.protocols.legacy_query import maintenance_xml
from lbtx.protocols.legacy_query.conditions_xml import ConditionCounter, parse_block
from lbtx.protocols.legacy_query.errors import ErrorCode, RequestError
from lbtx.protocols.legacy_query.messages import (
    IndexedAttrsRequest, NotifChangeOp, NotifFunction, NotifRequest, QueryEventsRequest,
    QueryJobsRequest, QueryResults, ResultLimit, SequenceCodeRequest, parse_flags)
from lbtx.protocols.legacy_query.xml_tree import DEFAULT_LIMITS, Node, XMLLimits, parse_document

__all__ = ["parse_query_jobs", "parse_query_events", "parse_sequence_code",
           "parse_indexed_attrs", "parse_notif", "PARSERS"]


def _bad(node: Node, what: str) -> RequestError:
    return RequestError(ErrorCode.XML_PARSE, f"{what}: {node.describe()}")


def _root(data: bytes, name: str, limits: XMLLimits) -> Node:
    root = parse_document(data, limits)
    if root.name != name.lower():
        raise _bad(root, f"expected <{name}>, found")
    if root.text:
        raise _bad(root, "unexpected text in")
    return root


def _limit(root: Node) -> ResultLimit:
    soft, mode = 0, QueryResults.UNSET
    for key, raw in root.attrs.items():
        text = raw.strip()
        if key not in ("softLimit", "queryRes"):
            raise _bad(root, f"unexpected attribute {key[:40]!r} of")
        if not (text.isascii() and text.isdigit()) or len(text) > 18:
            raise _bad(root, f"{key} must be a non-negative integer in")
        if key == "softLimit":
            soft = int(text)
        else:
            try:
                mode = QueryResults(int(text))
            except ValueError:
                raise _bad(root, "queryRes must be 0..3 in") from None
    return ResultLimit(soft, mode)


def _leaf(node: Node) -> str:
    if node.children:
        raise _bad(node.children[0], "unexpected element")
    if node.attrs:
        raise _bad(node, "unexpected attributes on")
    return node.value()


def _singletons(root: Node, allowed: dict[str, bool]) -> dict[str, Node]:
    """Children by folded name; ``allowed`` maps each name to whether it is a leaf."""
    seen: dict[str, Node] = {}
    for child in root.children:
        if child.name not in allowed:
            raise _bad(child, "unexpected")
        if child.name in seen:
            raise _bad(child, "repeated")
        seen[child.name] = child
    return seen


def _and(node: Node | None, *, events: bool, owner_null: bool, limits: XMLLimits):
    """(job blocks, event blocks) of an ``<and>`` element."""
    if node is None:
        return (), ()
    if node.attrs:
        raise _bad(node, "unexpected attributes on")
    if node.text:
        raise _bad(node, "unexpected text in")
    if len(node.children) > limits.max_disjunctions:
        raise RequestError(ErrorCode.E2BIG, f"more than {limits.max_disjunctions} disjunctions")
    counter = ConditionCounter(limits.max_conditions)
    job, ev = [], []
    for block in node.children:
        if block.attrs:
            raise _bad(block, "unexpected attributes on")
        if block.name == "orjobconditions":
            ors = parse_block(block, events=False, owner_null=owner_null, counter=counter)
            if not ors:
                raise _bad(block, "empty disjunction")
            job.append(ors)
        elif events and block.name == "oreventconditions":
            ors = parse_block(block, events=True, owner_null=owner_null, counter=counter)
            if ors:
                ev.append(ors)
        else:
            raise _bad(block, "unexpected")
    try:
        checked = check_job_query(job, allow_empty=True)
    except QueryError as e:
        raise RequestError(ErrorCode.EINVAL, e.reason, malformed=False) from None
    return checked, tuple(ev)


def parse_query_jobs(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> QueryJobsRequest:
    """``<edg_wll_QueryJobsRequest softLimit queryRes><flags/><and/></...>``."""
    root = _root(data, "edg_wll_QueryJobsRequest", limits)
    limit = _limit(root)
    parts = _singletons(root, {"flags": True, "and": False})
    flags = parse_flags(_leaf(parts["flags"])) if "flags" in parts else parse_flags("")
    job, _ = _and(parts.get("and"), events=False, owner_null=True, limits=limits)
    return QueryJobsRequest(job, flags, limit)


def parse_query_events(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> QueryEventsRequest:
    """``<edg_wll_QueryEventsRequest softLimit queryRes><and>...</and></...>``.

    ``owner`` ``NULL`` is a plain value here (§7.6: it means the caller only in job
    queries, notifications and statistics).
    """
    root = _root(data, "edg_wll_QueryEventsRequest", limits)
    limit = _limit(root)
    parts = _singletons(root, {"and": False})
    job, ev = _and(parts.get("and"), events=True, owner_null=False, limits=limits)
    return QueryEventsRequest(job, ev, limit)


def _job_id(node: Node, cls=JobId):
    text = _leaf(node)
    try:
        return cls.parse(text)
    except LBFormatError:
        raise RequestError(ErrorCode.XML_PARSE, f"{text[:80]!r}: invalid JobId") from None


def parse_sequence_code(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> SequenceCodeRequest:
    """``<edg_wll_QuerySequenceCodeRequest><jobId/><source/></...>``."""
    root = _root(data, "edg_wll_QuerySequenceCodeRequest", limits)
    if root.attrs:
        raise _bad(root, "unexpected attributes on")
    parts = _singletons(root, {"jobid": True, "source": True})
    if "jobid" not in parts:
        raise _bad(root, "no jobId in")
    source = _leaf(parts["source"]) if "source" in parts else None
    return SequenceCodeRequest(_job_id(parts["jobid"]), source)


def parse_indexed_attrs(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> IndexedAttrsRequest:
    """The server ignores the body of ``/indexedAttrs`` (§7.3), so does this."""
    return IndexedAttrsRequest()


_FUNCTIONS = {f.value: f for f in NotifFunction}
_CHANGE_OPS = {o.value: o for o in NotifChangeOp}


def parse_notif(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> NotifRequest:
    """``<edg_wll_NotifRequest function="New">...</...>`` (§7.13): the shape only."""
    root = _root(data, "edg_wll_NotifRequest", limits)
    if set(root.attrs) != {"function"}:
        raise _bad(root, "exactly a function attribute expected on")
    function = _FUNCTIONS.get(root.attr("function") or "")
    if function is None:
        raise _bad(root, "unknown function on")
    parts = _singletons(root, {"flags": True, "notifid": True, "clientaddress": True,
                               "notifchangeop": True, "requestedvalidity": True, "and": False})
    notif_id = _job_id(parts["notifid"], NotifId) if "notifid" in parts else None
    address = _leaf(parts["clientaddress"]) if "clientaddress" in parts else None
    op = NotifChangeOp.NOOP
    if "notifchangeop" in parts:
        op = _CHANGE_OPS.get(_leaf(parts["notifchangeop"]).upper())
        if op is None:
            raise _bad(parts["notifchangeop"], "unknown change operation in")
    validity = None
    if "requestedvalidity" in parts:
        text = _leaf(parts["requestedvalidity"]).strip()
        if not (text.isascii() and text.lstrip("-").isdigit()) or len(text) > 18:
            raise _bad(parts["requestedvalidity"], "not a time")
        validity = int(text) if int(text) > 0 else None
    flags = parse_flags(_leaf(parts["flags"])) if "flags" in parts else parse_flags("")
    job, _ = _and(parts.get("and"), events=False, owner_null=True, limits=limits)
    return NotifRequest(function, notif_id, address, op, validity, job, flags)


#: request path -> body parser
PARSERS = {
    "/queryJobs": parse_query_jobs,
    "/queryEvents": parse_query_events,
    "/querySequenceCode": parse_sequence_code,
    "/indexedAttrs": parse_indexed_attrs,
    "/notifRequest": parse_notif,
    "/purgeRequest": maintenance_xml.parse_purge,
    "/dumpRequest": maintenance_xml.parse_dump,
    "/loadRequest": maintenance_xml.parse_load,
}
