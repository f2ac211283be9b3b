"""The plug-in interface of job state machines.

A state machine turns one job's events into its status record, one event at a
time, in arrival order (state-machines.md §1). It is pure: no I/O, no clock, no
access to other jobs. Parent/children effects (histograms, collection states,
embryonic subjobs) belong to :mod:`lbtx.acceptance`, which calls the machines.
"""

from __future__ import annotations

from typing import NamedTuple

from zope.interface import Attribute, Interface


class Transition(NamedTuple):
    """What applying one event produced: the new status and any events the
    server must log in consequence (none for the machines shipped so far)."""

    status: object
    generated: tuple = ()


class IJobStateMachine(Interface):
    """Computes a job's status from its events."""

    name = Attribute("Short name of the machine, e.g. 'glite', 'pbs'.")
    job_types = Attribute("The StatJobtype members this machine is chosen for.")

    def apply(status, event):
        """Apply C{event} to C{status} and return a L{Transition}.

        C{status} is not modified: the transition holds a new record. Events the
        machine does not understand (wrong type or source for the job type, missing
        attributes) leave the status as it was; they never raise.
        """
