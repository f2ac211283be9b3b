"""Command-line options of ``twistd lb-server`` (the documented interface).

Every listener is an endpoint description, so that secure transports slot in as
endpoint plug-ins without touching the services. Defaults follow the original:
queries and web pages on 9000, event intake ("store") on 9001.
"""

from __future__ import annotations

import os

from twisted.python import usage

from lbtx.option_types import (non_negative_int as _non_negative_int,
                               positive_float as _positive_float, positive_int as _positive_int)
from lbtx.server.policy import PolicyError, load_policy
from lbtx.server.queries import HardLimits

MEGABYTE = 1024 * 1024
SECOND = 1.0

DEFAULT_QUERY_ENDPOINT = "tcp:9000"
DEFAULT_STORE_ENDPOINT = "tcp:9001"
DEFAULT_DATA_DIR = "lbtx-data"
DEFAULT_LOCK_SLOTS = 1024
DEFAULT_STATUS_CACHE = 8  # MiB of status text
DEFAULT_MAX_FRAME = 16 * MEGABYTE
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_IDLE_TIMEOUT = 60 * SECOND
DEFAULT_REQUEST_TIMEOUT = 120 * SECOND
DEFAULT_LIMITS = HardLimits()  # no hard limits




def _hard_limits(text):
    try:
        return HardLimits.parse(text)
    except ValueError as e:
        raise usage.UsageError(f"--limits: {e}") from None


def _policy_file(path):
    try:
        return load_policy(path)
    except PolicyError as e:
        raise usage.UsageError(f"--policy: {e}") from None


def _no_index(text):
    if text not in ("0", "1", "2"):
        raise usage.UsageError(f"--no-index takes 0, 1 or 2, not {text!r}")
    return int(text)




class ServerOptions(usage.Options):
    """Options of the bookkeeping server."""

    synopsis = "[options]"
    longdesc = ("The lbtx bookkeeping server: event intake, job states, queries. With no "
                "options it keeps its data in SQLite under ./lbtx-data and listens on 9000 "
                "(queries) and 9001 (intake).")

    optFlags = [
        ["noauth", "n", "authorization checks off (for tests and trials only)"],
    ]
    optParameters = [
        ["data-dir", "d", DEFAULT_DATA_DIR, "directory for the server's data"],
        ["db", None, None, "database URL: sqlite:///PATH or postgresql://... "
                           "(default: SQLite in the data directory)"],
        ["lock-slots", None, DEFAULT_LOCK_SLOTS, "number of per-job write locks (PostgreSQL)",
         _positive_int("lock-slots")],
        ["status-cache", None, DEFAULT_STATUS_CACHE,
         "MiB of stored status text kept decoded for the next batch (0: none; the decoded "
         "statuses take about twice that again)", _non_negative_int("status-cache")],
        ["max-frame", None, DEFAULT_MAX_FRAME, "largest accepted frame in bytes",
         _positive_int("max-frame")],
        ["max-connections", None, DEFAULT_MAX_CONNECTIONS, "connections served at once",
         _positive_int("max-connections")],
        ["idle-timeout", None, DEFAULT_IDLE_TIMEOUT, "seconds before an idle client is dropped",
         _positive_float("idle-timeout")],
        ["request-timeout", None, DEFAULT_REQUEST_TIMEOUT, "seconds a request may take",
         _positive_float("request-timeout")],
        ["server-name", None, None, "host:port this server owns job ids for "
                                    "(default: this host on the query port)"],
        ["peer-identity", None, "anonymous", "identity given to peers of plaintext "
                                             "connections (tests and trials)"],
        ["limits", "L", DEFAULT_LIMITS, "hard limits on one query answer, events:jobs[:size] "
                                        "(0: none; the size part is unused)", _hard_limits],
        ["notif-default-validity", None, 2 * 3600, "seconds a notification registration is "
                                                    "valid when no validity is asked for",
         _positive_int("notif-default-validity")],
        ["notif-max-validity", None, 24 * 3600, "longest validity of a notification "
                                                "registration, seconds",
         _positive_int("notif-max-validity")],
        ["notif-retry-max", None, 60.0, "longest pause, seconds, before a notification "
                                        "callback that failed is tried again",
         _positive_float("notif-retry-max")],
        ["policy", "l", None, "authorization policy file (docs/security.md): server-wide "
                              "rights such as READ_ALL, PURGE, LOG_WMS_EVENTS", _policy_file],
        ["anonymization-salt", None, None, "file with the salt of anonymised identities "
                                           "(default: DATA_DIR/anonymization.salt, made "
                                           "when missing; share it between servers of one "
                                           "database)"],
        ["server-identity", None, None, "this server's own identity (its certificate "
                                        "subject), which may always purge"],
        ["no-index", "x", 0, "index rule of job queries: 0 enforced, 1 super-users exempt, "
                             "2 off", _no_index],
    ]

    def __init__(self):
        super().__init__()
        self["listen-query"] = []
        self["listen-store"] = []
        self["superuser"] = []

    def opt_listen_query(self, description):
        """Endpoint for queries and web pages (repeatable; default tcp:9000)."""
        self["listen-query"].append(description)

    def opt_listen_store(self, description):
        """Endpoint for event intake (repeatable; default tcp:9001)."""
        self["listen-store"].append(description)

    def opt_superuser(self, identity):
        """Identity with every right (repeatable)."""
        if not identity.strip():
            raise usage.UsageError("--superuser needs an identity")
        self["superuser"].append(identity)

    opt_R = opt_superuser

    def postOptions(self):
        if not self["listen-query"]:
            self["listen-query"] = [DEFAULT_QUERY_ENDPOINT]
        if not self["listen-store"]:
            self["listen-store"] = [DEFAULT_STORE_ENDPOINT]
        db = self["db"]
        if db is None:
            self["db"] = "sqlite:///" + os.path.abspath(
                os.path.join(self["data-dir"], "lbtx.sqlite"))
        elif not (db.startswith("sqlite:///") or db.startswith("postgresql://")
                  or db.startswith("postgres://")):
            raise usage.UsageError(f"--db must be sqlite:///PATH or postgresql://..., not {db!r}")
        if self["notif-default-validity"] > self["notif-max-validity"]:
            raise usage.UsageError("--notif-default-validity is longer than --notif-max-validity")
        overlap = set(self["listen-query"]) & set(self["listen-store"])
        if overlap:
            raise usage.UsageError(f"the same endpoint for queries and intake: {sorted(overlap)}")
