"""``lbtx serve``: server, logger and interlogger in one foreground process.

Runs on localhost, with SQLite (or ``--db``) under a data directory:

* queries and web pages on ``N`` (``--base-port``, 9000), event intake on ``N+1``,
  the local logger on ``N+2`` and on ``DATA-DIR/logger.sock``, as the original;
* the interlogger inside the logger, delivering to ``localhost:N+1``;
* the local user is the identity of plaintext callers, so one can register, log
  and query one's own jobs with no further set-up.

Once its stores are open and its ports bound it prints the addresses and the
environment variables to export, then logs to ``DATA-DIR/lbtx.log`` until
interrupted (Ctrl-C). If it cannot run (a port in use, the database unavailable)
it says why on standard error and exits with status 1.
"""

from __future__ import annotations

import getpass
import os
import sys

__all__ = ["add_parser", "build", "run"]


def add_parser(sub) -> None:
    p = sub.add_parser("serve", help="run server, logger and interlogger on localhost",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("--data-dir", default="lbtx-data", help="data directory [./lbtx-data]")
    p.add_argument("--base-port", type=int, default=9000,
                   help="queries on N, intake on N+1, logger on N+2 [9000]")
    p.add_argument("--db", help="database URL (default: SQLite in the data directory)")
    p.set_defaults(run=run)


def build(data_dir: str, base_port: int, db: str | None, reactor):
    """The MultiService of the three daemons, and the lines to print."""
    from twisted.application.service import MultiService

    from lbtx.logger import tap as logger_tap
    from lbtx.server import tap as server_tap

    data_dir = os.path.abspath(data_dir)
    identity = "unix:" + getpass.getuser()
    server_args = ["--data-dir", os.path.join(data_dir, "server"),
                   "--listen-query", f"tcp:{base_port}:interface=127.0.0.1",
                   "--listen-store", f"tcp:{base_port + 1}:interface=127.0.0.1",
                   "--server-name", f"localhost:{base_port}", "--peer-identity", identity]
    if db:
        server_args += ["--db", db]
    server_options = server_tap.Options()
    server_options.parseOptions(server_args)
    logger_options = logger_tap.Options()
    logger_options.parseOptions(["--data-dir", data_dir, "--listen",
                                 f"tcp:{base_port + 2}:interface=127.0.0.1",
                                 "--peer-identity", identity])
    top = MultiService()
    server_tap.makeService(server_options, reactor).setServiceParent(top)
    logger_tap.makeService(logger_options, reactor).setServiceParent(top)
    lines = [
        f"lbtx serve: data in {data_dir}",
        f"  queries   localhost:{base_port}   (job ids: https://localhost:{base_port}/...)",
        f"  intake    localhost:{base_port + 1}",
        f"  logger    localhost:{base_port + 2} and {logger_options['socket']}",
        "export these to use it:",
        f"  export GLITE_WMS_QUERY_SERVER=localhost:{base_port}",
        f"  export GLITE_WMS_LOG_DESTINATION=localhost:{base_port + 2}",
        f"  export LBTX_LOGGER={logger_options['socket']}",
    ]
    return top, lines


def _gates(service) -> list:
    """The :class:`~lbtx.gated_service.GatedService` s in ``service``'s tree."""
    from twisted.application.service import MultiService

    from lbtx.gated_service import GatedService

    found = [service] if isinstance(service, GatedService) else []
    if isinstance(service, MultiService):
        for child in service:
            found += _gates(child)
    return found


def run(args) -> int:
    from twisted.internet import defer, reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver
    from twisted.python import usage

    from lbtx.daemon_exit import EXIT_FAILURE, failure

    os.makedirs(args.data_dir, exist_ok=True)
    try:
        top, lines = build(args.data_dir, args.base_port, args.db, reactor)
    except usage.UsageError as e:
        print(f"lbtx serve: {e}", file=sys.stderr)
        return 2
    log = open(os.path.join(args.data_dir, "lbtx.log"), "a", encoding="utf-8")
    globalLogBeginner.beginLoggingTo([textFileLogObserver(log)], redirectStandardIO=False)
    reactor.callWhenRunning(top.startService)
    reactor.addSystemEventTrigger("before", "shutdown", top.stopService)

    def announce(_):
        print("\n".join(lines), flush=True)
    gates = defer.gatherResults([gate.ready for gate in _gates(top)], consumeErrors=True)
    gates.addCallbacks(announce, lambda _: None)  # a failure is said after the reactor
    reactor.run()
    if failure() is not None:
        print(f"lbtx serve: {failure()}; stopped (details in {log.name})", file=sys.stderr)
        return EXIT_FAILURE
    return 0
