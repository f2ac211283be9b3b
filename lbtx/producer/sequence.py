"""Sequence codes as a producer keeps them (formats.md §3.2).

A :class:`Sequence` holds the code of one job for one component: it installs
the code received from the previous component (an argument, else
``EDG_WLL_SEQUENCE`` / ``EDG_WL_SEQUENCE`` from the environment, else the
all-zero code of a new registration) and increments **its own** counter once;
after every logged event, successful or not, it increments it again. A
component never touches the counters of others; a source without a counter of
its own (CREAM, VM ...) passes the code on unchanged.
"""

from __future__ import annotations

import os
from typing import Mapping

from lbtx import seqcode
from lbtx.schema import Source

__all__ = ["SEQUENCE_VARIABLES", "Sequence", "counter_of", "initial_code"]

#: Environment variables a component reads its initial code from, in order.
SEQUENCE_VARIABLES = ("EDG_WLL_SEQUENCE", "EDG_WL_SEQUENCE")

_COUNTERS = {
    Source.USER_INTERFACE: "UI", Source.NETWORK_SERVER: "NS", Source.WORKLOAD_MANAGER: "WM",
    Source.BIG_HELPER: "BH", Source.JOB_SUBMISSION: "JSS", Source.LOG_MONITOR: "LM",
    Source.LRMS: "LRMS", Source.APPLICATION: "APP", Source.LB_SERVER: "LBS",
    Source.PBS_CLIENT: "CLIENT", Source.PBS_SERVER: "SERVER", Source.PBS_SCHEDULER: "SCHED",
    Source.PBS_SMOM: "SMOM", Source.PBS_MOM: "MOM",
}


def counter_of(source: Source, code) -> str | None:
    """The counter ``source`` owns in a code of ``code``'s flavour, or None."""
    slot = _COUNTERS.get(source)
    if slot is None:
        return None
    slots = seqcode.GLITE_SLOTS if isinstance(code, seqcode.GliteSeqCode) else (
        seqcode.PBS_SLOTS if isinstance(code, seqcode.PBSSeqCode) else ())
    return slot if slot in slots else None


def initial_code(code: str | None = None, environ: Mapping[str, str] | None = None,
                 source: Source | None = None) -> str:
    """The code to install: ``code``, else the environment's, else all zeros
    (the PBS flavour for PBS sources)."""
    if code:
        return code
    environ = os.environ if environ is None else environ
    for name in SEQUENCE_VARIABLES:
        if environ.get(name):
            return environ[name]
    pbs = source is not None and _COUNTERS.get(source) in seqcode.PBS_SLOTS
    return str(seqcode.ZERO_PBS if pbs else seqcode.ZERO_GLITE)


class Sequence:
    """The sequence code of one job as ``source`` logs it.

    :param code: the code received from the previous component (see
        :func:`initial_code`); raises :class:`lbtx.seqcode.SeqCodeError` if it does
        not parse. Installing it increments this component's counter once, unless
        ``increment`` is false.
    """

    def __init__(self, source: Source, code: str | None = None, *,
                 environ: Mapping[str, str] | None = None, increment: bool = True):
        self.source = source
        text = initial_code(code, environ, source)
        self._code = seqcode.parse(text)
        self._text = text
        if increment:   # False: the first event carries the received code as it is
            self.advance()

    @property
    def current(self) -> str:
        """The code the next event carries."""
        return self._text

    def advance(self) -> str:
        """Increment this component's counter; return the new code."""
        slot = counter_of(self.source, self._code)
        if slot is not None:
            self._code = self._code.increment(slot)
            self._text = str(self._code)
        return self._text

    def snapshot(self) -> tuple:
        """The state to :meth:`restore` (taking back advances not used)."""
        return self._code, self._text

    def restore(self, state: tuple) -> None:
        self._code, self._text = state
