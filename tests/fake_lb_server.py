"""A stand-in bookkeeping server process for command-line tests.

Serves the legacy query protocol (the real :class:`LegacyQueryFactory` and
:class:`QueryService`) over the :class:`ReplayBackend` fake of
``legacy_query_support`` on ``127.0.0.1:PORT``, and event intake (the real
:class:`BoxServerFactory` and :class:`IntakeHandler`) on ``PORT+1``, where each
batch goes through :func:`lbtx.acceptance.accept` into the backend's in-memory
table; ``--unix-query``/``--unix-store`` add the same listeners on Unix sockets
(an L&B proxy's serve and store sockets). Every peer gets the identity
``--identity``. It prints
``ready`` on stdout once both ports listen, and runs until killed.

    python tests/fake_lb_server.py --port 9000 --identity "/DC=org/CN=Alice"

This is what the command tests ran against before the real ``twistd lb-server``
answered queries; it is kept to test the commands against the protocol fake
alone.
"""

from __future__ import annotations

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from twisted.internet import defer, reactor  # noqa: E402
from twisted.internet.endpoints import TCP4ServerEndpoint, UNIXServerEndpoint  # noqa: E402

from legacy_query_support import ReplayBackend  # noqa: E402
from lbtx.acceptance import accept  # noqa: E402
from lbtx.protocols.box.server import BoxServerFactory, fixed_identity  # noqa: E402
from lbtx.protocols.legacy_query import LegacyQueryFactory, QueryService  # noqa: E402
from lbtx.server.intake import IntakeHandler  # noqa: E402


class ReplayStore:
    """The part of a job store that intake needs, over a replay table."""

    def __init__(self, backend: ReplayBackend):
        self.backend = backend

    def accept_events(self, events, texts):
        table = self.backend.table
        return defer.succeed([accept(table, ev) for ev in events])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--unix-query", help="also serve queries on this Unix socket")
    parser.add_argument("--unix-store", help="also take events on this Unix socket")
    args = parser.parse_args()
    backend = ReplayBackend()
    service = QueryService(backend, server=("127.0.0.1", args.port), clock=reactor)
    queries = LegacyQueryFactory(service, reactor, identify=lambda addr: args.identity)
    store = BoxServerFactory(IntakeHandler(ReplayStore(backend)), clock=reactor,
                             identify=fixed_identity(args.identity))

    @defer.inlineCallbacks
    def start():
        yield TCP4ServerEndpoint(reactor, args.port, interface="127.0.0.1").listen(queries)
        yield TCP4ServerEndpoint(reactor, args.port + 1, interface="127.0.0.1").listen(store)
        if args.unix_query:
            yield UNIXServerEndpoint(reactor, args.unix_query).listen(queries)
        if args.unix_store:
            yield UNIXServerEndpoint(reactor, args.unix_store).listen(store)
        print("ready", flush=True)

    def failed(f):
        print(f"failed: {f.getErrorMessage()}", flush=True)
        reactor.stop()

    reactor.callWhenRunning(lambda: start().addErrback(failed))
    reactor.run()


if __name__ == "__main__":
    main()
