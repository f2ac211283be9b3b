"""RSS feeds of jobs (formats.md §10.3).

Predefined feeds are the caller's own jobs in some states; a custom feed
(``/RSS:?query=...``) is any job matching the query that the caller may read.
Every feed holds only jobs updated within the last ``window`` seconds.
"""

from __future__ import annotations

from html import escape
from typing import Sequence

from lbtx.protocols.legacy_query.http import HTTPResponse
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.negotiation import SERVER_HEADER
from lbtx.query.conditions import Attr, Condition, JobQuery, Op
from lbtx.schema import JobState, StatDoneCode, StatJobtype
from lbtx.server.web.job_rows import ctime_utc

__all__ = ["FEEDS", "feed_query", "rss_document", "DEFAULT_WINDOW"]

DEFAULT_WINDOW = 3600

_MINE = (Condition(Attr.OWNER, Op.EQUAL, None),)


def _states(*states: JobState) -> tuple[Condition, ...]:
    return tuple(Condition(Attr.STATUS, Op.EQUAL, s) for s in states)


_VM = (Condition(Attr.JOBTYPE, Op.EQUAL, StatJobtype.VIRTUAL_MACHINE),)

#: feed name -> its conditions besides "mine" and "recently updated"
FEEDS: dict[str, JobQuery] = {
    "finished": (_states(JobState.DONE, JobState.ABORTED, JobState.CANCELLED),),
    "running": (_states(JobState.RUNNING),),
    "aborted": (_states(JobState.ABORTED),),
    "runningVM": (_states(JobState.RUNNING), _VM),
    "doneVM": (_states(JobState.DONE), _VM,
               (Condition(Attr.DONECODE, Op.EQUAL, StatDoneCode.OK.value),)),
}


def feed_query(name: str, *, now: int, window: int = DEFAULT_WINDOW,
               custom: JobQuery | None = None) -> JobQuery | None:
    """The job query of a feed (None: no such feed)."""
    recent = (Condition(Attr.LASTUPDATETIME, Op.GREATER, now - window),)
    if name == "" and custom is not None:
        return tuple(custom) + (recent,)
    if name not in FEEDS:
        return None
    return (_MINE, recent) + FEEDS[name]


def rss_document(link: str, jobs: Sequence[tuple[str, JobView]]) -> HTTPResponse:
    items = []
    for job, view in jobs:
        s = view.status
        desc = (f"Status: {(s.state or JobState.UNDEFINED).text}\n"
                f"State entered: {ctime_utc(s.state_enter_time) or ''}\n"
                f"Destination: {s.destination or ''}\n")
        j = escape(job)
        items.append(f"<item>\n<title>{j}</title>\n<link>{j}</link>\n<guid>{j}</guid>\n"
                     f"<description>{escape(desc)}</description>\n</item>")
    doc = ('<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n'
           f"<title>LB feed</title>\n<link>{escape(link)}</link>\n"
           "<description>L&amp;B job feed</description>\n"
           + "\n".join(items) + "\n</channel>\n</rss>\n")
    headers = ("Cache-Control: no-cache", SERVER_HEADER,
               "Content-Type: application/rss+xml; charset=utf-8")
    return HTTPResponse(200, headers, doc.encode("utf-8", "surrogateescape"))
