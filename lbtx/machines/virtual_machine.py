"""The virtual-machine machine (jobtype VIRTUAL_MACHINE, state-machines.md §9, D6).

No ordering: every event is usable, in arrival order; sequence codes are not
kept. Post-processing: lastUpdateTime and stateEnterTime(s). A job without a
location gets ``this is VIRTUAL MACHINE``.
"""

from __future__ import annotations

from lbtx.events import Event
from lbtx.machines.base import SimpleMachine
from lbtx.schema import ENUMS, JobState, Source, StatDoneCode, StatJobtype, StatVmState
from lbtx.status import JobStatus

__all__ = ["MACHINE", "VirtualMachineMachine", "DEFAULT_LOCATION"]

DEFAULT_LOCATION = "this is VIRTUAL MACHINE"
_VM_DONE = ENUMS["VMDoneStatusCode"]
PENDING = StatVmState["VM_PENDING"]
RUNNING = StatVmState["VM_RUNNING"]
REALLY_RUNNING = StatVmState["VM_REALLY-RUNNING"]
SHUTDOWN = StatVmState["VM_SHUTDOWN"]
STOPPED = StatVmState["VM_STOPPED"]
DONE = StatVmState["VM_DONE"]
FAILURE = StatVmState["VM_FAILURE"]

#: VMDone status_code -> (vm_state, done_code); the job state becomes Done.
_DONE_OUTCOMES = {
    _VM_DONE.OK: (DONE, StatDoneCode.OK),
    _VM_DONE.DELETE: (DONE, StatDoneCode.CANCELLED),
    _VM_DONE.FAILURE: (FAILURE, StatDoneCode.FAILED),
}
_MANAGERS = (Source.CLOUD_MANAGER, Source.VM_MANAGER)


def _regjob(st: JobStatus, ev: Event, usable: bool) -> None:
    """RegJob: Submitted, vm_state pending."""
    st.state = JobState.SUBMITTED
    st.vm_state = PENDING


def _create(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMCreate: vm_require, vm_image, vm_id, vm_name, owner, vm_hostname and
    destination (the VM host name), each when present."""
    for field, value in (("vm_require", ev.require), ("vm_image", ev.image), ("vm_id", ev.id),
                         ("vm_name", ev.name), ("owner", ev.owner),
                         ("vm_hostname", ev.hostname), ("destination", ev.hostname)):
        if value is not None:
            setattr(st, field, value)


def _host(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMHost: vm_phy_hostname := hostname when present."""
    if ev.hostname is not None:
        st.vm_phy_hostname = ev.hostname


def _image(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMImage: vm_image := image when present (VMImage.image, D6)."""
    if ev.image is not None:
        st.vm_image = ev.image


def _running(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMRunning: Running; vm_state running from the cloud/VM manager (unless already
    really-running), really-running from the VM system."""
    if ev.source in _MANAGERS:
        if st.vm_state != REALLY_RUNNING:
            st.vm_state = RUNNING
    elif ev.source == Source.VM_SYSTEM:
        st.vm_state = REALLY_RUNNING
    st.state = JobState.RUNNING


def _store_usage(st: JobStatus, ev: Event) -> None:
    """vm_usage := usage when present (VMShutdown.usage / VMDone.usage, D6)."""
    if ev.usage is not None:
        st.vm_usage = ev.usage


def _shutdown(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMShutdown: from the cloud manager vm_state shutdown and Waiting; from the VM
    manager the halting flag; from the VM system the halting flag and really-running
    back to running; usage stored."""
    if ev.source == Source.CLOUD_MANAGER:
        st.vm_state = SHUTDOWN
        st.state = JobState.WAITING
    elif ev.source == Source.VM_MANAGER:
        st.vm_system_halting = True
    elif ev.source == Source.VM_SYSTEM:
        st.vm_system_halting = True
        if st.vm_state == REALLY_RUNNING:
            st.vm_state = RUNNING
    _store_usage(st, ev)


def _stop(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMStop: vm_state stopped, Waiting."""
    st.vm_state = STOPPED
    st.state = JobState.WAITING


def _resume(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMResume: vm_state pending, Waiting, halting flag cleared."""
    st.vm_state = PENDING
    st.state = JobState.WAITING
    st.vm_system_halting = False


def _done(st: JobStatus, ev: Event, usable: bool) -> None:
    """VMDone: OK -> done/Done/OK, DELETE -> done/Done/CANCELLED, FAILURE ->
    failure/Done/FAILED; usage stored."""
    outcome = _DONE_OUTCOMES.get(ev.status_code)
    if outcome is not None:
        st.vm_state, st.done_code = outcome
        st.state = JobState.DONE
    _store_usage(st, ev)


class VirtualMachineMachine(SimpleMachine):
    """§9: virtual machine life cycle; no sequence-code bookkeeping."""

    name = "virtual_machine"
    job_types = (StatJobtype.VIRTUAL_MACHINE,)
    default_location = DEFAULT_LOCATION
    keeps_seqcode = False
    rules = {
        "RegJob": _regjob,
        "VMCreate": _create,
        "VMHost": _host,
        "VMImage": _image,
        "VMRunning": _running,
        "VMShutdown": _shutdown,
        "VMStop": _stop,
        "VMResume": _resume,
        "VMDone": _done,
    }


MACHINE = VirtualMachineMachine()
