"""Job state machines: pure plug-ins behind :class:`IJobStateMachine`.

``machine_for(jobtype)`` picks the machine; each module (``glite``, ``pbs``,
``condor``, ``cream``, ``file_transfer``, ``virtual_machine``) provides one as
``MACHINE``.
"""

from lbtx.machines.interfaces import IJobStateMachine, Transition
from lbtx.machines.registry import machine_for, register

__all__ = ["IJobStateMachine", "Transition", "machine_for", "register"]
