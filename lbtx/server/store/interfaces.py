"""What every job store provides: :class:`IJobStore`, its errors and its records.

A job store keeps, durably, every event the server accepted (the raw ULM line
verbatim, with indexed header fields), and for every job its owner, parent,
status (including the state machines' private bookkeeping), ACL, user tags and
subjob links. Intake feeds it batches of validated events; it applies them with
:func:`lbtx.acceptance.accept` under a per-job write lock and commits before it
answers. Queries read jobs back by id, by owner, by parent or by conditions.

Implementations: :mod:`lbtx.server.store.sqlite` (embedded, the default) and
:mod:`lbtx.server.store.postgres` (shared by any number of server processes).
"""

from __future__ import annotations

from typing import NamedTuple

from zope.interface import Attribute, Interface

from lbtx.events import Event
from lbtx.jobid import JobId
from lbtx.timeval import Timeval

__all__ = ["IJobStore", "INotificationStore", "StoreError", "UnknownJobError",
           "StoreUnavailableError", "StoredEvent", "DuplicateRegistration",
           "UnknownRegistration"]


class StoreError(Exception):
    """Base class of the errors a store reports through its Deferreds."""


class UnknownJobError(StoreError, KeyError):
    """The store has no job with this id (ENOENT "no such job" in the original)."""

    def __init__(self, job_id: JobId):
        self.job_id = job_id
        super().__init__(f"no such job: {job_id}")

    def __str__(self) -> str:
        return self.args[0]


class StoreUnavailableError(StoreError):
    """The database cannot be reached now (it is restarting, or the connection was
    lost). Nothing of the failed request is committed unless it was a commit whose
    answer was lost; the store reconnects by itself and the caller may retry (a
    retried event that was committed after all is recognised as a duplicate)."""


class DuplicateRegistration(StoreError):
    """A notification registration with this id exists already."""


class UnknownRegistration(StoreError, KeyError):
    """The store has no notification registration with this id."""

    def __init__(self, notif_id: str):
        self.notif_id = notif_id
        super().__init__(f"no such notification: {notif_id}")

    def __str__(self) -> str:
        return self.args[0]


class StoredEvent(NamedTuple):
    """One stored event: when it arrived, the event, and its ULM line as received."""

    arrived: Timeval
    event: Event
    line: str


class IJobStore(Interface):
    """The durable store of events and job records behind intake and queries.

    Every method returns a Deferred (fired on the reactor thread). Database errors
    that are not described below fail the Deferred with the driver's exception.
    """

    lock_slots = Attribute("Number of per-job write locks jobs are hashed onto (1 for a "
                           "single-writer store).")
    indexed_attributes = Attribute(
        "The single-column indices of formats.md §8.4, as a tuple of (Attr, name or None): "
        "a job query must name one of them (or jobid/parent_job) as the first condition of "
        "a disjunction, which the front ends check (EDG_WLL_ERROR_NOINDEX).")

    def start():
        """Connect, and create the schema or upgrade it to the current version.

        Fires with None when the store is ready; fails with
        :class:`lbtx.server.store.schema.SchemaError` (a :class:`StoreError`) when the
        database holds a schema newer than this code knows, with
        :class:`StoreUnavailableError` when PostgreSQL cannot be reached, or with
        the driver's error when an SQLite file cannot be opened.
        """

    def stop():
        """Finish the work in progress, then close the connections.

        Fires with None; calls made after it fail with :class:`StoreUnavailableError`.
        """

    def accept_events(events, lines=None):
        """Apply a batch of validated events (each with ``job_id`` and ``user``).

        ``lines``, if given, holds the ULM record each event was parsed from; it is
        stored verbatim (a trailing line feed is dropped). Without it the record is
        formatted from the event. An event's arrival time is its ``arrived`` field
        when set (loading a dump), else the store's clock.

        Events are applied in order with :func:`lbtx.acceptance.accept` under the
        write locks of their jobs and of those jobs' parents; events of one job are
        applied in one transaction. Events the server generates (CollectionState)
        take the timestamp of the event that caused them, as ``lbtx replay`` does,
        so statuses depend on the events only. Fires with one :class:`lbtx.acceptance.Outcome`
        per event, in order, once every stored event of the batch is committed; an
        event that was answered ``stored`` or ``duplicate`` is durable. Fails with
        :class:`StoreUnavailableError` when the database is unreachable, with
        ``ValueError`` for an event whose job id holds undecodable bytes (intake
        refuses those as invalid), or with the exception a state machine raised;
        then nothing of the batch is committed.
        """

    def job_status(job_id):
        """Fire with the :class:`lbtx.acceptance.JobRecord` of the job (owner, status
        with its internal bookkeeping, ACL, children, number of events); fail with
        :class:`UnknownJobError` when the job is not known."""

    def job_events(job_id):
        """Fire with the job's events in arrival order, as a list of
        :class:`StoredEvent` ``(arrived, event, line)``, server-generated events
        included; fail with :class:`UnknownJobError` when the job is not known."""

    def query_jobs(query, *, limit):
        """Fire with the records of at most ``limit`` (None: all) jobs matching ``query`` (a
        :data:`lbtx.query.conditions.JobQuery`: a conjunction of disjunctions),
        ordered by unique id. Indexed attributes are evaluated by the database; the
        other conditions with :func:`lbtx.query.conditions.job_matches`. Fails with
        :class:`lbtx.query.conditions.QueryError` for a condition that cannot be
        evaluated (an unresolved ``owner`` NULL). Access checks are the caller's."""

    def user_jobs(owner, *, limit=None):
        """Fire with the records of the jobs owned by the subject ``owner``
        (compared as :func:`lbtx.subject.same` does), ordered by unique id, at most
        ``limit`` of them when given; an empty list when there are none."""

    def user_job_ids(owner, *, limit=None):
        """Fire with the :class:`lbtx.jobid.JobId` of the jobs :meth:`user_jobs`
        gives, in the same order, without reading their records (for answers that
        list ids only); an empty list when there are none."""

    def children(parent_id):
        """Fire with the records of the jobs whose parent is ``parent_id``, in the
        order they were linked to it (subjobs in index order); fail with
        :class:`UnknownJobError` when the parent is not known."""

    def last_seqcode(job_id):
        """Fire with the sequence code the job's state machine continues from
        (the legacy querySequenceCode answer), or None when it has none yet; fail
        with :class:`UnknownJobError` when the job is not known."""


class INotificationStore(Interface):
    """Notification registrations and their durable outbox (formats.md §9, issue 5),
    kept by the job store beside the jobs.

    Every status change :meth:`IJobStore.accept_events` commits is matched, in the
    same transaction, against the registrations that are candidates by index (the
    job list, or all-jobs registrations with the job owner's ``owner`` condition or
    none), and a :class:`lbtx.server.notify.model.Message` with the registration's
    next ``seq`` is queued for every match (:mod:`lbtx.server.notify.matching`).
    Every method returns a Deferred. Ids are full notification ids; the store keys
    them by their unique part.
    """

    read_policy = Attribute(
        "The lbtx.server.authz.ReadPolicy matching checks a registration owner's read "
        "access with (set by the server; default: owner and ACL only).")

    def register(reg):
        """Store a new :class:`~lbtx.server.notify.model.Registration`; fire with it as
        stored (``owner`` NULL conditions resolved to the owner, ``last_seq`` 0). Fails
        with :class:`DuplicateRegistration` when the id exists, ``ValueError`` or
        :class:`lbtx.query.conditions.QueryError` for a malformed id, job id or
        condition (jobid conditions belong in ``job_ids``)."""

    def registration(notif_id):
        """Fire with the :class:`Registration` of ``notif_id``, or None."""

    def update_registration(notif_id, *, destination=None, expires=None, conditions=None,
                            job_ids=None):
        """Change the given fields (those left at ``lbtx.server.notify.model.UNSET``
        keep their value); queued messages stay and follow a new destination. Fire
        with the updated :class:`Registration`; fail with :class:`UnknownRegistration`."""

    def drop_registration(notif_id):
        """Delete the registration and its queued messages; fire with whether it existed."""

    def messages(notif_id, *, after_seq, limit):
        """Fire with at most ``limit`` queued :class:`Message` of ``notif_id`` with
        ``seq > after_seq``, ordered by seq (an empty list for an unknown id)."""

    def acknowledge(notif_id, up_to_seq):
        """Delete the messages with ``seq <= up_to_seq`` (delivered); fire with how many
        were deleted. Fails with :class:`UnknownRegistration`."""

    def registrations(owner=None, *, limit=None):
        """Fire with the :class:`Registration` records of ``owner`` (subjects compared
        as :func:`lbtx.subject.same` does; None: everybody's), ordered by unique part,
        at most ``limit`` when given."""

    def queue_bootstrap(notif_id, caller_may_read=None):
        """Queue (``Flags.BOOTSTRAP``) the current state of every job matching the
        registration (conditions and job list) that ``caller_may_read(owner, record)``
        allows (True/False or an ``Access``; None: :attr:`read_policy`), at most ``notify_sql.BOOTSTRAP_LIMIT``
        jobs, by unique id; each message has ``"event": None`` and every field in
        ``changed``. Fire with how many were queued (0 for an expired registration);
        fail with :class:`UnknownRegistration`."""

    def pending_registrations(now, limit):
        """Fire with at most ``limit`` ``(notif_id, destination, expires,
        first_pending_seq)`` of unexpired registrations that have queued messages,
        ordered by unique part (an indexed scan)."""

    def purge_expired(now):
        """Delete the registrations with ``expires <= now`` and their messages; fire
        with how many registrations were deleted."""
