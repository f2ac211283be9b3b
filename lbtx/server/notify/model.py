"""The records of notifications: :class:`Registration`, :class:`Message`, :class:`Flags`.

A registration (formats.md §9.1) is identified by its full notification id
(``https://host:port/NOTIF:<unique>``, §1.4); stores key it by the unique part
(:func:`notif_unique`). Its destination is an HTTP(S) callback URL or ``None`` for
pull receiving; a legacy ``host:port`` destination may be stored but lbtx does not
deliver to it. A message is one queued notification of the durable outbox: its
``seq`` counts 1, 2, 3... per registration, so a receiver can drop duplicates.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Flags", "Registration", "Message", "notif_unique", "NOTIF_PREFIX", "UNSET"]

NOTIF_PREFIX = "NOTIF:"
#: the longest unique part accepted (generated ones have 22 characters)
MAX_UNIQUE = 256


class _Unset:
    """The value of an argument that was not given (None is a value: pull receiving)."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


class Flags(enum.IntFlag):
    """Registration flags, numeric values as in cli.md §3.9 / formats.md §7.5."""

    NONE = 0
    CLASSADS = 1
    ANONYMIZE = 32
    TERMINAL_STATES = 64
    HISTORY = 128
    BOOTSTRAP = 256


def notif_unique(notif_id: str) -> str:
    """The database key of a notification id: the text after ``NOTIF:`` of its path
    (formats.md §1.4). ``ValueError`` if ``notif_id`` is not a notification id."""
    if not isinstance(notif_id, str):
        raise ValueError("a notification id must be a string")
    scheme, sep, rest = notif_id.partition("://")
    if not sep or scheme not in ("https", "http"):
        raise ValueError(f"not a notification id (no https:// URL): {notif_id[:300]!r}")
    _, slash, path = rest.partition("/")
    if not slash or not path.startswith(NOTIF_PREFIX):
        raise ValueError(f"not a notification id (no /{NOTIF_PREFIX} path): {notif_id[:300]!r}")
    unique = path[len(NOTIF_PREFIX):]
    if not unique or len(unique) > MAX_UNIQUE or "/" in unique \
            or not all("!" <= ch <= "~" for ch in unique):
        raise ValueError(f"not a notification id (bad unique part): {notif_id[:300]!r}")
    return unique


@dataclass(frozen=True)
class Registration:
    """One notification registration (formats.md §9.1).

    ``conditions`` is a job query (``lbtx.query.conditions.JobQuery``: a tuple of
    OR-groups of ``Condition``) without jobid conditions; ``()`` matches every new
    state. ``job_ids`` are the jobid conditions as full job id strings; ``()``
    means all jobs. ``last_seq`` is the number of messages ever queued for it."""

    notif_id: str
    owner: str
    destination: str | None
    expires: int
    conditions: tuple
    job_ids: tuple[str, ...]
    flags: Flags
    last_seq: int = 0

    @property
    def unique(self) -> str:
        return notif_unique(self.notif_id)


@dataclass(frozen=True)
class Message:
    """One queued notification.

    ``document`` is JSON-able: ``{"notification", "seq", "jobid", "status" (as the
    JSON API renders it), "changed" (names of the status fields that differ from the
    previous status), "event" (the triggering event as the JSON API renders events),
    "history" (the job's events, only with Flags.HISTORY)}``."""

    notif_id: str
    seq: int
    job_id: str
    created: float
    document: dict
