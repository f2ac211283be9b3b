"""Answers the web view's requests (formats.md §10, cli.md §4).

:class:`WebPages` reads what a page shows through the same query backend as the
two API front ends (:class:`~lbtx.server.queries.StoreQueryBackend`), so a page
shows exactly what the caller may read: every page needs an authenticated caller
(``401`` otherwise), a job page needs read access to the job (``401`` with EPERM, as §7.16 maps it), a list
shows only readable jobs. Notification pages read registrations from the
notification store when the server has one (the owner's, or a super-user's).
"""

from __future__ import annotations

import time
from typing import Callable

from twisted.internet.defer import CancelledError, inlineCallbacks, maybeDeferred, succeed
from twisted.logger import Logger

from lbtx import __version__
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError, Operation, http_status
from lbtx.protocols.legacy_query.http import HTTPRequest, HTTPResponse
from lbtx.protocols.legacy_query.messages import (QueryResults, ResultLimit, StatusFlag,
                                                  format_flags)
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.server.web import paths, render
from lbtx.server.web.html_query import WebQueryError, parse_query
from lbtx.server.web.job_rows import Row
from lbtx.server.web.rss import DEFAULT_WINDOW, feed_query, rss_document

__all__ = ["WebPages", "LIST_LIMIT"]

#: most jobs one list page shows
LIST_LIMIT = 5000
_MINE = ((Condition(Attr.OWNER, Op.EQUAL, None),),)
_DETAIL_FLAGS = StatusFlag.CLASSADS | StatusFlag.CHILDREN


class WebPages:
    """``handle(request, caller) -> Deferred[HTTPResponse]`` for web requests.

    :param backend: the query backend (``IQueryBackend`` plus its ``policy``).
    :param server: ``(host, port)`` of this server, for job ids of paths.
    :param notifications: the store of notification registrations, or None.
    :param header: HTML inserted into every page's head (a site style), or None.
    :param identity: the server's own identity, shown on the configuration page.
    :param rss_window: how recent (seconds) the jobs of an RSS feed are.
    """

    log = Logger()

    def __init__(self, backend, *, server: tuple[str, int], clock, request_timeout: float = 120,
                 notifications=None, header: str | None = None, identity: str | None = None,
                 rss_window: int = DEFAULT_WINDOW, now: Callable[[], float] = time.time):
        self._backend = backend
        self._server = server
        self._clock = clock
        self._timeout = request_timeout
        self._notifications = notifications
        self._header = header
        self._identity = identity
        self._rss_window = rss_window
        self._now = now
        self._started = int(now())
        self.accesses = {"html": 0, "text": 0}

    # --- entry -----------------------------------------------------------------
    def handle(self, request: HTTPRequest, caller) -> "Deferred[HTTPResponse]":
        parts = request.request_line.split(" ")
        target = parts[1] if len(parts) > 1 else ""
        page = paths.parse_target(target, self._server)
        text = page.text
        self.accesses["text" if text else "html"] += 1
        if request.method != "GET":
            return succeed(render.error_page(405, LBError(ErrorCode.ENOSYS,
                                                          "web pages are read with GET"),
                                             text=text))
        if caller is None:
            return succeed(render.error_page(401, LBError(ErrorCode.EPERM,
                                                          "user not authenticated"), text=text))
        if isinstance(page, paths.BadPage):
            code = ErrorCode.ENOENT if page.status == 404 else (
                ErrorCode.ENOSYS if page.status == 501 else ErrorCode.EINVAL)
            return succeed(render.error_page(page.status, LBError(code, page.reason), text=text))
        d = maybeDeferred(self._page, page, caller)
        d.addTimeout(self._timeout, self._clock)
        d.addErrback(self._failed, text)
        return d

    def _failed(self, failure, text: bool):
        if failure.check(CancelledError):
            return failure
        if failure.check(LBError):
            e = failure.value
            return render.error_page(http_status(Operation.JOB_STATUS, e.code), e, text=text)
        if failure.check(TimeoutError):
            return render.error_page(500, LBError(ErrorCode.ETIMEDOUT,
                                                  "the server took too long to answer"), text=text)
        self.log.failure("a web page failed", failure)
        return render.error_page(500, LBError(ErrorCode.DB_CALL, "internal server error"),
                                 text=text)

    def _page(self, page, caller):
        if isinstance(page, paths.JobList):
            return self._job_list(page, caller)
        if isinstance(page, paths.JobDetail):
            return self._job_detail(page, caller)
        if isinstance(page, paths.RssFeed):
            return self._rss(page, caller)
        if isinstance(page, paths.NotifList):
            return self._notif_list(page, caller)
        if isinstance(page, paths.NotifDetail):
            return self._notif_detail(page, caller)
        return self._server_page(page, caller)

    # --- jobs ------------------------------------------------------------------
    @inlineCallbacks
    def _jobs(self, query, flags, caller):
        """``(job id, view)`` of the readable jobs matching ``query`` (none: [])."""
        limit = ResultLimit(LIST_LIMIT, QueryResults.LIMITED)
        try:
            answer = yield self._backend.query_jobs(query, flags, limit, caller)
        except LBError as e:
            if e.code == ErrorCode.ENOENT:
                return []
            raise
        return [(str(job_id), view) for job_id, view in answer.jobs]

    @inlineCallbacks
    def _job_list(self, page: paths.JobList, caller):
        if page.query is None:
            query, title = _MINE, "User Jobs"
        else:
            try:
                query = parse_query(page.query, now=int(self._now()))
            except WebQueryError as e:
                status = 501 if e.unsupported else 579
                code = ErrorCode.ENOSYS if e.unsupported else ErrorCode.EINVAL
                return render.error_page(status, LBError(code, e.reason), text=page.text)
            title = "Query Result"
        jobs = yield self._jobs(query, page.flags, caller)
        return render.job_list(jobs, str(caller), text=page.text, title=title,
                               header=self._header)

    @inlineCallbacks
    def _job_detail(self, page: paths.JobDetail, caller):
        view = yield self._backend.job_status(page.job_id, _DETAIL_FLAGS | page.flags, caller)
        return render.job_detail(view, text=page.text, header=self._header)

    @inlineCallbacks
    def _rss(self, page: paths.RssFeed, caller):
        custom = None
        if page.feed == "" and page.query is not None:
            try:
                custom = parse_query(page.query, now=int(self._now()))
            except WebQueryError as e:
                return render.error_page(579, LBError(ErrorCode.EINVAL, e.reason), text=False)
        query = feed_query(page.feed, now=int(self._now()), window=self._rss_window,
                           custom=custom)
        if query is None:
            return render.error_page(404, LBError(ErrorCode.ENOENT,
                                                  f"no feed {page.feed[:40]!r}"), text=False)
        jobs = yield self._jobs(query, StatusFlag.NONE, caller)
        host, port = self._server
        return rss_document(f"https://{host}:{port}/RSS:{page.feed}", jobs)

    # --- notifications -----------------------------------------------------------
    def _superuser(self, caller) -> bool:
        policy = getattr(self._backend, "policy", None)
        return bool(policy is not None and policy.is_superuser(caller))

    def _store(self):
        if self._notifications is None:
            raise LBError(ErrorCode.ENOSYS, "this server keeps no notifications")
        return self._notifications

    @inlineCallbacks
    def _notif_list(self, page: paths.NotifList, caller):
        store = self._store()
        admin = self._superuser(caller)
        which = page.which if admin else "my"
        registrations = yield store.registrations(None if which == "all" else str(caller))
        if which == "foreign":
            registrations = [r for r in registrations if r.owner != str(caller)]
        ids = sorted(r.notif_id.rsplit("NOTIF:", 1)[-1] for r in registrations)
        return render.notif_list(ids, which, admin=admin, text=page.text, header=self._header)

    @inlineCallbacks
    def _notif_detail(self, page: paths.NotifDetail, caller):
        store = self._store()
        host, port = self._server
        reg = yield store.registration(f"https://{host}:{port}/NOTIF:{page.unique}")
        if reg is None:
            raise LBError(ErrorCode.ENOENT, "no such notification")
        if reg.owner != str(caller) and not self._superuser(caller):
            raise LBError(ErrorCode.EPERM, "not the owner of the notification")
        jobs = ",".join(reg.job_ids) if reg.job_ids else None
        rows = [
            Row("Notif_id", "Notification ID", reg.notif_id),
            Row("Owner", "Owner", reg.owner),
            Row("Destination", "Destination", reg.destination or "(pull)"),
            Row("Valid_until", "Valid until", render.utc_text(reg.expires)),
            Row("Flags", "Flags", format_flags(StatusFlag(int(reg.flags))) or None),
            Row("Job_id", "Job ID", jobs),
            Row("Conditions", "Conditions", _conditions_text(reg.conditions)),
        ]
        return render.notif_detail(rows, text=page.text, header=self._header)

    # --- server pages --------------------------------------------------------------
    def _server_page(self, page: paths.ServerPage, caller):
        if page.name == "version":
            rows = [Row("server_version", "Server version", __version__)]
            return render.server_page("Server version", rows, text=page.text,
                                      header=self._header)
        if page.name == "stats":
            rows = [Row("html_accesses", "HTML accesses",
                        f"{self.accesses['html']},{self._started}"),
                    Row("text_accesses", "Plain text accesses",
                        f"{self.accesses['text']},{self._started}")]
            if not page.text:
                return render.html_page("Server usage statistics", _stats_table(
                    [("HTML accesses", self.accesses["html"]),
                     ("Plain text accesses", self.accesses["text"])], self._started),
                    header=self._header)
            return render.server_page("Server usage statistics", rows, text=True)
        indexes = getattr(self._backend, "indexes", ())
        rows = [
            Row("server_version", "Server version", __version__),
            Row("server_identity", "Server identity", self._identity),
            Row("client_identity", "Client identity", str(caller)),
            Row("server_indices", "Server indices",
                ",".join(_index_name(index) for index in indexes) or None),
            Row("msg_brokers", "Messaging brokers", ""),
            Row("msg_prefixes", "Messaging prefixes", ""),
        ]
        if self._superuser(caller):
            policy = self._backend.policy
            rows.append(Row("admins", "Super Users",
                            ",".join(sorted(getattr(policy, "superusers", ()))) or None))
        return render.server_page("Server configuration", rows, text=page.text,
                                  header=self._header)


def _index_name(index) -> str:
    return "+".join((name or attr.value) for attr, name in index)


def _conditions_text(query) -> str | None:
    if not query:
        return None
    groups = []
    for group in query:
        alts = [f"{c.attr.value}{'' if c.name is None else ':' + c.name} {c.op.value} "
                f"{getattr(c.value, 'text', c.value)}" for c in group]
        groups.append("(" + " or ".join(alts) + ")")
    return " and ".join(groups)


def _stats_table(rows, since: int) -> str:
    when = render.utc_text(since)
    lines = "\n".join(f"<tr><td>{title}</td><td>{count}</td><td>{when}</td></tr>"
                      for title, count in rows)
    return f"<h2>Server usage statistics</h2>\n<table>\n{lines}\n</table>"
