"""Reduced views of a job for callers with policy-only read access (formats.md §11.4).

* ``READ_ANONYMIZED`` (or the ``anonymized`` flag a caller asks for): the job as
  it is, with the owner's and the payload owner's subjects replaced by salted
  SHA-256 hashes, and in the job's events the sender (``DG.USER``) and the
  subjects of ChangeACL entries likewise;
* ``STATUS_FOR_MONITORING``: only the job id, state, job type, destination,
  network server, state times, UI host, and of the JDL its virtual organisation
  and job type; events lose their sender and ACL subjects.

The salt is the server's (one per database or configuration), so one subject
always hashes to the same value on one server and cannot be looked up elsewhere.
"""

from __future__ import annotations

import enum
import hashlib

from lbtx.cli.jdl import jdl_attribute
from lbtx.status import JobStatus

__all__ = ["Access", "Anonymizer", "MONITORING_FIELDS", "MONITORING_JDL"]


class Access(enum.Enum):
    """How a caller may read a job."""

    FULL = "full"
    ANONYMIZED = "anonymized"
    MONITORING = "monitoring"


#: the status fields a monitoring view keeps
MONITORING_FIELDS = ("job_id", "state", "jobtype", "destination", "network_server",
                     "state_enter_time", "last_update_time", "state_enter_times", "ui_host")
#: the JDL attributes a monitoring view keeps
MONITORING_JDL = ("VirtualOrganisation", "JobType", "Type")


def _jdl_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Anonymizer:
    """Applies an :class:`Access` to statuses and events, with the server's salt."""

    def __init__(self, salt: bytes):
        if not salt:
            raise ValueError("an anonymization salt must not be empty")
        self._salt = salt

    def hash(self, text: str | None) -> str | None:
        if text is None or text == "":
            return text
        return hashlib.sha256(self._salt + text.encode("utf-8", "surrogateescape")).hexdigest()

    def status(self, status: JobStatus, access: Access) -> JobStatus:
        """The status as ``access`` shows it (the same object for full access)."""
        if access is Access.FULL:
            return status
        if access is Access.ANONYMIZED:
            out = status.copy()
            out.owner = self.hash(status.owner)
            out.payload_owner = self.hash(status.payload_owner)
            return out
        out = JobStatus(**{name: getattr(status, name) for name in MONITORING_FIELDS
                           if name != "state_enter_times"})
        out.state_enter_times = list(status.state_enter_times or ())
        if status.jdl:
            kept = [(name, jdl_attribute(status.jdl, name)) for name in MONITORING_JDL]
            body = "; ".join(f"{n} = {_jdl_string(v)}" for n, v in kept if v is not None)
            out.jdl = f"[ {body}; ]" if body else "[ ]"
        return out

    def event(self, event, access: Access):
        """An event of the job as ``access`` shows it."""
        if access is Access.FULL:
            return event
        hide = (lambda _: None) if access is Access.MONITORING else self.hash
        changes = {"user": hide(event.user)}
        if event.type_name == "ChangeACL":
            changes["user_id"] = hide(event.user_id)
        return event.copy(**changes)
