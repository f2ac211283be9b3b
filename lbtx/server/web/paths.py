"""From a request target to the page it asks for (formats.md §10.1).

A target is a path followed by any number of ``?`` parts: ``/<unique>?flags=
history?text``. The parts recognised are ``text`` (plain-text output), ``flags=a+b``
(status flags, §7.5 names), ``query=...`` (§8.6 conditions), ``all`` and ``foreign``
(super-users' notification lists) and the server pages ``configuration``,
``stats`` and ``version``. :func:`parse_target` never raises: a target it cannot
read is a :class:`BadPage` with the HTTP status to answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

from lbtx.errors import LBFormatError
from lbtx.jobid import PREFIX, JobId
from lbtx.protocols.legacy_query.messages import StatusFlag, parse_flags

__all__ = ["MAX_TARGET", "Target", "JobList", "JobDetail", "NotifList", "NotifDetail",
           "RssFeed", "ServerPage", "BadPage", "Page", "parse_target"]

#: longest target served (cli.md §4: a URL longer than about 10 kB is a 400)
MAX_TARGET = 10 * 1024
_SERVER_PAGES = ("configuration", "stats", "version")
_WSDL_PAGES = ("wsdl", "types", "agu")


@dataclass(frozen=True)
class Target:
    """What every page shares: plain text or HTML, and the extra status flags."""

    text: bool = False
    flags: StatusFlag = StatusFlag.NONE


@dataclass(frozen=True)
class JobList(Target):
    """``/``: the caller's jobs; with ``query`` (the raw §8.6 text), the matching jobs."""

    query: str | None = None


@dataclass(frozen=True)
class JobDetail(Target):
    job_id: JobId | None = None


@dataclass(frozen=True)
class NotifList(Target):
    """``/NOTIF:``; ``which`` is ``my``, ``all`` or ``foreign``."""

    which: str = "my"


@dataclass(frozen=True)
class NotifDetail(Target):
    unique: str = ""


@dataclass(frozen=True)
class RssFeed(Target):
    """``/RSS:<feed>``; a custom feed has the name ``""`` and a ``query``."""

    feed: str = ""
    query: str | None = None


@dataclass(frozen=True)
class ServerPage(Target):
    name: str = "version"


@dataclass(frozen=True)
class BadPage(Target):
    status: int = 400
    reason: str = ""


Page = JobList | JobDetail | NotifList | NotifDetail | RssFeed | ServerPage | BadPage


def _parts(target: str) -> tuple[str, list[str]]:
    path, *parts = target.split("?")
    return path, [p for p in parts if p]


def parse_target(target: str, server: tuple[str, int]) -> Page:
    """The page ``target`` asks for on the server ``(host, port)``."""
    text = False
    if len(target) > MAX_TARGET:
        return BadPage(status=400, reason=f"request target longer than {MAX_TARGET} bytes")
    if not target.startswith("/"):
        return BadPage(status=400, reason="the request target must be a path")
    path, parts = _parts(target)
    text = "text" in parts
    flags = StatusFlag.NONE
    query = None
    names = set()
    for part in parts:
        key, eq, value = part.partition("=")
        if key == "flags" and eq:
            flags |= parse_flags(unquote(value))
        elif key == "query" and eq:
            query = value
        elif not eq:
            names.add(key)
        else:
            return BadPage(text=text, status=400, reason=f"unknown modifier {key[:40]!r}")
    common = {"text": text, "flags": flags}
    if path == "/":
        for name in _SERVER_PAGES:
            if name in names:
                return ServerPage(name=name, **common)
        if names & set(_WSDL_PAGES):
            return BadPage(status=501, reason="the web-service interface is not provided",
                           **common)
        return JobList(query=query, **common)
    if path in ("/NOTIF", "/NOTIF:"):
        which = "all" if "all" in names else "foreign" if "foreign" in names else "my"
        return NotifList(which=which, **common)
    if path.startswith("/NOTIF:"):
        unique = path[len("/NOTIF:"):]
        if not _unique_ok(unique):
            return BadPage(status=400, reason="malformed notification id", **common)
        return NotifDetail(unique=unique, **common)
    if path.startswith("/RSS:"):
        return RssFeed(feed=path[len("/RSS:"):], query=query, **common)
    if path == "/favicon.ico":
        return BadPage(status=404, reason="no such page", **common)
    unique = path[1:]
    if not _unique_ok(unique):
        return BadPage(status=400, reason=f"no such page {path[:80]!r}", **common)
    try:
        job_id = JobId.parse(f"{PREFIX}{server[0]}:{server[1]}/{unique}")
    except LBFormatError as e:
        return BadPage(status=400, reason=f"malformed job id: {e}", **common)
    return JobDetail(job_id=job_id, **common)


def _unique_ok(unique: str) -> bool:
    return bool(unique) and all(c.isalnum() or c in "-_." for c in unique) and unique.isascii()
