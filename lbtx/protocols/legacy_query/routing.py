"""From an HTTP request to a typed request or an immediate error (formats.md §7.2-7.3).

:func:`route` is pure: it negotiates the client kind and version, matches the
method and path, and parses the body. It returns a :class:`Dispatch` (a request for
the backend) or an :class:`Immediate` answer (an error that needs no backend).

Paths: ``POST`` paths match exactly (case-sensitive) after a ``?...`` query string
is stripped; ``GET /`` is the caller's jobs and ``GET /<unique>`` the status of
``https://<server>:<port>/<unique>``; other methods are ``405``. Only API clients
are served here: HTML requests (web pages, §10) are answered ``501``.
"""

from __future__ import annotations

from dataclasses import dataclass

from lbtx.errors import LBFormatError
from lbtx.jobid import PREFIX, JobId
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError, Operation, RequestError
from lbtx.protocols.legacy_query.http import HTTPRequest
from lbtx.protocols.legacy_query.messages import JobStatusRequest, Request, UserJobsRequest
from lbtx.protocols.legacy_query.negotiation import ClientKind, Verdict, negotiate
from lbtx.protocols.legacy_query.xml_in import PARSERS
from lbtx.protocols.legacy_query.xml_tree import DEFAULT_LIMITS, XMLLimits

__all__ = ["Dispatch", "Immediate", "route", "POST_OPERATIONS"]

#: POST path -> (operation of the §7.16 table, result document kind)
POST_OPERATIONS = {
    "/queryJobs": (Operation.QUERY, "query_jobs"),
    "/queryEvents": (Operation.QUERY, "query_events"),
    "/querySequenceCode": (Operation.SEQCODE, "sequence_code"),
    "/indexedAttrs": (Operation.INDEXED_ATTRS, "indexed_attrs"),
    "/notifRequest": (Operation.NOTIF, "notif"),
    "/purgeRequest": (Operation.PURGE, "purge"),
    "/dumpRequest": (Operation.DUMP, "dump"),
    "/loadRequest": (Operation.LOAD, "load"),
    "/statsRequest": (Operation.STATS, "stats"),
}
_V21_PATHS = frozenset({"/queryJobs", "/queryEvents"})
_GET_SPECIAL = ("/RSS:", "/NOTIF", "/VMHOST:", "/favicon.ico")


@dataclass(frozen=True)
class Dispatch:
    """A request for the backend, with what to answer errors with."""

    request: Request
    operation: Operation
    doc: str


@dataclass(frozen=True)
class Immediate:
    """An answer that needs no backend: ``status`` with ``error`` (None: no error).

    ``status`` None means the status of ``error`` for ``operation`` (§7.16). ``doc``
    is the result document kind for the error (None: no body); ``kind`` and ``text``
    tell how to render it (XML, HTML page or ``?text`` plain text).
    """

    status: int | None
    error: LBError | None = None
    doc: str | None = None
    kind: ClientKind = ClientKind.API
    text: bool = False
    operation: Operation | None = None


def _target(request_line: str) -> str:
    parts = request_line.split(" ")
    return parts[1] if len(parts) > 1 else ""


def _has_query(target: str, name: str) -> bool:
    at = target.find(name)
    return at >= 0 and (len(target) == at + len(name) or target[at + len(name)] == "?")


def _get(target: str, caller: str | None, server: tuple[str, int]) -> Dispatch | Immediate:
    path = target.split("?", 1)[0]
    if caller is None:
        return Immediate(401, LBError(ErrorCode.EPERM, "user not authenticated"),
                         doc="user_jobs" if path == "/" else "jobstat")
    if path == "/" and "?" not in target:
        return Dispatch(UserJobsRequest(), Operation.USER_JOBS, "user_jobs")
    if "?" in target or path.startswith(_GET_SPECIAL) or len(path) < 2:
        return Immediate(404, LBError(ErrorCode.ENOENT, f"no such page {path[:80]!r}"))
    full = f"{PREFIX}{server[0]}:{server[1]}/{path[1:]}"
    try:
        job_id = JobId.parse(full)
    except LBFormatError:
        return Immediate(400, LBError(ErrorCode.JOBID_FORMAT, full[:200]), doc="jobstat")
    return Dispatch(JobStatusRequest(job_id), Operation.JOB_STATUS, "jobstat")


def route(request: HTTPRequest, caller: str | None, *, server: tuple[str, int],
          limits: XMLLimits = DEFAULT_LIMITS) -> Dispatch | Immediate:
    """Decide what to do with one request from ``caller``."""
    line = request.request_line
    target = _target(line)
    neg = negotiate(request.headers)
    text = neg.kind == ClientKind.HTML and _has_query(target, "?text")
    if neg.verdict in (Verdict.NO_AGENT, Verdict.BAD_AGENT):
        reason = "no User-Agent" if neg.verdict == Verdict.NO_AGENT else "malformed User-Agent"
        return Immediate(400, LBError(ErrorCode.EINVAL, reason), kind=neg.kind, text=text)
    if neg.verdict == Verdict.UNSUPPORTED:
        return Immediate(415, LBError(ErrorCode.ENOTSUP, "Protocol versions are incompatible."),
                         kind=neg.kind)
    is_get, is_post = line.startswith("GET "), line.startswith("POST ")
    if not (is_get or is_post):
        return Immediate(405, kind=neg.kind, text=text)
    if neg.kind == ClientKind.HTML:
        if is_get and caller is None:
            return Immediate(401, LBError(ErrorCode.EPERM, "user not authenticated"),
                             kind=neg.kind, text=text)
        return Immediate(501, LBError(ErrorCode.ENOSYS, "web pages are not served on this port"),
                         kind=neg.kind, text=text)
    if is_get:
        if neg.verdict == Verdict.V21:
            return Immediate(400, LBError(ErrorCode.ENOTSUP, "GET is not part of protocol 2.1"))
        return _get(target, caller, server)
    path = target.split("?", 1)[0]
    if path not in POST_OPERATIONS or (neg.verdict == Verdict.V21 and path not in _V21_PATHS):
        return Immediate(400, LBError(ErrorCode.ENOSYS, f"unknown request {path[:80]!r}"))
    operation, doc = POST_OPERATIONS[path]
    parser = PARSERS.get(path)
    if parser is None:
        return Immediate(None, LBError(ErrorCode.ENOSYS, f"{path[1:]} is not supported"),
                         doc=doc, operation=operation)
    try:
        parsed = parser(request.body or b"", limits)
    except RequestError as e:
        return Immediate(400 if e.malformed else None, e, doc=doc, operation=operation)
    return Dispatch(parsed, operation, doc)
