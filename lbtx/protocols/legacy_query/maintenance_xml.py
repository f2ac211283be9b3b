"""Purge, dump and load requests and results of the legacy protocol (formats.md
§7.11), both directions: the server parses requests and writes results, the
``glite-lb-purge``/``-dump``/``-load`` commands write requests and read results.

::

    <edg_wll_PurgeRequest><jobs><jobId>...</jobId></jobs>
      <timeout><Undefined>-1</Undefined>...<Aborted>604800</Aborted>...</timeout>
      <target_runtime>3600</target_runtime><flags>really_purge+list_jobs</flags>
    </edg_wll_PurgeRequest>
    <edg_wll_DumpRequest><from>EDG_WLL_DUMP_LAST_END</from><to>EDG_WLL_DUMP_NOW</to>
    </edg_wll_DumpRequest>
    <edg_wll_LoadRequest><server_file>/path</server_file></edg_wll_LoadRequest>

Results: ``edg_wll_PurgeResult`` (``jobs``, ``server_file``),
``edg_wll_DumpResult`` and ``edg_wll_LoadResult`` (``server_file``, ``from``,
``to``). Malformed documents raise :class:`~.errors.RequestError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.errors import ErrorCode, RequestError
from lbtx.protocols.legacy_query.escaping import escape
from lbtx.protocols.legacy_query.xml_tree import DEFAULT_LIMITS, Node, XMLLimits, parse_document
from lbtx.schema import JobState

__all__ = ["PurgeFlag", "PurgeRequest", "DumpRequest", "LoadRequest", "PurgeResult",
           "DumpResult", "DUMP_NOW", "DUMP_LAST_START", "DUMP_LAST_END", "parse_purge",
           "parse_dump", "parse_load", "write_purge", "write_dump", "write_load",
           "purge_result", "dump_result", "load_result", "read_purge_result",
           "read_dump_result", "MAX_PURGE_JOBS"]

DUMP_NOW, DUMP_LAST_START, DUMP_LAST_END = -1, -2, -3
_DUMP_NAMES = {"EDG_WLL_DUMP_NOW": DUMP_NOW, "EDG_WLL_DUMP_LAST_START": DUMP_LAST_START,
               "EDG_WLL_DUMP_LAST_END": DUMP_LAST_END}
#: most job ids one purge request may name
MAX_PURGE_JOBS = 10_000
_MAX_NUMBER = 10 ** 15


class PurgeFlag(enum.IntFlag):
    NONE = 0
    REALLY_PURGE = 1
    LIST_JOBS = 2
    SERVER_DUMP = 4
    CLIENT_DUMP = 8
    BACKGROUND = 16


_FLAG_NAMES = {"really_purge": PurgeFlag.REALLY_PURGE, "list_jobs": PurgeFlag.LIST_JOBS,
               "server_dump": PurgeFlag.SERVER_DUMP, "client_dump": PurgeFlag.CLIENT_DUMP,
               "background": PurgeFlag.BACKGROUND}


@dataclass(frozen=True)
class PurgeRequest:
    jobs: tuple[str, ...] = ()
    #: JobState -> seconds (negative: the server default; -2: never)
    timeouts: dict = field(default_factory=dict)
    target_runtime: int = 0
    flags: PurgeFlag = PurgeFlag.NONE


@dataclass(frozen=True)
class DumpRequest:
    from_: int = DUMP_LAST_END
    to: int = DUMP_NOW


@dataclass(frozen=True)
class LoadRequest:
    server_file: str = ""


@dataclass(frozen=True)
class PurgeResult:
    jobs: tuple[str, ...] = ()
    server_file: str | None = None


@dataclass(frozen=True)
class DumpResult:
    server_file: str | None = None
    from_: int | None = None
    to: int | None = None


def _bad(node: Node, what: str) -> RequestError:
    return RequestError(ErrorCode.XML_PARSE, f"{what}: {node.describe()}")


def _root(data: bytes, name: str, limits: XMLLimits) -> Node:
    root = parse_document(data, limits)
    if root.tag.lower() != name.lower():
        raise _bad(root, f"expected <{name}>, found")
    if root.attrs:
        raise _bad(root, "unexpected attributes on")
    return root


def _parts(root: Node, allowed: set[str]) -> dict[str, Node]:
    seen: dict[str, Node] = {}
    for child in root.children:
        name = child.tag.lower()
        if name not in allowed:
            raise _bad(child, "unexpected")
        if name in seen:
            raise _bad(child, "repeated")
        seen[name] = child
    return seen


def _leaf(node: Node) -> str:
    if node.children:
        raise _bad(node.children[0], "unexpected element in")
    return node.value().strip()


def _number(node: Node, *, names: dict | None = None) -> int:
    text = _leaf(node)
    if names and text in names:
        return names[text]
    body = text[1:] if text.startswith("-") else text
    if not (body.isascii() and body.isdigit()) or abs(int(text)) > _MAX_NUMBER:
        raise _bad(node, f"{text[:40]!r} is not a number in")
    return int(text)


_STATES = {s.text.lower(): s for s in JobState}


def parse_purge(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> PurgeRequest:
    root = _root(data, "edg_wll_PurgeRequest", limits)
    parts = _parts(root, {"jobs", "timeout", "target_runtime", "flags"})
    jobs = []
    if "jobs" in parts:
        for child in parts["jobs"].children:
            if child.tag.lower() != "jobid":
                raise _bad(child, "unexpected")
            text = _leaf(child)
            try:
                jobs.append(str(JobId.parse(text)))
            except LBFormatError:
                raise RequestError(ErrorCode.XML_PARSE, f"{text[:80]!r}: invalid JobId") from None
            if len(jobs) > MAX_PURGE_JOBS:
                raise RequestError(ErrorCode.E2BIG, f"more than {MAX_PURGE_JOBS} job ids")
    timeouts = {}
    if "timeout" in parts:
        for child in parts["timeout"].children:
            state = _STATES.get(child.tag.lower())
            if state is None:
                raise _bad(child, "unknown state")
            if state in timeouts:
                raise _bad(child, "repeated")
            timeouts[state] = _number(child)
    runtime = _number(parts["target_runtime"]) if "target_runtime" in parts else 0
    if runtime < 0:
        raise _bad(parts["target_runtime"], "negative")
    flags = PurgeFlag.NONE
    if "flags" in parts:
        for name in filter(None, _leaf(parts["flags"]).split("+")):
            if name not in _FLAG_NAMES:
                raise _bad(parts["flags"], f"unknown flag {name[:40]!r} in")
            flags |= _FLAG_NAMES[name]
    return PurgeRequest(tuple(jobs), timeouts, runtime, flags)


def parse_dump(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> DumpRequest:
    root = _root(data, "edg_wll_DumpRequest", limits)
    parts = _parts(root, {"from", "to"})
    out = {}
    for name in ("from", "to"):
        if name not in parts:
            raise _bad(root, f"no <{name}> in")
        value = _number(parts[name], names=_DUMP_NAMES)
        if value < DUMP_LAST_END:
            raise _bad(parts[name], "not a time")
        out[name] = value
    return DumpRequest(out["from"], out["to"])


def parse_load(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> LoadRequest:
    root = _root(data, "edg_wll_LoadRequest", limits)
    parts = _parts(root, {"server_file"})
    path = _leaf(parts["server_file"]) if "server_file" in parts else ""
    if not path or "\0" in path:
        raise RequestError(ErrorCode.EINVAL, "no server_file to load", malformed=False)
    return LoadRequest(path)


# --- writers -------------------------------------------------------------------------------
def _flags_text(flags: PurgeFlag) -> str:
    return "+".join(name for name, bit in _FLAG_NAMES.items() if flags & bit)


def _time_text(value: int) -> str:
    names = {v: k for k, v in _DUMP_NAMES.items()}
    return names.get(value, str(int(value)))


def write_purge(req: PurgeRequest) -> str:
    jobs = "".join(f"<jobId>{escape(j)}</jobId>" for j in req.jobs)
    timeouts = "".join(f"<{s.text}>{int(req.timeouts.get(s, -1))}</{s.text}>" for s in JobState)
    runtime = f"<target_runtime>{req.target_runtime}</target_runtime>" if req.target_runtime else ""
    return (f"<edg_wll_PurgeRequest>{'<jobs>' + jobs + '</jobs>' if req.jobs else ''}"
            f"<timeout>{timeouts}</timeout>{runtime}<flags>{_flags_text(req.flags)}</flags>"
            "</edg_wll_PurgeRequest>")


def write_dump(req: DumpRequest) -> str:
    return (f"<edg_wll_DumpRequest><from>{_time_text(req.from_)}</from>"
            f"<to>{_time_text(req.to)}</to></edg_wll_DumpRequest>")


def write_load(req: LoadRequest) -> str:
    return (f"<edg_wll_LoadRequest><server_file>{escape(req.server_file)}</server_file>"
            "</edg_wll_LoadRequest>")


def _open(root: str, error) -> str:
    if error is None:
        return f"<{root}>\r\n"
    return f'<{root} code="{int(error[0])}" desc="{escape(error[1] or "")}">\r\n'


def purge_result(result: PurgeResult, error=None) -> str:
    body = ""
    if result.jobs:
        body += "\t<jobs>" + "".join(f"<jobId>{escape(j)}</jobId>" for j in result.jobs) \
                + "</jobs>\r\n"
    if result.server_file:
        body += f"\t<server_file>{escape(result.server_file)}</server_file>\r\n"
    return f"{_open('edg_wll_PurgeResult', error)}{body}</edg_wll_PurgeResult>\r\n"


def _interval(root: str, result: DumpResult, error) -> str:
    body = ""
    if result.server_file:
        body += f"\t<server_file>{escape(result.server_file)}</server_file>\r\n"
    if result.from_ is not None:
        body += f"\t<from>{int(result.from_)}</from>\r\n"
    if result.to is not None:
        body += f"\t<to>{int(result.to)}</to>\r\n"
    return f"{_open(root, error)}{body}</{root}>\r\n"


def dump_result(result: DumpResult, error=None) -> str:
    return _interval("edg_wll_DumpResult", result, error)


def load_result(result: DumpResult, error=None) -> str:
    return _interval("edg_wll_LoadResult", result, error)


# --- result readers (the commands) ---------------------------------------------------------
def _result_root(data: bytes, name: str) -> tuple[tuple[int, str] | None, Node]:
    root = parse_document(data, XMLLimits(max_bytes=512 * 1024 * 1024, max_elements=10_000_000))
    if root.tag != name:
        raise _bad(root, f"expected <{name}>")
    code = root.attr("code")
    error = None
    if code is not None:
        try:
            error = (int(code), root.attr("desc") or "")
        except ValueError:
            raise _bad(root, "bad code on") from None
    return error, root


def read_purge_result(data: bytes):
    error, root = _result_root(data, "edg_wll_PurgeResult")
    jobs, server_file = [], None
    for child in root.children:
        if child.tag == "jobs":
            jobs += [c.value() for c in child.children if c.tag == "jobId"]
        elif child.tag == "server_file":
            server_file = child.value() or None
    return error, PurgeResult(tuple(jobs), server_file)


def read_dump_result(data: bytes, root_name: str = "edg_wll_DumpResult"):
    error, root = _result_root(data, root_name)
    values: dict = {}
    for child in root.children:
        if child.tag in ("server_file", "from", "to"):
            values[child.tag] = child.value()
    def number(name):
        try:
            return int(values[name]) if values.get(name) not in (None, "") else None
        except ValueError:
            raise _bad(root, f"bad <{name}> in") from None
    return error, DumpResult(values.get("server_file") or None, number("from"), number("to"))
