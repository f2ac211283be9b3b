"""Command-line options of the interlogger (``twistd lb-interlogger``, and
``twistd lb-logger`` when it runs the interlogger in-process).

The delivery tunables of :class:`~lbtx.interlogger.stores.DeliveryConfig` and
:class:`~lbtx.interlogger.queue.QueuePolicy`, and the endpoint template that
names a destination's connection: ``tcp:{host}:{port}`` by default (plain TCP),
``lbtls:{host}:{port}`` for TLS with the host credentials of :mod:`lbtx.gss`.
"""

from __future__ import annotations

import os

from twisted.python import usage

from lbtx.option_types import non_negative_float
from lbtx.option_types import positive as _positive
from lbtx.interlogger.backoff import Backoff
from lbtx.interlogger.queue import QueuePolicy
from lbtx.interlogger.stores import DeliveryConfig

__all__ = ["DEFAULT_CONTROL", "DEFAULT_TEMPLATE", "INTERLOGGER_PARAMETERS", "InterloggerOptions",
           "check_template", "control_socket", "delivery_config", "spool_directory"]

DEFAULT_DATA_DIR = "lbtx-data"
DEFAULT_TEMPLATE = "tcp:{host}:{port}"
#: The control socket of an interlogger of its own, in its data directory.
DEFAULT_CONTROL = "interlogger.sock"




_seconds = _positive(float)
_count = _positive(int)

#: The delivery options, shared by both daemons (usage.Options optParameters rows).
INTERLOGGER_PARAMETERS = [
    ["destination-template", None, DEFAULT_TEMPLATE,
     "client endpoint of a destination server, with {host} and {port} "
     "(its store port); e.g. lbtls:{host}:{port} for TLS"],
    ["connect-timeout", None, 60.0, "seconds to connect and shake hands", _seconds],
    ["ack-timeout", None, 60.0, "seconds a server may take to acknowledge a batch", _seconds],
    ["batch-lines", None, 500, "most events in one delivery batch", _count],
    ["batch-linger", None, 0.02, "seconds a delivery batch smaller than --batch-lines waits "
                                 "for more events (0: none); fewer, larger batches cost the "
                                 "server less", non_negative_float("batch-linger")],
    ["rescan-period", None, 60.0, "seconds between scans of the spool", _seconds],
    ["backoff-max", None, 60.0, "longest wait before reconnecting to a failed server", _seconds],
    ["unknown-job-retry", None, 5.0, "seconds before resending events of an unknown job",
     _seconds],
    ["unknown-job-window", None, 300.0, "seconds a job may stay unknown before its events "
                                        "are quarantined", _seconds],
]


def check_template(template: str) -> str:
    """``template`` if it names both ``{host}`` and ``{port}``, else a UsageError."""
    try:
        template.format(host="h", port=1)
    except (KeyError, IndexError, ValueError) as e:
        raise usage.UsageError(f"--destination-template {template!r}: {e}") from None
    if "{host}" not in template or "{port}" not in template:
        raise usage.UsageError("--destination-template needs {host} and {port}")
    return template


def delivery_config(options) -> DeliveryConfig:
    """The :class:`DeliveryConfig` the parsed ``options`` ask for."""
    initial = min(1.0, options["backoff-max"])
    policy = QueuePolicy(max_batch_lines=options["batch-lines"], linger=options["batch-linger"],
                         connect_timeout=options["connect-timeout"],
                         send_timeout=options["ack-timeout"],
                         ack_timeout=options["ack-timeout"],
                         backoff=Backoff(initial=initial, maximum=options["backoff-max"]))
    return DeliveryConfig(rescan_period=options["rescan-period"],
                          unknown_job_retry=options["unknown-job-retry"],
                          unknown_job_window=options["unknown-job-window"],
                          queue_policy=policy)


def control_socket(given: str | None, data_dir: str) -> str:
    """The absolute path of an interlogger's control socket: ``given``, else
    :data:`DEFAULT_CONTROL` in ``data_dir`` (lb-interlogger's ``--control`` and
    lb-logger's ``--interlogger-control`` default alike)."""
    return os.path.abspath(given or os.path.join(data_dir, DEFAULT_CONTROL))


def spool_directory(options) -> str:
    """``--spool``, else ``spool`` under ``--data-dir``, as an absolute path."""
    return os.path.abspath(options["spool"] or os.path.join(options["data-dir"], "spool"))


class InterloggerOptions(usage.Options):
    """Options of ``twistd lb-interlogger``."""

    synopsis = "[options]"
    longdesc = ("The lbtx interlogger: delivers the events a local logger spooled to the "
                "bookkeeping servers of their jobs (the store port, 9001 by default), "
                "at least once, across crashes.")

    optFlags = [
        ["no-watch", None, "do not watch the spool directory (inotify) for new events; "
                           "find them by the rescan only"],
        ["no-control", None, "no control socket (the logger cannot flush nor confirm "
                             "synchronous events)"],
    ]
    optParameters = [
        ["data-dir", "d", DEFAULT_DATA_DIR, "data directory (the spool is DIR/spool)"],
        ["spool", "f", None, "spool directory (default: DATA-DIR/spool)"],
        ["control", None, None, "Unix socket where the logger asks for flushes and for the "
                                f"server's answers (default: DATA-DIR/{DEFAULT_CONTROL})"],
    ] + INTERLOGGER_PARAMETERS

    def postOptions(self):
        check_template(self["destination-template"])
        self["spool"] = spool_directory(self)
        self["control"] = (None if self["no-control"]
                           else control_socket(self["control"], self["data-dir"]))
        if self["control"] is not None:
            folder = os.path.dirname(self["control"])
            if os.path.exists(folder) and not os.path.isdir(folder):
                raise usage.UsageError(f"--control {self['control']}: {folder} is not a "
                                       "directory")
