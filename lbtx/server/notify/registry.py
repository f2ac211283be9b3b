"""The notification operations New, Bind, Change, Refresh, Drop (formats.md §9.2-9.3).

:class:`Registry` applies the rules of the operations on top of the store's
registration methods (:class:`~lbtx.server.store.interfaces.INotificationStore`)
for a caller (:class:`lbtx.server.authz.Caller`); both front ends (the JSON API
and the legacy ``/notifRequest``) call it, so they answer alike. Failures are
:class:`~lbtx.protocols.legacy_query.errors.LBError` with the numbers of §9.3:

* an anonymous caller -> ``EPERM``; an unknown id -> ``ENOENT``; a caller who is
  not the owner -> ``EPERM`` (a super-user may drop and read any registration);
* Bind, Change and Refresh of an expired registration delete it and fail with
  ``EINVAL`` "Notification expired.";
* a malformed destination, conditions that cannot be split into a job list and
  the rest -> ``EINVAL``.

Validity (§9.2): a requested expiry that is absent or ``<= 0`` becomes now + the
default duration (2 h); any expiry is capped at now + the maximum (1 day).

``jobid`` conditions become the registration's job list: every disjunction made
only of ``jobid = X`` conditions adds its ids to the list (the job must be one of
them); the other disjunctions stay as conditions. A disjunction mixing ``jobid``
with other attributes, or a ``jobid`` with another operator, is ``EINVAL``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlsplit

from twisted.internet.defer import inlineCallbacks
from twisted.logger import Logger

from lbtx import subject
from lbtx.protocols.legacy_query.errors import ErrorCode, LBError
from lbtx.query.conditions import Attr, Condition, Op, QueryError, check_job_query
from lbtx.server.authz import ReadPolicy, caller_of
from lbtx.server.notify.model import Flags, Registration, notif_unique
from lbtx.server.store.interfaces import DuplicateRegistration, UnknownRegistration

__all__ = ["Registry", "Validity", "split_conditions", "check_destination", "EXPIRED",
           "HOUR", "DAY", "MAX_DESTINATION"]

HOUR = 3600
DAY = 24 * HOUR
EXPIRED = "Notification expired."
MAX_DESTINATION = 1024  # characters of a destination
_FLAG_MASK = Flags.CLASSADS | Flags.ANONYMIZE | Flags.TERMINAL_STATES | Flags.HISTORY \
    | Flags.BOOTSTRAP


@dataclass(frozen=True)
class Validity:
    """Default and maximum validity of registrations, in seconds (§9.2)."""

    default: int = 2 * HOUR
    maximum: int = DAY

    def __post_init__(self):
        if not 0 < self.default <= self.maximum:
            raise ValueError(f"validity default {self.default} s must be positive and at "
                             f"most the maximum {self.maximum} s")

    def grant(self, requested: int | None, now: int) -> int:
        """The absolute expiry granted for ``requested`` (absolute; None/<=0: default)."""
        if requested is None or requested <= 0:
            requested = now + self.default
        return int(min(requested, now + self.maximum))


def check_destination(destination: str | None) -> str | None:
    """``destination`` if it is acceptable (None: pull), else ``EINVAL``.

    Accepted: ``http://`` and ``https://`` URLs with a host (delivered by lbtx) and
    legacy ``host:port`` (stored, never delivered; docs/notifications.md)."""
    if destination is None:
        return None
    if not isinstance(destination, str) or not destination or len(destination) > MAX_DESTINATION:
        raise LBError(ErrorCode.EINVAL, "the destination is a URL of at most "
                                        f"{MAX_DESTINATION} characters")
    if any(ord(ch) < 33 or ord(ch) == 127 for ch in destination):
        raise LBError(ErrorCode.EINVAL, "the destination may not hold spaces or controls")
    if "//" in destination:
        try:
            parts = urlsplit(destination)
            parts.port  # noqa: B018 - raises for a bad port
        except ValueError:
            raise LBError(ErrorCode.EINVAL, f"bad destination URL {destination[:80]!r}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise LBError(ErrorCode.EINVAL, "destination URLs are http:// or https:// with a "
                                            f"host, not {destination[:80]!r}")
        return destination
    host, sep, port = destination.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LBError(ErrorCode.EINVAL, f"the destination is a URL or host:port, not "
                                        f"{destination[:80]!r}")
    return destination


def split_conditions(conditions, caller) -> tuple[tuple, tuple[str, ...]]:
    """``(conditions without jobid, job ids)`` of a job query (see the module doc);
    ``owner`` NULL becomes the caller. ``EINVAL`` for what cannot be split."""
    rest, job_ids = [], []
    for ors in conditions or ():
        ors = tuple(ors)
        jobids = [c for c in ors if c.attr == Attr.JOBID]
        if jobids and len(jobids) != len(ors):
            raise LBError(ErrorCode.EINVAL, "a jobid condition cannot be OR-ed with others")
        if jobids:
            for c in jobids:
                if c.op != Op.EQUAL or c.value is None:
                    raise LBError(ErrorCode.EINVAL, "jobid conditions use equal")
                text = str(c.value)
                if text not in job_ids:
                    job_ids.append(text)
            continue
        row = []
        for c in ors:
            if c.attr == Attr.OWNER and c.value is None:
                c = Condition(c.attr, c.op, str(caller), c.value2, c.name)
            row.append(c)
        rest.append(tuple(row))
    if rest:
        try:
            checked = check_job_query(tuple(rest))
        except QueryError as e:
            raise LBError(ErrorCode.EINVAL, e.reason) from None
    else:
        checked = ()
    return tuple(checked), tuple(job_ids)


class Registry:
    """The operations on registrations for callers, over a notification store.

    :param store: provides ``INotificationStore`` (every method a Deferred).
    :param policy: the server's :class:`ReadPolicy` (super-users).
    :param clock: ``IReactorTime``: "now" of the validity rules.
    :param on_change: called with the notification id after New, Bind and Refresh
        (the delivery service wakes up for it); its failures are logged only.
    """

    log = Logger()

    def __init__(self, store, *, policy: ReadPolicy, clock, validity: Validity = Validity(),
                 on_change: Callable[[str], None] | None = None):
        self.store = store
        self.policy = policy
        self.clock = clock
        self.validity = validity
        self.on_change = on_change

    @inlineCallbacks
    def _update(self, notif_id: str, **changes):
        try:
            reg = yield self.store.update_registration(notif_id, **changes)
        except UnknownRegistration:
            raise LBError(ErrorCode.ENOENT, "no such notification") from None
        return reg

    def _now(self) -> int:
        return int(self.clock.seconds())

    def _changed(self, notif_id: str) -> None:
        if self.on_change is None:
            return
        try:
            self.on_change(notif_id)
        except Exception:
            self.log.failure("waking delivery for {notif} failed", notif=notif_id)

    @staticmethod
    def _caller(caller):
        caller = caller_of(caller)
        if caller is None:
            raise LBError(ErrorCode.EPERM, "notifications need an authenticated caller")
        return caller

    @staticmethod
    def _id(notif_id) -> str:
        text = str(notif_id) if notif_id is not None else ""
        try:
            notif_unique(text)
        except ValueError as e:
            raise LBError(ErrorCode.EINVAL, str(e)[:200]) from None
        return text

    @inlineCallbacks
    def _owned(self, caller, notif_id: str, *, superuser_ok: bool = False,
               expired_fails: bool = True):
        """The registration ``notif_id`` if ``caller`` may operate on it."""
        reg = yield self.store.registration(notif_id)
        if reg is None:
            raise LBError(ErrorCode.ENOENT, "no such notification")
        if not subject.same(reg.owner, caller) and not (
                superuser_ok and self.policy.is_superuser(caller)):
            raise LBError(ErrorCode.EPERM, "not the owner of the notification")
        if expired_fails and reg.expires <= self._now():
            yield self.store.drop_registration(notif_id)
            raise LBError(ErrorCode.EINVAL, EXPIRED)
        return reg

    @inlineCallbacks
    def new(self, caller, notif_id, *, destination: str | None, conditions=(),
            flags: int = 0, expires: int | None = None):
        """New (§9.3): fire with the stored :class:`Registration` (``EEXIST`` if the
        id is taken)."""
        caller = self._caller(caller)
        notif_id = self._id(notif_id)
        rest, job_ids = split_conditions(conditions, caller)
        flags = Flags(int(flags) & _FLAG_MASK)
        if flags & Flags.HISTORY:
            flags |= Flags.TERMINAL_STATES  # cli.md §3.9: -H implies 64
        reg = Registration(notif_id=notif_id, owner=str(caller),
                           destination=check_destination(destination),
                           expires=self.validity.grant(expires, self._now()),
                           conditions=rest, job_ids=job_ids, flags=flags)
        try:
            stored = yield self.store.register(reg)
        except DuplicateRegistration:
            raise LBError(ErrorCode.EEXIST, "the notification id exists") from None
        except (ValueError, QueryError) as e:
            raise LBError(ErrorCode.EINVAL, str(e)[:200]) from None
        stored = stored if isinstance(stored, Registration) else reg
        if flags & Flags.BOOTSTRAP and hasattr(self.store, "queue_bootstrap"):
            yield self.store.queue_bootstrap(notif_id, None)
        self.log.info("notification {notif} registered by {owner} until {expires}",
                      notif=notif_id, owner=stored.owner, expires=stored.expires)
        self._changed(notif_id)
        return stored

    @inlineCallbacks
    def bind(self, caller, notif_id, *, destination: str | None, expires: int | None = None):
        """Bind (§9.3): a new destination (None: pull) and validity; the queue follows."""
        caller = self._caller(caller)
        notif_id = self._id(notif_id)
        destination = check_destination(destination)
        yield self._owned(caller, notif_id)
        reg = yield self._update(
            notif_id, destination=destination,
            expires=self.validity.grant(expires, self._now()))
        self._changed(notif_id)
        return reg

    @inlineCallbacks
    def change(self, caller, notif_id, *, conditions, replace_conditions: bool = True):
        """Change (§9.3): with ``replace_conditions`` (EDG_WLL_NOTIF_REPLACE) the
        conditions are replaced, and the job list too when the new conditions name
        jobs (**quirk**: otherwise the old job list stays); else nothing changes."""
        caller = self._caller(caller)
        notif_id = self._id(notif_id)
        reg = yield self._owned(caller, notif_id)
        if not replace_conditions:
            return reg
        rest, job_ids = split_conditions(conditions, caller)
        changes = {"conditions": rest}
        if job_ids:
            changes["job_ids"] = job_ids
        reg = yield self._update(notif_id, **changes)
        return reg

    @inlineCallbacks
    def refresh(self, caller, notif_id, *, expires: int | None = None):
        """Refresh (§9.3): a new expiry by the rules of §9.2."""
        caller = self._caller(caller)
        notif_id = self._id(notif_id)
        yield self._owned(caller, notif_id)
        reg = yield self._update(
            notif_id, expires=self.validity.grant(expires, self._now()))
        self._changed(notif_id)
        return reg

    @inlineCallbacks
    def drop(self, caller, notif_id):
        """Drop (§9.3): by the owner or a super-user, also when expired."""
        caller = self._caller(caller)
        notif_id = self._id(notif_id)
        yield self._owned(caller, notif_id, superuser_ok=True, expired_fails=False)
        yield self.store.drop_registration(notif_id)
        self.log.info("notification {notif} dropped by {caller}", notif=notif_id,
                      caller=str(caller))
        return None

    @inlineCallbacks
    def get(self, caller, notif_id):
        """The registration, for its owner or a super-user (``EINVAL`` if expired)."""
        caller = self._caller(caller)
        notif_id = self._id(notif_id)
        reg = yield self._owned(caller, notif_id, superuser_ok=True)
        return reg
