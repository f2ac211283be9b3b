"""Who may read a job, and how (formats.md §11.4).

A caller may read a job when, checked in this order:

1. authorization checks are off (``--noauth``) or the caller is a super-user
   (``--superuser DN``, ``--superuser FQAN:<fqan>``, or ``ADMIN_ACCESS`` in the
   policy file);
2. the caller is the job's owner (subjects compared per §0.2);
3. the caller is the job's payload owner;
4. the job's ACL grants ``READ`` to the caller's DN, VOMS group or FQAN, and no
   entry that matches the caller denies it;
5. the policy file grants ``READ_ALL``;
6. the policy grants ``READ_ANONYMIZED``: read with subjects hashed;
7. the policy grants ``STATUS_FOR_MONITORING``: read a reduced status.

:meth:`ReadPolicy.access` answers with the :class:`~lbtx.server.anonymize.Access`
(None: no access); :meth:`ReadPolicy.may_read` whether there is any. Anonymous
callers (None) read nothing unless checks are off. The caller is a
:class:`Caller`, or any ``str`` (a subject DN, ``unix:NAME``, a configured
identity) taken as a caller without VOMS attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from lbtx import subject
from lbtx.server.anonymize import Access
from lbtx.server.policy import Action, ServerPolicy

__all__ = ["Caller", "ReadPolicy", "caller_of", "acl_allows_read", "fqan_group"]

_FQAN_PREFIX = "FQAN:"
_NULL_PARTS = ("/Role=NULL", "/Capability=NULL")


class Caller(str):
    """The text of a caller's identity, with the VOMS FQANs it carries.

    A ``str`` (so the legacy query service can put it into an ``owner`` condition)
    whose value is the subject DN, ``unix:NAME`` or Kerberos principal; ``fqans``
    holds the VOMS attributes of the peer's proxy, in their order.
    """

    fqans: tuple[str, ...]

    def __new__(cls, name: str, fqans: Iterable[str] = ()) -> "Caller":
        self = super().__new__(cls, name)
        self.fqans = tuple(fqans)
        return self

    @classmethod
    def from_identity(cls, identity) -> "Caller | None":
        """The caller for an :class:`lbtx.gss.identity.Identity` (None: anonymous)."""
        if identity is None or identity.is_anonymous:
            return None
        return cls(identity.display, identity.fqans)

    def __repr__(self) -> str:
        return f"Caller({str(self)!r}, fqans={self.fqans!r})"


def caller_of(identity) -> Caller | None:
    """A :class:`Caller` from a ``str``, a :class:`Caller`, an ``Identity`` or None."""
    if identity is None or isinstance(identity, Caller):
        return identity
    if isinstance(identity, str):
        return Caller(identity)
    return Caller.from_identity(identity)


def _fqan_key(fqan: str) -> str:
    """An FQAN without the ``/Role=NULL`` and ``/Capability=NULL`` parts that mean nothing."""
    out = fqan.strip()
    for part in _NULL_PARTS:
        out = out.replace(part, "")
    return out.rstrip("/")


def fqan_group(fqan: str) -> tuple[str, str]:
    """``(vo, group path)`` of an FQAN: ``/atlas/prod/Role=x`` -> ``("atlas", "/atlas/prod")``."""
    parts = [p for p in fqan.strip().split("/") if p]
    groups = []
    for p in parts:
        if p.startswith(("Role=", "Capability=")):
            break
        groups.append(p)
    vo = groups[0] if groups else ""
    return vo, "/" + "/".join(groups)


def _group_matches(entry: str, fqans: Sequence[str]) -> bool:
    """A ``vo:group`` ACL entry against the caller's FQANs.

    The group may be a full path (``atlas:/atlas/prod``) or relative to the VO
    (``atlas:prod``); ``atlas:atlas`` or ``atlas:/atlas`` is the whole VO.
    """
    vo, sep, group = entry.partition(":")
    if not sep or not vo:
        return False
    group = group.strip()
    if group in ("", vo, "/" + vo):
        want = "/" + vo
    elif group.startswith("/"):
        want = group.rstrip("/")
    else:
        want = f"/{vo}/{group.strip('/')}"
    return any(fqan_group(f) == (vo, want) for f in fqans)


def _entry_matches(entry: Sequence[str], caller: Caller) -> bool:
    user_id, id_type = entry[0], entry[1]
    if id_type == "DN":
        return subject.same(user_id, caller)
    if id_type == "FQAN":
        return _fqan_key(user_id) in {_fqan_key(f) for f in caller.fqans}
    if id_type == "GROUP":
        return _group_matches(user_id, caller.fqans)
    return False


def acl_allows_read(acl: Iterable[Sequence[str]], caller: Caller) -> bool:
    """Whether the ACL (``[user_id, user_id_type, permission, permission_type]``
    entries) grants ``READ`` to the caller and no matching entry denies it."""
    allowed = False
    for entry in acl:
        if len(entry) < 4 or entry[2] != "READ" or not _entry_matches(entry, caller):
            continue
        if entry[3] == "DENY":
            return False
        if entry[3] == "ALLOW":
            allowed = True
    return allowed


@dataclass(frozen=True)
class ReadPolicy:
    """The server's read rules: ``superusers`` (DNs or ``FQAN:<fqan>``), ``noauth``
    and the server ``policy`` file (None: none)."""

    superusers: tuple[str, ...] = ()
    noauth: bool = False
    policy: ServerPolicy | None = None

    def __post_init__(self):
        object.__setattr__(self, "superusers", tuple(self.superusers))

    def allows(self, action: Action, caller) -> bool:
        """Whether the policy file grants ``action`` to ``caller``."""
        return self.policy is not None and self.policy.allows(action, caller_of(caller))

    def is_superuser(self, caller) -> bool:
        """Whether the caller holds ``ADMIN_ACCESS``: a ``--superuser`` rule or the
        policy file."""
        caller = caller_of(caller)
        if caller is None:
            return False
        fqans = {_fqan_key(f) for f in caller.fqans}
        for su in self.superusers:
            if su.startswith(_FQAN_PREFIX):
                if _fqan_key(su[len(_FQAN_PREFIX):]) in fqans:
                    return True
            elif subject.same(su, caller):
                return True
        return self.allows(Action.ADMIN_ACCESS, caller)

    def unrestricted(self, caller) -> bool:
        """Whether the caller may read every job in full (steps 1 and 5)."""
        return self.noauth or self.is_superuser(caller) or self.allows(Action.READ_ALL, caller)

    def access(self, caller, record) -> Access | None:
        """How ``caller`` may read the job of ``record`` (a
        :class:`lbtx.acceptance.JobRecord`: owner, status, ACL); None: not at all."""
        if self.noauth:
            return Access.FULL
        caller = caller_of(caller)
        if caller is None:
            return None
        if self.is_superuser(caller):
            return Access.FULL
        if subject.same(record.owner, caller):
            return Access.FULL
        payload_owner = getattr(record.status, "payload_owner", None)
        if payload_owner and subject.same(payload_owner, caller):
            return Access.FULL
        if acl_allows_read(record.acl or (), caller):
            return Access.FULL
        if self.allows(Action.READ_ALL, caller):
            return Access.FULL
        if self.allows(Action.READ_ANONYMIZED, caller):
            return Access.ANONYMIZED
        if self.allows(Action.STATUS_FOR_MONITORING, caller):
            return Access.MONITORING
        return None

    def may_read(self, caller, record) -> bool:
        """Whether ``caller`` may read the job of ``record`` at all."""
        return self.access(caller, record) is not None
