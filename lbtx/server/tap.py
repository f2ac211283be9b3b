"""``twistd lb-server``: the bookkeeping server as a twistd plug-in.

One :class:`~twisted.application.service.MultiService`: the job store, and behind
it a listener per ``--listen-store`` endpoint (event intake over the box protocol
or the legacy interlogger framing) and a listener per ``--listen-query`` endpoint
(the legacy query protocol and the JSON API under ``/api/``, both answered by one
:class:`~lbtx.server.queries.StoreQueryBackend`).
"""

from __future__ import annotations

import os
import secrets
import socket

from twisted.application import strports
from twisted.application.service import MultiService

from lbtx.protocols.box.server import STORE_PORT_FRAMINGS, BoxServerFactory, ServerLimits
from lbtx.protocols.legacy_query.service import QueryService
from lbtx.protocols.legacy_query.notifications import LegacyNotifications
from lbtx.server.api import JsonApi, _BadRequest as BadRequest
from lbtx.server.anonymize import Anonymizer
from lbtx.server.authz import ReadPolicy
from lbtx.server.notify.api import NotificationApi
from lbtx.server.notify.delivery import Backoff
from lbtx.server.notify.locks import locks_for
from lbtx.server.notify.registry import Registry, Validity
from lbtx.server.notify.service import NotificationService, WakingStore
from lbtx.server.intake import DEFAULT_MAX_MERGED_EVENTS, IntakeHandler
from lbtx.server.maintenance import Maintenance
from lbtx.server.options import DEFAULT_QUERY_ENDPOINT, MEGABYTE, ServerOptions
from lbtx.server.peers import store_identify
from lbtx.server.queries import StoreQueryBackend
from lbtx.server.query_port import QueryPortFactory
from lbtx.server.web.port import SiteHandler
from lbtx.server.web.service import WebPages
from lbtx.server.service import StoreService
from lbtx.server.store import open_store
from lbtx.server.store.status_cache import statuses

Options = ServerOptions

__all__ = ["Options", "makeService"]


def _default_reactor():
    from twisted.internet import reactor
    return reactor


def makeService(options, reactor=None) -> MultiService:
    """Build the server from parsed :class:`ServerOptions`."""
    reactor = reactor or _default_reactor()
    os.makedirs(options["data-dir"], exist_ok=True)
    top = MultiService()
    statuses.resize(options["status-cache"] * MEGABYTE)
    store = open_store(options["db"], reactor, lock_slots=options["lock-slots"])
    store_service = StoreService(store, reactor)
    store_service.setServiceParent(top)
    limits = ServerLimits(max_frame=options["max-frame"],
                          max_connections=options["max-connections"],
                          idle_timeout=options["idle-timeout"],
                          request_timeout=options["request-timeout"],
                          max_merged_events=DEFAULT_MAX_MERGED_EVENTS)
    policy = ReadPolicy(superusers=options["superuser"], noauth=bool(options["noauth"]),
                        policy=options["policy"])
    store.read_policy = policy
    store.anonymizer = Anonymizer(_salt(options))
    notifications = _notifications(options, store, reactor, policy)
    notifications.setServiceParent(store_service)
    handler = IntakeHandler(WakingStore(store, notifications.wake), max_line=options["max-frame"],
                            policy=policy)
    factory = BoxServerFactory(handler, clock=reactor, limits=limits,
                               framings=STORE_PORT_FRAMINGS,
                               identify=store_identify(options["peer-identity"]))
    for description in options["listen-store"]:
        strports.service(description, factory, reactor=reactor).setServiceParent(store_service)
    query_factory = _query_factory(options, store, reactor, notifications, policy)
    for description in options["listen-query"]:
        strports.service(description, query_factory, reactor=reactor).setServiceParent(
            store_service)
    return top


def server_name(options) -> tuple[str, int]:
    """``(host, port)`` this server owns job ids for: ``--server-name``, else this
    host on the port of the first query endpoint (9000 when it has none)."""
    if options["server-name"]:
        host, _, port = options["server-name"].rpartition(":")
        if host and port.isdigit():
            return host, int(port)
        return options["server-name"], 9000
    first = (options["listen-query"] or [DEFAULT_QUERY_ENDPOINT])[0].split(":")
    port = next((int(p) for p in first[1:3] if p.isdigit()), 9000)
    return socket.getfqdn(), port


def _salt(options) -> bytes:
    """The anonymization salt: read from its file, or made (32 random bytes, mode
    0600) when the file does not exist yet."""
    path = options["anonymization-salt"] or os.path.join(options["data-dir"],
                                                         "anonymization.salt")
    try:
        with open(path, "rb") as f:
            salt = f.read(4096)
    except FileNotFoundError:
        salt = secrets.token_hex(32).encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another server made it meanwhile
            return _salt(options)
        with os.fdopen(fd, "wb") as f:
            f.write(salt)
            f.flush()
            os.fsync(f.fileno())
    if not salt.strip():
        raise ValueError(f"the anonymization salt file {path} is empty")
    return salt.strip()


def _notifications(options, store, reactor, policy: ReadPolicy) -> NotificationService:
    """Callback delivery, pull receive and the registry (docs/notifications.md)."""
    service = NotificationService(store, reactor, locks=locks_for(options["db"], reactor),
                                  backoff=Backoff(maximum=options["notif-retry-max"]))
    service.registry = Registry(
        store, policy=policy, clock=reactor, on_change=service.wake,
        validity=Validity(default=options["notif-default-validity"],
                          maximum=options["notif-max-validity"]))
    return service


def _query_factory(options, store, reactor, notifications=None,
                   policy: ReadPolicy | None = None) -> QueryPortFactory:
    """The query port: legacy protocol and JSON API over one store backend."""
    backend = StoreQueryBackend(store, superusers=options["superuser"],
                                noauth=bool(options["noauth"]), hard_limits=options["limits"],
                                no_index=options["no-index"], policy=policy)
    server = server_name(options)
    timeout = options["request-timeout"]
    legacy = QueryService(backend, server=server, clock=reactor, request_timeout=timeout)
    api = JsonApi(backend, server=server, clock=reactor, request_timeout=timeout)
    if notifications is not None:
        legacy.notifications = LegacyNotifications(notifications.registry)
        api.notifications = NotificationApi(notifications.registry, notifications.receiver,
                                            server=server, bad_request=BadRequest)
    legacy.maintenance = Maintenance(store, backend.policy, server=server,
                                     data_dir=options["data-dir"], clock=reactor,
                                     identity=options["server-identity"])
    web = WebPages(backend, server=server, clock=reactor, request_timeout=timeout,
                   notifications=store if hasattr(store, "registrations") else None,
                   identity=options["server-name"] or None)
    handler = SiteHandler(legacy, api, web)
    return QueryPortFactory(handler, reactor, plaintext_identity=options["peer-identity"],
                            max_connections=options["max-connections"],
                            idle_timeout=options["idle-timeout"], budget=timeout)
