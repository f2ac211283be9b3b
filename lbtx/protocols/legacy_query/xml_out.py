"""Result documents of the legacy query protocol (formats.md §7.4-7.14).

Every writer returns the document as ``str`` of code points below 256 (one per
byte; see :mod:`.escaping`), without an XML declaration, with tabs and CRLF between
elements as the legacy server writes them. ``error`` is ``(code, description)``:
it becomes the ``code``/``desc`` attributes of the root element, also on partial
answers. :func:`error_document` is the answer with nothing but the error.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.escaping import escape
from lbtx.protocols.legacy_query.event_xml import event_element
from lbtx.protocols.legacy_query.jobstat import JobView, jobstat_element, unknown_jobstat
from lbtx.protocols.legacy_query.messages import IndexColumn, StatusFlag
from lbtx.query.conditions import Attr

__all__ = ["Error", "query_jobs_result", "query_events_result", "user_jobs_result",
           "sequence_code_result", "indexed_attrs_result", "notif_result", "error_document",
           "ROOTS", "attr_constant", "INDEX_ATTR_CONSTANTS"]

#: (code, description) of an error to report, or None
Error = tuple[int, str] | None

ROOTS = {
    "query_jobs": "edg_wll_QueryJobsResult",
    "query_events": "edg_wll_QueryEventsResult",
    "user_jobs": "edg_wll_UserJobs",
    "sequence_code": "edg_wll_QuerySequenceCodeResult",
    "indexed_attrs": "edg_wll_GetIndexedAttributesResult",
    "notif": "edg_wll_NotifResult",
    "purge": "edg_wll_PurgeResult",
    "dump": "edg_wll_DumpResult",
    "load": "edg_wll_LoadResult",
    "stats": "edg_wll_StatsResult",
}


def _open(root: str, error: Error) -> str:
    if error is None or (error[0] == ErrorCode.OK and not error[1]):
        return f"<{root}>\r\n"
    return f'<{root} code="{int(error[0])}" desc="{escape(error[1] or "")}">\r\n'


def _doc(root: str, body: str, error: Error) -> str:
    return f"{_open(root, error)}{body}</{root}>\r\n"


def query_jobs_result(jobs: Sequence[tuple[JobId | None, JobView | None]],
                      flags: StatusFlag = StatusFlag.NONE, error: Error = None) -> str:
    """``edg_wll_QueryJobsResult``: one ``edg_wll_Job`` per ``(job id, view)``.

    A None job id leaves the ``jobId`` out (``no_jobs``); a None view writes the
    empty ``jobStat name="Unknown"`` (``no_states``).
    """
    parts = []
    for job_id, view in jobs:
        parts.append("\t<edg_wll_Job>\r\n")
        if job_id is not None:
            parts.append(f"\t\t<jobId>{escape(str(job_id))}</jobId>\r\n")
        if view is not None:
            parts.append("\t\t" + jobstat_element(view, flags))
        else:
            parts.append("\t\t" + unknown_jobstat())
        parts.append("\t</edg_wll_Job>\r\n")
    return _doc(ROOTS["query_jobs"], "".join(parts), error)


def query_events_result(events: Iterable[Event], error: Error = None) -> str:
    """``edg_wll_QueryEventsResult``: one ``edg_wll_Event`` per event, in the given order."""
    return _doc(ROOTS["query_events"], "".join(event_element(e) for e in events), error)


def user_jobs_result(job_ids: Iterable[JobId], error: Error = None) -> str:
    """``edg_wll_UserJobs`` (``GET /``)."""
    body = "".join(f"      <jobId>{escape(str(j))}</jobId>\r\n" for j in job_ids)
    return _doc(ROOTS["user_jobs"], body, error)


def sequence_code_result(seqcode: str | None, error: Error = None) -> str:
    """``edg_wll_QuerySequenceCodeResult`` with ``sequence_code`` unless None."""
    body = "" if seqcode is None else f"\t\t\t<sequence_code>{escape(seqcode)}</sequence_code>\r\n"
    return _doc(ROOTS["sequence_code"], body, error)


#: the constant names of §7.12 (correct ones; upstream's table shifts the last two)
INDEX_ATTR_CONSTANTS = {a: "EDG_WLL_QUERY_ATTR_" + n for a, n in {
    Attr.JOBID: "JOBID", Attr.OWNER: "OWNER", Attr.STATUS: "STATUS", Attr.LOCATION: "LOCATION",
    Attr.DESTINATION: "DESTINATION", Attr.DONECODE: "DONECODE", Attr.USERTAG: "USERTAG",
    Attr.TIME: "TIME", Attr.LEVEL: "LEVEL", Attr.HOST: "HOST", Attr.SOURCE: "SOURCE",
    Attr.INSTANCE: "INSTANCE", Attr.EVENT_TYPE: "EVENT_TYPE", Attr.CHKPT_TAG: "CHKPT_TAG",
    Attr.RESUBMITTED: "RESUBMITTED", Attr.PARENT: "PARENT", Attr.EXITCODE: "EXITCODE",
    Attr.JDL_ATTR: "JDL_ATTR", Attr.STATEENTERTIME: "STATEENTERTIME",
    Attr.LASTUPDATETIME: "LASTUPDATETIME", Attr.NETWORK_SERVER: "NETWORK_SERVER",
    Attr.JOBTYPE: "JOB_TYPE", Attr.VM_STATUS: "VM_STATUS"}.items()}


def attr_constant(attr: Attr) -> str:
    return INDEX_ATTR_CONSTANTS[attr]


def indexed_attrs_result(indices: Iterable[Sequence[IndexColumn]], error: Error = None) -> str:
    """``edg_wll_GetIndexedAttributesResult``: one ``index`` per index, a ``QueryRec``
    per column, with ``state`` for ``time`` and ``name`` for ``usertag`` and ``jdl``."""
    parts = []
    for index in indices:
        parts.append("\t<index>\r\n")
        for attr, name in index:
            parts.append("\t\t<QueryRec>\r\n")
            parts.append(f"\t\t\t<attribute>{attr_constant(attr)}</attribute>\r\n")
            if attr == Attr.TIME and name is not None:
                parts.append(f"\t\t\t<state>{escape(name)}</state>\r\n")
            elif attr in (Attr.USERTAG, Attr.JDL_ATTR) and name is not None:
                parts.append(f"\t\t\t<name>{escape(name)}</name>\r\n")
            parts.append("\t\t</QueryRec>\r\n")
        parts.append("\t</index>\r\n")
    return _doc(ROOTS["indexed_attrs"], "".join(parts), error)


def notif_result(validity: int | None, error: Error = None) -> str:
    """``edg_wll_NotifResult`` with the granted expiry time."""
    body = "" if validity is None or validity == -1 else f"\t\t\t<validity>{int(validity)}</validity>\r\n"
    return _doc(ROOTS["notif"], body, error)


def error_document(kind: str, error: Error) -> str:
    """The result document ``kind`` (a key of :data:`ROOTS`) with only the error."""
    return _doc(ROOTS[kind], "", error)
