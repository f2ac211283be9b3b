"""Request documents as the legacy client library writes them (formats.md §7.7-7.14).

The client side of the protocol: lbtx's consumer commands send these, and the tests
use them to check that what a legacy client sends parses back to the same request.
Layout (tabs, CRLF, no trailing newline after the root of query requests) follows
the upstream writer.
"""

from __future__ import annotations

from lbtx.protocols.legacy_query.conditions_xml import write_and
from lbtx.protocols.legacy_query.escaping import escape
from lbtx.protocols.legacy_query.messages import (
    IndexedAttrsRequest, NotifRequest, QueryEventsRequest, QueryJobsRequest, SequenceCodeRequest,
    format_flags)

__all__ = ["write_query_jobs", "write_query_events", "write_sequence_code",
           "write_indexed_attrs", "write_notif", "write_request", "PATHS"]


def write_query_jobs(req: QueryJobsRequest) -> str:
    return (f'<edg_wll_QueryJobsRequest softLimit="{req.limit.soft_limit}" '
            f'queryRes="{int(req.limit.mode)}">\r\n'
            f"\t<flags>{format_flags(req.flags)}</flags>\r\n"
            f"{write_and(req.conditions)}</edg_wll_QueryJobsRequest>")


def write_query_events(req: QueryEventsRequest) -> str:
    return (f'<edg_wll_QueryEventsRequest softLimit="{req.limit.soft_limit}" '
            f'queryRes="{int(req.limit.mode)}">\r\n'
            f"{write_and(req.job_conditions, req.event_conditions)}</edg_wll_QueryEventsRequest>")


def write_sequence_code(req: SequenceCodeRequest) -> str:
    body = f"\t\t\t<jobId>{escape(str(req.job_id))}</jobId>\r\n"
    if req.source is not None:
        body += f"\t\t\t<source>{escape(req.source)}</source>\r\n"
    return f"<edg_wll_QuerySequenceCodeRequest>\r\n{body}</edg_wll_QuerySequenceCodeRequest>\r\n"


def write_indexed_attrs(req: IndexedAttrsRequest | None = None) -> str:
    return "<edg_wll_IndexedAttrsRequest>\r\n</edg_wll_IndexedAttrsRequest>\r\n"


def write_notif(req: NotifRequest) -> str:
    body = ""
    if req.notif_id is not None:
        body += f"\t\t\t<notifId>{escape(str(req.notif_id))}</notifId>\r\n"
    if req.client_address is not None:
        body += f"\t\t\t<clientAddress>{escape(req.client_address)}</clientAddress>\r\n"
    body += f"\t\t\t<notifChangeOp>{req.change_op.value}</notifChangeOp>\r\n"
    if req.validity is not None:
        body += f"\t\t\t<requestedValidity>{int(req.validity)}</requestedValidity>\r\n"
    if req.conditions:
        body += write_and(req.conditions)
    return (f'<edg_wll_NotifRequest function="{req.function.value}">\r\n'
            f"\t<flags>{format_flags(req.flags)}</flags>\r\n{body}</edg_wll_NotifRequest>\r\n")


_WRITERS = {
    QueryJobsRequest: ("/queryJobs", write_query_jobs),
    QueryEventsRequest: ("/queryEvents", write_query_events),
    SequenceCodeRequest: ("/querySequenceCode", write_sequence_code),
    IndexedAttrsRequest: ("/indexedAttrs", write_indexed_attrs),
    NotifRequest: ("/notifRequest", write_notif),
}
#: request type -> POST path
PATHS = {t: p for t, (p, _) in _WRITERS.items()}


def write_request(req) -> tuple[str, str]:
    """``(path, document)`` of a POST request."""
    path, writer = _WRITERS[type(req)]
    return path, writer(req)
