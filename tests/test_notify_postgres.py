"""Notifications on PostgreSQL: the delivery locks (advisory locks on a dedicated
connection) and two real lb-server processes on one database delivering one
registration's queue to a real listener: every seq once, in order."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import reactor
from twisted.internet.task import deferLater

from daemon_support import free_port_pair, stop_daemon
from lbtx.server.notify.locks import PostgresDeliveryLocks
from notify_support import Api, CallbackListener, interleave, job_streams, send_lines, \
    start_notify_server
from test_notify_callbacks import _check_in_order, _last_seq, _register, _seqs
from test_server_query_process import _url

A = "https://lb.example.org:9000/NOTIF:lockaxxxxxxxxxxxxxxxxx"
B = "https://lb.example.org:9000/NOTIF:lockbxxxxxxxxxxxxxxxxx"


@pytest_twisted.ensureDeferred
async def test_one_holder_per_registration(pg_dsn):
    """A second process cannot take a held lock; release and a closed connection
    free it; different registrations do not collide."""
    one, two = PostgresDeliveryLocks(pg_dsn, reactor), PostgresDeliveryLocks(pg_dsn, reactor)
    try:
        assert await one.acquire(A)
        assert not await two.acquire(A)
        assert await two.acquire(B)
        await one.release(A)
        assert await two.acquire(A)
        assert not await one.acquire(A)
        await two.close()                  # the session ends: its locks go
        deadline = reactor.seconds() + 10  # (the server ends the session a little later)
        while not await one.acquire(A):
            assert reactor.seconds() < deadline, "the closed session kept its lock"
            await deferLater(reactor, 0.05, lambda: None)
        assert await one.acquire(B)
    finally:
        await one.close()
        await two.close()


@pytest_twisted.ensureDeferred
async def test_two_servers_one_database_deliver_each_seq_once(tmp_path, pg_dsn):
    """Two lb-server processes on one PostgreSQL database, both taking intake: every
    message reaches the listener once, in seq order."""
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    port = free_port_pair()
    proc_a, _ = start_notify_server(tmp_path / "a", db=_url(pg_dsn), port=port)
    proc_b, port_b = start_notify_server(tmp_path / "b", db=_url(pg_dsn))
    listener = CallbackListener()
    listener.start()
    try:
        notif_id = _register(Api(port), listener.url)
        streams = job_streams(20, f"127.0.0.1:{port}")
        lines = interleave(streams)
        await send_lines(port + 1, lines[0::2])
        await send_lines(port_b + 1, lines[1::2])
        await send_lines(port + 1, lines)      # again: duplicates, nothing new
        last = _last_seq(Api(port_b), notif_id)
        assert last == len(lines) == 300
        await listener.until(lambda: len(set(_seqs(listener, notif_id))) >= last, 60)
        _check_in_order(listener, notif_id, last)
        assert len(_seqs(listener, notif_id)) == last    # no seq twice
    finally:
        await listener.stop()
        stop_daemon(proc_a)
        stop_daemon(proc_b)
