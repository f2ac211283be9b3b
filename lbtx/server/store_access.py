"""Who may store which events (formats.md §11.5, connection level).

Without a policy file any authenticated store peer may store (the record-level
rules of :func:`lbtx.acceptance.logging_refusal` still apply). With one, the peer
of the store connection — an interlogger's host identity, a proxy, a component
logging directly — needs, per event:

==========================================  =====================
``RegJob``                                   ``REGISTER_JOBS``
``GrantPayloadOwnership``                    ``GRANT_OWNERSHIP``
``CurDescr``, ``UserTag``, ``ChangeACL``     ``LOG_GENERAL_EVENTS``
``Running``, ``ReallyRunning``, ``Done``     ``LOG_CE_EVENTS``
any other event                              ``LOG_WMS_EVENTS``
==========================================  =====================

and a registration on behalf of somebody else (its ``DG.USER`` is not the peer)
also needs ``REGISTER_FOREIGN``, which the original asks of asynchronous
registrations. Super-users (``ADMIN_ACCESS``) and ``--noauth`` skip the checks.
"""

from __future__ import annotations

from lbtx import subject
from lbtx.server.authz import ReadPolicy, caller_of
from lbtx.server.policy import Action

__all__ = ["required_actions", "store_refusal"]

_GENERAL = frozenset({"CurDescr", "UserTag", "ChangeACL"})
_CE = frozenset({"Running", "ReallyRunning", "Done"})


def required_actions(event, peer) -> tuple[Action, ...]:
    """The actions a store peer needs to store ``event``."""
    name = event.type_name
    if name == "RegJob":
        if peer is None or not subject.same(event.user, str(peer)):
            return (Action.REGISTER_JOBS, Action.REGISTER_FOREIGN)
        return (Action.REGISTER_JOBS,)
    if name == "GrantPayloadOwnership":
        return (Action.GRANT_OWNERSHIP,)
    if name in _GENERAL:
        return (Action.LOG_GENERAL_EVENTS,)
    if name in _CE:
        return (Action.LOG_CE_EVENTS,)
    return (Action.LOG_WMS_EVENTS,)


def store_refusal(policy: ReadPolicy, peer, event) -> str:
    """Why ``peer`` may not store ``event`` ("" when it may)."""
    if policy.policy is None or policy.noauth:
        return ""
    caller = caller_of(peer)
    if caller is None:
        return "Not allowed to log events here: the store peer is anonymous"
    if policy.is_superuser(caller):
        return ""
    missing = [a.value for a in required_actions(event, caller) if not policy.allows(a, caller)]
    if missing:
        return f"Not allowed to log events here ({event.type_name} needs {', '.join(missing)})"
    return ""
