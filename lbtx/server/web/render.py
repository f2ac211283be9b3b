"""HTML and plain-text pages of the web view (formats.md §10.1-10.2, cli.md §4).

Every function returns an :class:`~lbtx.protocols.legacy_query.http.HTTPResponse`.
HTML escapes every value taken from a job (a job's fields are written by whoever
logs its events, so they are hostile input to a browser); ``?text`` output writes
one ``key=value`` line per item, with an empty value for an unset one and the
multi-line values (JDL, history) ULM-escaped onto one line.
"""

from __future__ import annotations

import json
import time
from html import escape
from typing import Iterable, Sequence

from lbtx.protocols.legacy_query.errors import REASONS, LBError, error_text
from lbtx.protocols.legacy_query.event_xml import event_json_object
from lbtx.protocols.legacy_query.http import HTTPResponse
from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.protocols.legacy_query.negotiation import SERVER_HEADER
from lbtx.schema import JobState, StatJobtype
from lbtx.server.web.job_rows import Row, job_rows
from lbtx.ulm import escape_text

__all__ = ["html_page", "text_page", "error_page", "job_list", "job_detail", "notif_list",
           "notif_detail", "server_page", "DEFAULT_STYLE", "utc_text"]

_HTML = ("Cache-Control: no-cache", SERVER_HEADER, "Content-Type: text/html; charset=utf-8")
_TEXT = ("Cache-Control: no-cache", SERVER_HEADER, "Content-Type: text/plain; charset=utf-8")
DEFAULT_STYLE = ('<style type="text/css">\ntr.notused {color: gray; text-align: left;}\n'
                 '.jobtype {display: none;}\n.jobstate {display: none;}</style>')
_COLLECTIONS = (StatJobtype.DAG, StatJobtype.COLLECTION, StatJobtype.FILE_TRANSFER_COLLECTION)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def html_page(title: str, body: str, *, header: str | None = None, status: int = 200) -> HTTPResponse:
    doc = (f"<HTML>\n<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n"
           f"<TITLE>{escape(title)}</TITLE>\n<HEAD>\n{header or DEFAULT_STYLE}\n</HEAD>\n<BODY>\n"
           f"{body}\n</BODY>\n</HTML>\n")
    return HTTPResponse(status, _HTML, _bytes(doc))


def text_page(lines: Iterable[str], *, status: int = 200) -> HTTPResponse:
    return HTTPResponse(status, _TEXT, _bytes("".join(f"{line}\n" for line in lines)))


def error_page(status: int, error: LBError | None, *, text: bool) -> HTTPResponse:
    """An error as a page: ``Error=``/``Code=``/``Description=`` lines in text."""
    reason = REASONS.get(status, "Unknown error")
    code = int(error.code) if error is not None else 0
    what, desc = error_text(code), (error.desc if error is not None else "")
    if text:
        return text_page([f"Error={reason}", f"Code={code}", f"Description={what} ({desc})"],
                         status=status)
    return html_page(f"Error {status}", f"<h1>{status} {escape(reason)}</h1>\n"
                     f"<p>{code}: {escape(what)} ({escape(str(desc))})</p>", status=status)


def utc_text(epoch: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch))


def _state_of(view: JobView | None) -> tuple[str, str]:
    if view is None:
        return "Unknown!", "(no details)"
    s = view.status
    jobtype = s.jobtype.text if s.jobtype is not None else "Unknown!"
    if s.jobtype == StatJobtype.CREAM and s.cream_state is not None:
        state = s.cream_state.text
    elif s.jobtype == StatJobtype.VIRTUAL_MACHINE and s.vm_state is not None:
        state = s.vm_state.text
    elif s.jobtype == StatJobtype.PBS and s.pbs_state:
        state = s.pbs_state
    else:
        state = (s.state or JobState.UNDEFINED).text
    return jobtype, state


def job_list(jobs: Sequence[tuple[str, JobView | None]], subject: str | None, *, text: bool,
             title: str = "User Jobs", header: str | None = None) -> HTTPResponse:
    """A list of jobs (``/`` and ``/?query=``): ids with type and state, subjobs
    nested under a parent listed before them; text: ``User_jobs=`` and
    ``User_subject=``."""
    if text:
        return text_page([f"User_jobs={','.join(job for job, _ in jobs)}",
                          f"User_subject={subject or '<anonymous>'}"])
    listed = {job for job, _ in jobs}
    parent_of = {job: (str(v.status.parent_job) if v is not None and v.status.parent_job
                       else None) for job, v in jobs}

    def key(item):
        job = item[0]
        parent = parent_of[job]
        return (parent, 1, job) if parent in listed else (job, 0, "")

    lines, open_parent = [], None
    for job, view in sorted(jobs, key=key):
        parent = parent_of[job]
        nested = parent in listed
        if nested and open_parent != parent:
            lines.append("<UL>")
            open_parent = parent
        elif not nested and open_parent is not None:
            lines.append("</UL>")
            open_parent = None
        jobtype, state = _state_of(view)
        href = escape(job, quote=True)
        lines.append(f'<li><a href="{href}">{escape(job)}</a> <span class="jobtype">&mdash; '
                     f'{escape(jobtype)}</span> <span class="jobstate">{escape(state)}</span></li>')
    if open_parent is not None:
        lines.append("</UL>")
    body = (f"<h2><B>{escape(title)}</B></h2>\nTotal of {len(jobs)}<P><UL>\n" + "\n".join(lines)
            + f"\n</UL>User subject: {escape(subject or '<anonymous>')}<p>")
    return html_page(title, body, header=header)


def _html_rows(rows: Iterable[Row]) -> str:
    out = []
    for r in rows:
        if r.value is None:
            out.append(f'<tr class="notused"><th>{escape(r.label)}</th></tr>')
            continue
        value = r.value if r.markup else escape(r.value)
        if r.link:
            value = f'<a href="{escape(r.link, quote=True)}">{value}</a>'
        out.append(f'<tr><th align="left">{escape(r.label)}</th><td>{value}</td></tr>')
    return "\n".join(out)


def _text_rows(rows: Iterable[Row]) -> list[str]:
    return [f"{r.key}={'' if r.value is None else escape_text(r.value)}" for r in rows]


def _history_json(view: JobView) -> str:
    return json.dumps([event_json_object(ev) for ev in view.history or ()], indent=1)


def job_detail(view: JobView, *, text: bool, header: str | None = None) -> HTTPResponse:
    """The page of one job: its rows, then its history (or a link to it), its
    JDL, its RSL, and its children."""
    s = view.status
    rows = job_rows(s, text=text, children_hist=view.children_hist)
    job = str(s.job_id)
    if text:
        lines = _text_rows(rows)
        lines.append("history=" + (escape_text(_history_json(view))
                                   if view.history is not None else ""))
        lines.append("jdl=" + (escape_text(s.jdl) if s.jdl else ""))
        if s.cream_jdl:
            lines.append("cream_jdl=" + escape_text(s.cream_jdl))
        lines.append("rsl=" + (escape_text(s.rsl) if s.rsl else ""))
        return text_page(lines)
    parts = [f"<h2>{escape(job)}</h2>", '<table halign="left">', _html_rows(rows), "</table>"]
    if view.history is not None:
        parts.append(f"<h3>Job History</h3>\n<pre>{escape(_history_json(view))}</pre>")
    else:
        parts.append(f'<H3><A HREF="{escape(job, quote=True)}?flags=history">'
                     "Display full history of this job</A></H3>")
    if s.jdl:
        parts.append(f"<h3>Job description</h3>\n<pre>{escape(s.jdl)}</pre>")
    if s.cream_jdl:
        parts.append(f"<h3>CREAM Job description</h3>\n<pre>{escape(s.cream_jdl)}</pre>")
    if s.rsl:
        parts.append(f"<h3>RSL</h3>\n<pre>{escape(s.rsl)}</pre>")
    children = [str(c) for c in view.children or ()]
    if s.jobtype in _COLLECTIONS and children:
        items = "\n".join(f'<li><a href="{escape(c, quote=True)}">{escape(c)}</a></li>'
                          for c in children)
        parts.append(f"<h3>Children</h3>\n<UL>\n{items}\n</UL>")
    return html_page("Job Detail", "\n".join(parts), header=header)


def notif_list(ids: Sequence[str], which: str, *, admin: bool, text: bool,
               header: str | None = None) -> HTTPResponse:
    """``/NOTIF:``: the unique parts of registrations, linked to their pages."""
    if text:
        return text_page([f"User_notifications={','.join(ids)}"])
    heading = {"all": "All notifications",
               "foreign": "Other users' notifications"}.get(which, "Your notifications")
    links = ""
    if admin:
        choices = [("my", "/NOTIF:", "just your registrations"),
                   ("all", "/NOTIF:?all", "all registrations"),
                   ("foreign", "/NOTIF:?foreign", "registrations by other users")]
        links = " | ".join(f"<B>Viewing {label}</B>" if name == which
                           else f'<A HREF="{href}">View {label}</A>'
                           for name, href, label in choices) + "<P>"
    items = "\n".join(f'<li><a href="/NOTIF:{escape(u, quote=True)}">{escape(u)}</a></li>'
                      for u in ids) or "No registrations found"
    body = f"<h2><B>{heading}</B></h2>\n<P>{links}<P>Total of {len(ids)}<ul>{items}</ul>"
    return html_page("Notifications", body, header=header)


def notif_detail(rows: Sequence[Row], *, text: bool, header: str | None = None) -> HTTPResponse:
    """A registration's page (rows from the service: id, owner, destination,
    validity, flags, job, conditions)."""
    if text:
        return text_page(_text_rows(rows))
    body = f'<h2>Notification Detail</h2>\n<table halign="left">\n{_html_rows(rows)}\n</table>'
    return html_page("Notification Detail", body, header=header)


def server_page(title: str, rows: Sequence[Row], *, text: bool,
                header: str | None = None) -> HTTPResponse:
    """The configuration, statistics and version pages: one table of rows."""
    if text:
        return text_page(_text_rows(rows))
    body = f"<h2>{escape(title)}</h2>\n<table halign=\"left\">\n{_html_rows(rows)}\n</table>"
    return html_page(title, body, header=header)
