"""The query port: callers named from the connected transport (a proven identity,
the configured plaintext identity, or anonymous), the JSON API and the legacy
protocol on one connection, the idle deadline; and how ``makeService`` wires a
listener per ``--listen-query`` endpoint behind the store."""

from __future__ import annotations

import json

import pytest
from twisted.python.usage import UsageError

from twisted.application.internet import StreamServerEndpointService
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import capturedLogs
from zope.interface import directlyProvides

from lbtx.gss.identity import Identity
from lbtx.gss.interfaces import IPeerIdentity
from lbtx.protocols.legacy_query import QueryService
from lbtx.protocols.legacy_query.http import ResponseDecoder, format_request
from lbtx.server import tap
from lbtx.server.api import JsonApi
from lbtx.server.options import ServerOptions
from lbtx.server.queries import HardLimits, StoreQueryBackend
from lbtx.server.peers import store_identify, transport_caller
from lbtx.server.query_port import QueryPortFactory, QueryPortHandler
from lbtx.server.service import StoreService

from legacy_query_support import ReplayBackend

ALICE = "/DC=org/DC=example/CN=Alice"
LEGACY = ("Accept: application/x-dglb", "User-Agent: edg_wll_Api/3.0/3.0")


def _factory(clock, plaintext=ALICE):
    backend = ReplayBackend(noauth=True)
    server = ("lb.example.org", 9000)
    handler = QueryPortHandler(QueryService(backend, server=server, clock=clock),
                               JsonApi(backend, server=server, clock=clock))
    return QueryPortFactory(handler, clock, plaintext_identity=plaintext, idle_timeout=10)


def _connect(factory, transport=None):
    transport = transport or StringTransport()
    proto = factory.buildProtocol(None)
    proto.makeConnection(transport)
    return proto, transport


def _answers(transport) -> list:
    return ResponseDecoder().feed(transport.value())


def test_plaintext_peers_get_the_configured_identity():
    proto, transport = _connect(_factory(Clock()))
    proto.dataReceived(format_request("GET /api/whoami HTTP/1.1"))
    (answer,) = _answers(transport)
    assert json.loads(answer.body) == {"identity": ALICE, "fqans": []}


def test_anonymous_plaintext_peers():
    """--peer-identity anonymous (the default) means anonymous callers."""
    for plaintext in ("anonymous", None):
        proto, transport = _connect(_factory(Clock(), plaintext))
        assert proto.caller is None
        proto.dataReceived(format_request("GET /api/whoami HTTP/1.1"))
        assert json.loads(_answers(transport)[0].body)["identity"] is None


def test_a_proven_identity_wins_with_its_fqans():
    """A transport that authenticated its peer (TLS, Kerberos, lbunix:) names the caller."""
    transport = StringTransport()
    directlyProvides(transport, IPeerIdentity)
    transport.identity = Identity.x509("/DC=org/CN=Bob/CN=proxy", ("/vo/Role=NULL",))
    caller = transport_caller(transport, ALICE)
    assert caller == "/DC=org/CN=Bob" and caller.fqans == ("/vo/Role=NULL",)
    proto, transport = _connect(_factory(Clock()), transport)
    proto.dataReceived(format_request("GET /api/whoami HTTP/1.1"))
    assert json.loads(_answers(transport)[0].body) == {"identity": "/DC=org/CN=Bob",
                                                       "fqans": ["/vo/Role=NULL"]}


def test_both_front_ends_on_one_connection_then_idle_close():
    """A legacy request and an API request, answered in order; then the idle timeout."""
    clock = Clock()
    proto, transport = _connect(_factory(clock))
    proto.dataReceived(format_request("POST /indexedAttrs HTTP/1.1", LEGACY, b"")
                       + format_request("GET /api/indexes HTTP/1.1"))
    legacy, api = _answers(transport)
    assert legacy.status == 200 and b"edg_wll_GetIndexedAttributesResult" in legacy.body
    assert api.status == 200 and json.loads(api.body) == {"indexes": []}
    clock.advance(9)
    assert not transport.disconnecting
    clock.advance(2)
    assert transport.disconnecting


def _options(tmp_path, *args):
    o = ServerOptions()
    o.parseOptions(["--data-dir", str(tmp_path), "--listen-store", "tcp:19101",
                    "--listen-query", "tcp:19100:interface=127.0.0.1",
                    "--listen-query", f"unix:{tmp_path}/q.sock", *args])
    return o


def test_make_service_listens_for_queries_behind_the_store(tmp_path):
    """One listener per --listen-query, children of the StoreService (so they bind
    once the store is open), over one StoreQueryBackend with the options' rules."""
    reactor = MemoryReactorClock()
    top = tap.makeService(_options(tmp_path, "--superuser", ALICE, "--noauth", "--limits",
                                   "100:10", "--no-index", "1", "--server-name",
                                   "lb.example.org:9000"), reactor=reactor)
    (store_service,) = list(top)
    assert isinstance(store_service, StoreService)
    listeners = [s for s in store_service if isinstance(s, StreamServerEndpointService)]
    query = [s for s in listeners if isinstance(s.factory, QueryPortFactory)]
    assert len(query) == 2 and len(listeners) == 3
    assert len({id(s.factory) for s in query}) == 1
    handler = query[0].factory.service
    backend = handler.api._backend
    assert isinstance(backend, StoreQueryBackend) and handler.legacy._backend is backend
    assert backend.policy.noauth and backend.policy.superusers == (ALICE,)
    assert backend.hard_limits == HardLimits(events=100, jobs=10) and backend.no_index == 1
    assert handler.legacy._server == ("lb.example.org", 9000)
    assert query[0].factory.max_connections == 1000
    for service in query:  # what the StoreService does once the store is open
        service.startService()
    assert [(port, iface) for port, _, _, iface in reactor.tcpServers] == [(19100, "127.0.0.1")]
    assert [path for path, *_ in reactor.unixServers] == [f"{tmp_path}/q.sock"]


def test_server_name_defaults_to_this_host_on_the_query_port(tmp_path):
    o = _options(tmp_path)
    host, port = tap.server_name(o)
    assert host and port == 19100
    o["server-name"] = "lb.example.org"
    assert tap.server_name(o) == ("lb.example.org", 9000)


def test_query_options(tmp_path):
    """--limits events:jobs[:size] and --no-index 0/1/2, checked when parsed."""
    o = _options(tmp_path)
    assert o["limits"] == HardLimits(0, 0) and o["no-index"] == 0
    assert _options(tmp_path, "-L", "5:6:7")["limits"] == HardLimits(5, 6)
    assert _options(tmp_path, "-x", "2")["no-index"] == 2
    for bad in (["--limits", "5"], ["--limits", "a:b"], ["--no-index", "3"]):
        with pytest.raises(UsageError):
            _options(tmp_path, *bad)


def test_connections_over_the_limit_are_refused():
    """--max-connections: one more is closed at once; a closed one frees its place."""
    clock = Clock()
    backend = ReplayBackend(noauth=True)
    server = ("lb.example.org", 9000)
    handler = QueryPortHandler(QueryService(backend, server=server, clock=clock),
                               JsonApi(backend, server=server, clock=clock))
    factory = QueryPortFactory(handler, clock, max_connections=2)
    first, _ = _connect(factory)
    _connect(factory)
    with capturedLogs() as events:
        assert factory.buildProtocol(None) is None
    assert any("refusing" in e["log_format"] for e in events)
    first.connectionLost(None)
    assert factory.buildProtocol(None) is not None


def test_store_port_peers():
    """The store port signs events with the same peer identity: proven, else the
    configured one, else anonymous."""
    plain = StringTransport()
    assert store_identify(ALICE)(plain) == ALICE
    assert store_identify("anonymous")(plain) == "anonymous"
    proven = StringTransport()
    directlyProvides(proven, IPeerIdentity)
    proven.identity = Identity.unix("alice", 1000)
    assert store_identify(ALICE)(proven) == "unix:alice"
    proven.identity = Identity.anonymous()
    assert store_identify(ALICE)(proven) == "anonymous"
