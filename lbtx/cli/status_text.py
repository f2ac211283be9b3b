"""A job status as the ``glite-lb-*`` tools print it (cli.md §3.3, §3.8).

:func:`status_block` is the block of ``glite-lb-job_status``: one ``name : value``
line per field in upstream order, ``(null)`` for every unset text, the children
of non-simple jobs (their full blocks nested one TAB deeper), the children
histogram, user tags, per-state entry times (``ctime`` in the local time zone),
the PBS, CREAM and VM blocks where they apply, and a closing empty line.
:func:`flat_block` is the flat subset ``glite-lb-query_ext -s`` prints.

Both work on a :class:`~lbtx.protocols.legacy_query.jobstat.JobView` (a status
read from the server, with its children ids and children states when asked for).
The quirks of the original are kept because scripts parse them: ``network server``
with a space, ``payload_running:`` without one, ``access rights : `` followed by
the rights text with no line break when it is ``(null)``, trailing blanks after
``stateEnterTimes :`` and the list headers.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

from lbtx.protocols.legacy_query.jobstat import JobView
from lbtx.schema import JobState, StatJobtype, StatJwStatus
from lbtx.status import HIST_SIZE, JobStatus
from lbtx.timeval import NULL_TIME

__all__ = ["status_block", "flat_block", "null", "state_name", "done_code_text",
           "jobtype_text", "NOT_AVAILABLE"]

NULL = "(null)"
NOT_AVAILABLE = "    - not available -"


def null(value: Any) -> str:
    """A text field as C's ``printf("%s")`` prints it: ``(null)`` when unset."""
    return NULL if value is None else str(value)


def _int(value: Any, default: int = 0) -> str:
    """An integer or boolean field as ``%d``."""
    return str(default if value is None else int(value))


def state_name(state) -> str:
    """The capitalised state name (``Undefined`` for an unset state)."""
    return (state if state is not None else JobState.UNDEFINED).text


def done_code_text(code) -> str:
    """``DONE_CODE_OK``/``_FAILED``/``_CANCELLED``, or ``(null)`` when unset."""
    return NULL if code is None else f"DONE_CODE_{code.name}"


def jobtype_text(jobtype) -> str:
    return NULL if jobtype is None else jobtype.text


def _enum_text(value, default: str = NULL) -> str:
    return default if value is None else value.text


def _timeval(tv) -> str:
    tv = tv or NULL_TIME
    return f"{tv.sec}.{tv.usec:06d}"


def _ctime(sec: int | None) -> str:
    return NOT_AVAILABLE if not sec else time.ctime(sec)


def _taglist(pairs) -> str:
    if not pairs:
        return NULL
    return ",".join(f"{n}={v}" for n, v in (pairs.items() if isinstance(pairs, dict) else pairs))


def _children_ids(view: JobView) -> list:
    if view.children is not None:
        return [str(c) for c in view.children]
    return [str(c) for c in (view.status.children or ())]


def status_block(view: JobView | JobStatus, level: int = 0) -> str:
    """The ``glite-lb-job_status`` block of one job, nested ``level`` TABs deep."""
    if isinstance(view, JobStatus):
        view = JobView(view)
    st = view.status
    ind = "\t" * level
    out: list[str] = []

    def line(name: str, value: str) -> None:
        out.append(f"{ind}{name} : {value}\n")

    line("state", state_name(st.state))
    line("jobId", null(st.job_id))
    line("owner", null(st.owner))
    line("payload_owner", null(st.payload_owner))
    line("jobtype", jobtype_text(st.jobtype))
    line("parent_job", null(st.parent_job))
    if st.jobtype is not StatJobtype.SIMPLE:
        line("seed", null(st.seed))
        line("children_num", _int(st.children_num))
        out.append(f"{ind}children :\n")
        for child in _children_ids(view):
            out.append(f"{ind}\tchildren : {child}\n")
        if view.children_states is not None:
            out.append(f"{ind}children_states :\n")
            for child in view.children_states:
                out.append(status_block(child, level + 1))
        out.append(f"{ind}children_hist :\n")
        if st.children_hist is not None:
            for i in range(HIST_SIZE):
                count = st.children_hist[i] if i < len(st.children_hist) else 0
                out.append(f"{ind}{JobState(i).text:>14}  {int(count or 0)}\n")
    line("condorId", null(st.condor_id))
    line("globusId", null(st.globus_id))
    line("localId", null(st.local_id))
    line("jdl", null(st.jdl))
    line("matched_jdl", null(st.matched_jdl))
    line("destination", null(st.destination))
    line("network server", null(st.network_server))
    line("condor_jdl", null(st.condor_jdl))
    line("rsl", null(st.rsl))
    line("reason", null(st.reason))
    line("location", null(st.location))
    line("ce_node", null(st.ce_node))
    line("subjob_failed", _int(st.subjob_failed))
    line("done_code", done_code_text(st.done_code))
    line("exit_code", _int(st.exit_code))
    line("resubmitted", _int(st.resubmitted))
    line("cancelling", _int(st.cancelling))
    line("cancelReason", null(st.cancel_reason))
    line("cpuTime", _int(st.cpu_time))
    out.append(f"{ind}user_tags :\n")
    for name, value in (st.user_tags or {}).items():
        out.append(f'{ind}{name:>14} = "{value}"\n')
    line("stateEnterTime", _timeval(st.state_enter_time))
    out.append(f"{ind}stateEnterTimes : \n")
    if st.state_enter_times is not None:
        for i in range(HIST_SIZE):
            sec = st.state_enter_times[i] if i < len(st.state_enter_times) else 0
            out.append(f"{ind}{JobState(i).text:>14}  {_ctime(sec)}\n")
    line("lastUpdateTime", _timeval(st.last_update_time))
    line("expectUpdate", _int(st.expect_update))
    line("expectFrom", null(st.expect_from))
    line("acl", null(st.acl))
    out.append(f"{ind}access rights : \n{null(st.access_rights)}")
    out.append(f"{ind}payload_running: {_int(st.payload_running)}\n")
    _list(out, ind, "possible_destinations", st.possible_destinations)
    _list(out, ind, "possible_ce_nodes", st.possible_ce_nodes)
    line("suspended", _int(st.suspended))
    line("suspend_reason", null(st.suspend_reason))
    line("failure_reasons", null(st.failure_reasons))
    line("remove_from_proxy", _int(st.remove_from_proxy))
    line("ui_host", null(st.ui_host))
    _list(out, ind, "user_fqans", st.user_fqans)
    line("sandbox_retrieved", _int(st.sandbox_retrieved))
    line("jw_status", _enum_text(st.jw_status, "Unknown"))
    line("isb_transfer", null(st.isb_transfer))
    line("osb_transfer", null(st.osb_transfer))
    if st.jobtype is StatJobtype.PBS:
        line("pbs_state", null(st.pbs_state))
        line("pbs_queue", null(st.pbs_queue))
        line("pbs_owner", null(st.pbs_owner))
        line("pbs_name", null(st.pbs_name))
        line("pbs_reason", null(st.pbs_reason))
        line("pbs_scheduler", null(st.pbs_scheduler))
        line("pbs_dest_host", null(st.pbs_dest_host))
        line("pbs_pid", _int(st.pbs_pid))
        line("pbs_resource_usage", _taglist(st.pbs_resource_usage))
        line("pbs_exit_status", _int(st.pbs_exit_status))
        line("pbs_error_desc", null(st.pbs_error_desc))
    if st.jobtype is StatJobtype.CREAM or st.cream_state is not None:
        line("cream_state", _enum_text(st.cream_state))
        line("cream_owner", null(st.cream_owner))
        line("cream_endpoint", null(st.cream_endpoint))
        line("cream_jdl", null(st.cream_jdl))
        line("cream_reason", null(st.cream_reason))
        line("cream_lrms_id", null(st.cream_lrms_id))
        line("cream_node", null(st.cream_node))
        line("cream_done_code", _int(st.cream_done_code, -1))
        line("cream_exit_code", _int(st.cream_exit_code, -1))
        line("cream_cancelling", _int(st.cream_cancelling))
        line("cream_cpu_time", _int(st.cream_cpu_time))
        jw = st.cream_jw_status
        line("cream_jw_status", NULL if jw is None else _jw_text(jw))
    line("ft_compute_job", null(st.ft_compute_job))
    line("ft_sandbox_type", "UNKNOWN" if st.ft_sandbox_type is None else st.ft_sandbox_type.name)
    line("ft_src", null(st.ft_src))
    line("ft_dest", null(st.ft_dest))
    if st.jobtype is StatJobtype.VIRTUAL_MACHINE:
        line("vm_state", _enum_text(st.vm_state))
        line("vm_image", null(st.vm_image))
        line("vm_require", null(st.vm_require))
        line("vm_usage", null(st.vm_usage))
        line("vm_hostname", null(st.vm_hostname))
        line("vm_machine", null(st.vm_machine))
        line("vm_id", null(st.vm_id))
        line("vm_name", null(st.vm_name))
        line("vm_phy_hostname", null(st.vm_phy_hostname))
        line("vm_system_halting", _int(st.vm_system_halting))
        line("vm_manager", null(st.vm_manager))
    out.append("\n")
    return "".join(out)


def _jw_text(value) -> str:
    try:
        return StatJwStatus(int(value)).text
    except ValueError:
        return str(int(value))


def _list(out: list[str], ind: str, name: str, items: Iterable | None) -> None:
    if items is None:
        return
    out.append(f"{ind}{name} : \n")
    for item in items:
        out.append(f"{ind}\t{item} \n")


def flat_block(view: JobView | JobStatus) -> str:
    """The flat status of ``glite-lb-query_ext -s``: ``STATUS:\\t<State>``, an empty
    line, the scalar fields of :func:`status_block` (``jobtype`` and ``done_code``
    as numbers; no children, tags or ACL) and an empty line."""
    st = view.status if isinstance(view, JobView) else view
    rows = [
        ("state", state_name(st.state)),
        ("jobId", null(st.job_id)),
        ("owner", null(st.owner)),
        ("jobtype", _int(st.jobtype, -1)),
        ("parent_job", null(st.parent_job)),
        ("seed", null(st.seed)),
        ("children_num", _int(st.children_num)),
        ("condorId", null(st.condor_id)),
        ("globusId", null(st.globus_id)),
        ("localId", null(st.local_id)),
        ("jdl", null(st.jdl)),
        ("matched_jdl", null(st.matched_jdl)),
        ("destination", null(st.destination)),
        ("network server", null(st.network_server)),
        ("condor_jdl", null(st.condor_jdl)),
        ("rsl", null(st.rsl)),
        ("reason", null(st.reason)),
        ("location", null(st.location)),
        ("ce_node", null(st.ce_node)),
        ("subjob_failed", _int(st.subjob_failed)),
        ("done_code", _int(st.done_code, -1)),
        ("exit_code", _int(st.exit_code)),
        ("resubmitted", _int(st.resubmitted)),
        ("cancelling", _int(st.cancelling)),
        ("cancelReason", null(st.cancel_reason)),
        ("cpuTime", _int(st.cpu_time)),
        ("stateEnterTime", _timeval(st.state_enter_time)),
        ("lastUpdateTime", _timeval(st.last_update_time)),
        ("expectUpdate", _int(st.expect_update)),
        ("expectFrom", null(st.expect_from)),
    ]
    body = "".join(f"{name} : {value}\n" for name, value in rows)
    return f"STATUS:\t{state_name(st.state)}\n\n{body}\n"
