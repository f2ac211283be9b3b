"""Which state machine serves which job type (state-machines.md §4.1)."""

from __future__ import annotations

from zope.interface.verify import verifyObject

from lbtx.machines.interfaces import IJobStateMachine
from lbtx.schema import RegJobJobtype, StatJobtype

_MACHINES: dict[StatJobtype, object] = {}

#: RegJob jobtype -> the job type the status records (PARTITIONABLE/PARTITIONED are DAGs).
REGJOB_TO_STATUS = {
    RegJobJobtype.SIMPLE: StatJobtype.SIMPLE,
    RegJobJobtype.DAG: StatJobtype.DAG,
    RegJobJobtype.PARTITIONABLE: StatJobtype.DAG,
    RegJobJobtype.PARTITIONED: StatJobtype.DAG,
    RegJobJobtype.COLLECTION: StatJobtype.COLLECTION,
    RegJobJobtype.PBS: StatJobtype.PBS,
    RegJobJobtype.CONDOR: StatJobtype.CONDOR,
    RegJobJobtype.CREAM: StatJobtype.CREAM,
    RegJobJobtype.FILE_TRANSFER_COLLECTION: StatJobtype.FILE_TRANSFER_COLLECTION,
    RegJobJobtype.FILE_TRANSFER: StatJobtype.FILE_TRANSFER,
    RegJobJobtype.VIRTUAL_MACHINE: StatJobtype.VIRTUAL_MACHINE,
}


def register(machine) -> None:
    """Make ``machine`` (an IJobStateMachine provider) serve its job types."""
    verifyObject(IJobStateMachine, machine)
    for jt in machine.job_types:
        _MACHINES[jt] = machine


def machine_for(jobtype) -> object:
    """The machine for a StatJobtype (``None`` means not yet registered: gLite)."""
    _load_builtin()
    if jobtype is None:
        return _MACHINES[StatJobtype.SIMPLE]
    return _MACHINES[jobtype]


def machines() -> dict:
    _load_builtin()
    return dict(_MACHINES)


_loaded = False


def _load_builtin() -> None:
    global _loaded
    if _loaded:
        return
    from lbtx.machines import condor, cream, file_transfer, glite, pbs, virtual_machine

    for module in (glite, pbs, condor, cream, file_transfer, virtual_machine):
        register(module.MACHINE)
    _loaded = True
