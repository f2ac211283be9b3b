"""The rows of a job's detail page (formats.md §10.2).

:func:`job_rows` lists ``(key, label, value, link)`` for a status: ``key`` names the
row in ``?text`` output (``Status=Running``), ``label`` in the HTML table, ``value``
is the text to show (None: the field is unset, written as an empty ``key=`` line
or a greyed row), ``link`` a URL the HTML value links to. The order and the
type-specific blocks (DAG and collection, CREAM, file transfer, virtual machine,
PBS) follow the original's pages, so that scripts reading ``key=value`` lines find
what they expect. Times are shown as ``ctime`` text in UTC.
"""

from __future__ import annotations

import time
from typing import Any, Iterable, NamedTuple

from lbtx.schema import JobState, StatJobtype
from lbtx.status import JobStatus
from lbtx.timeval import Timeval

__all__ = ["Row", "job_rows", "ctime_utc", "LIST_SEPARATOR"]

#: how list values are joined: ``,`` in text, a line break in HTML
LIST_SEPARATOR = {True: ",", False: "<BR>"}


class Row(NamedTuple):
    key: str
    label: str
    value: str | None
    link: str | None = None
    #: a value with markup of its own (already HTML); plain values are escaped
    markup: bool = False


def ctime_utc(t: Timeval | None) -> str | None:
    """``Thu Mar  7 12:00:00 2024`` for a set time, None for an unset one."""
    if t is None or t.sec <= 0:
        return None
    return time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(t.sec))


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    text = getattr(value, "text", None)
    return text if isinstance(text, str) else str(value)


def _number(value: Any, neutral: Any = None) -> str | None:
    """A number, or None when it holds the field's "unset" value."""
    if value is None or value is False or value == neutral:
        return None
    return str(int(value))


def _yes_no(value: Any) -> str:
    return "YES" if value else "NO"


def _id(value: Any) -> str | None:
    return None if value is None else str(value)


def _joined(values: Iterable[str] | None, text: bool) -> str | None:
    values = [v for v in values or () if v is not None]
    return LIST_SEPARATOR[text].join(values) if values else None


def _pairs(pairs, text: bool, *, quote: bool) -> str | None:
    items = pairs.items() if hasattr(pairs, "items") else (pairs or ())
    shown = [(f'"{k}={v}"' if quote and text else f"{k}={v}") for k, v in items]
    return LIST_SEPARATOR[text].join(shown) if shown else None


def _histogram(counts, text: bool) -> str | None:
    if not counts:
        return None
    parts = []
    for state in JobState:
        n = int(counts[state.value] or 0) if state.value < len(counts) else 0
        if text:
            parts.append(f"{state.text}={n}")
        else:
            parts.append(f"<B>{state.text}&emsp;{n}</B>" if n else f"{state.text}&emsp;{n}")
    return LIST_SEPARATOR[text].join(parts)


def _block(s: JobStatus, text: bool, hist) -> list[Row]:
    """The rows that depend on the job type."""
    t = s.jobtype
    if t in (StatJobtype.DAG, StatJobtype.COLLECTION, StatJobtype.FILE_TRANSFER_COLLECTION):
        return [
            Row("seed", "Seed", _text(s.seed)),
            Row("children_num", "No. of Children", _number(s.children_num, 0)),
            Row("children_hist", "Child histogram", _histogram(hist, text), markup=not text),
            Row("subjob_failed", "Subjob Failed", _number(s.subjob_failed, 0)),
        ]
    if t == StatJobtype.CREAM:
        return [
            Row("CREAM_Status", "CREAM Status", _text(s.cream_state)),
            Row("cream_endpoint", "CREAM Endpoint", _text(s.cream_endpoint)),
            Row("cream_node", "CREAM Worker node", _text(s.cream_node)),
            Row("cream_reason", "CREAM Reason", _text(s.cream_reason)),
            Row("cream_lrms_id", "CREAM LRMS id", _text(s.cream_lrms_id)),
            Row("cream_cancelling", "CREAM Cancelling", _yes_no(s.cream_cancelling)),
            Row("cream_cpu_time", "CREAM CPU time", _number(s.cream_cpu_time)),
            Row("cream_done_code", "CREAM Done code", _number(s.cream_done_code)),
            Row("cream_exit_code", "CREAM Exit code", _number(s.cream_exit_code)),
        ]
    if t == StatJobtype.FILE_TRANSFER:
        compute = _id(s.ft_compute_job)
        return [
            Row("compute_job", "Compute job", compute, compute),
            Row("sandbox_type", "Sandbox type", _text(s.ft_sandbox_type)),
            Row("ft_source", "File transfer source", _text(s.ft_src)),
            Row("ft_destination", "File transfer destination", _text(s.ft_dest)),
        ]
    if t == StatJobtype.VIRTUAL_MACHINE:
        return [
            Row("vm_state", "VM State", _text(s.vm_state)),
            Row("vm_image", "VM image", _text(s.vm_image)),
            Row("vm_require", "VM require", _text(s.vm_require)),
            Row("vm_usage", "VM usage", _text(s.vm_usage)),
            Row("vm_hostname", "VM hostname", _text(s.vm_hostname)),
            Row("vm_machine", "VM machine", _text(s.vm_machine)),
            Row("vm_id", "VM ID", _text(s.vm_id)),
            Row("vm_name", "VM name", _text(s.vm_name)),
            Row("vm_phy_hostname", "VM physical hostname", _text(s.vm_phy_hostname)),
        ]
    if t == StatJobtype.PBS:
        return [
            Row("pbs_state", "PBS state", _text(s.pbs_state)),
            Row("pbs_substate", "PBS Substate", _number(s.pbs_substate)),
            Row("pbs_queue", "PBS queue", _text(s.pbs_queue)),
            Row("pbs_owner", "PBS owner", _text(s.pbs_owner)),
            Row("pbs_name", "PBS name", _text(s.pbs_name)),
            Row("pbs_reason", "PBS reason", _text(s.pbs_reason)),
            Row("pbs_scheduler", "PBS scheduler", _text(s.pbs_scheduler)),
            Row("pbs_dest_host", "PBS destination host", _text(s.pbs_dest_host)),
            Row("pbs_pid", "PBS PID", _number(s.pbs_pid)),
            Row("pbs_exit_status", "PBS Exit Status", _number(s.pbs_exit_status)),
            Row("pbs_error_desc", "PBS error description", _text(s.pbs_error_desc)),
            Row("pbs_resource_requested", "PBS Resource Requested",
                _pairs(s.pbs_resource_requested, text, quote=False)),
            Row("pbs_resource_usage", "PBS Resource Usage",
                _pairs(s.pbs_resource_usage, text, quote=False)),
        ]
    if t == StatJobtype.SIMPLE:
        return [Row("jw_status", "JW status", _text(s.jw_status))]
    return []


def job_rows(s: JobStatus, *, text: bool, children_hist=None) -> list[Row]:
    """Every row of the detail page of ``s``; ``children_hist`` is the histogram
    to show for DAGs and collections (the thorough one when it was counted)."""
    job = _id(s.job_id)
    parent = _id(s.parent_job)
    hist = children_hist if children_hist is not None else s.children_hist
    isb, osb = _id(s.isb_transfer), _id(s.osb_transfer)
    rows = [
        Row("Job", "Job ID", job, job),
        Row("cream_id", "CREAM ID", _text(s.cream_id)),
        Row("parent_job", "Parent job", parent, parent),
        Row("Status", "Status", (s.state or JobState.UNDEFINED).text),
        Row("job_type", "Type", s.jobtype.text if s.jobtype is not None else "Unknown!"),
    ]
    rows += _block(s, text, hist)
    rows += [
        Row("owner", "Owner", _text(s.owner)),
        Row("payload_owner", "Payload Owner", _text(s.payload_owner)),
        Row("condorId", "Condor Id", _text(s.condor_id)),
        Row("globusId", "Globus Id", _text(s.globus_id)),
        Row("localId", "Local Id", _text(s.local_id)),
        Row("reason", "Reason", _text(s.reason)),
        Row("stateEnterTime", "State entered", ctime_utc(s.state_enter_time)),
        Row("lastUpdateTime", "Last update", ctime_utc(s.last_update_time)),
        Row("expectUpdate", "Expect update", _yes_no(s.expect_update)),
        Row("expectFrom", "Expect update from", _text(s.expect_from)),
        Row("location", "Location", _text(s.location)),
        Row("destination", "Destination", _text(s.destination)),
        Row("ce_node", "CE Node", _text(s.ce_node)),
        Row("resubmitted", "Resubmitted", _number(s.resubmitted, 0)),
        Row("cancelling", "Cancelling", _yes_no(s.cancelling)),
        Row("cancelReason", "Cancel reason", _text(s.cancel_reason)),
        Row("cpuTime", "CPU time", _number(s.cpu_time)),
        Row("done_code", "Done code", _number(s.done_code)),
        Row("exit_code", "Exit code", _number(s.exit_code)),
        Row("input_sandbox", "Input sandbox", isb, isb),
        Row("output_sandbox", "Output sandbox", osb, osb),
        Row("acl", "ACL", _text(s.acl)),
    ]
    if s.user_tags:
        rows.append(Row("user_tags", "User Tags", _pairs(s.user_tags, text, quote=True)))
    rows.append(Row("payload_running", "Payload Running", _number(s.payload_running, 0)))
    if s.possible_destinations:
        rows.append(Row("possible_destinations", "Possible destinations",
                        _joined(s.possible_destinations, text)))
    if s.possible_ce_nodes:
        rows.append(Row("possible_ce_nodes", "Possible CE Nodes",
                        _joined(s.possible_ce_nodes, text)))
    rows += [
        Row("suspended", "Suspended", _number(s.suspended, 0)),
        Row("suspend_reason", "Suspend Reason", _text(s.suspend_reason)),
        Row("failure_reasons", "Failure Reasons", _text(s.failure_reasons)),
        Row("remove_from_proxy", "Remove From Proxy", _number(s.remove_from_proxy, 0)),
        Row("ui_host", "UI host", _text(s.ui_host)),
    ]
    if s.user_fqans:
        rows.append(Row("user_fqans", "User FQANs", _joined(s.user_fqans, text)))
    return rows

