"""lb-server wiring of notifications: options, the service in the MultiService, the
wake-up after intake commits, the pull receiver's wait (with a Clock)."""

from __future__ import annotations

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from twisted.python import usage

from lbtx.server import tap
from lbtx.server.notify.model import Message
from lbtx.server.notify.receive import PullReceiver
from lbtx.server.notify.service import NotificationService, WakingStore
from lbtx.server.options import ServerOptions


def options(tmp_path, *extra):
    o = ServerOptions()
    o.parseOptions(["--data-dir", str(tmp_path), "--listen-query", "tcp:0",
                    "--listen-store", "tcp:1", *extra])
    return o


def test_validity_options(tmp_path):
    o = options(tmp_path, "--notif-default-validity", "60", "--notif-max-validity", "120",
                "--notif-retry-max", "5")
    assert (o["notif-default-validity"], o["notif-max-validity"], o["notif-retry-max"]) \
        == (60, 120, 5.0)
    o = options(tmp_path)
    assert (o["notif-default-validity"], o["notif-max-validity"]) == (7200, 86400)
    with pytest.raises(usage.UsageError):
        options(tmp_path, "--notif-default-validity", "600", "--notif-max-validity", "60")
    with pytest.raises(usage.UsageError):
        options(tmp_path, "--notif-max-validity", "0")


def test_make_service_has_the_notification_service(tmp_path):
    """The delivery service runs under the store service; the registry has the
    configured validity; both front ends have their notification hooks."""
    from twisted.internet.testing import MemoryReactorClock
    reactor = MemoryReactorClock()
    top = tap.makeService(options(tmp_path, "--notif-default-validity", "30"), reactor)
    found = []

    def walk(service):
        if isinstance(service, NotificationService):
            found.append(service)
        for child in getattr(service, "services", ()):
            walk(child)
    walk(top)
    assert len(found) == 1
    assert found[0].registry.validity.default == 30
    assert found[0].store.read_policy is found[0].registry.policy


class _Store:
    def __init__(self):
        self.messages_queued: list = []

    def accept_events(self, events, lines=None):
        return succeed(["outcome"])

    def acknowledge(self, notif_id, seq):
        self.acked = seq
        return succeed(0)

    def messages(self, notif_id, *, after_seq, limit):
        return succeed([m for m in self.messages_queued if m.seq > after_seq][:limit])

    def registration(self, notif_id):
        from types import SimpleNamespace
        return succeed(SimpleNamespace(expires=10 ** 10))


def test_waking_store_wakes_after_the_commit():
    """accept_events fires with the store's outcomes and wakes after it committed."""
    store = _Store()
    woken = []
    waking = WakingStore(store, lambda: woken.append(True))
    d = waking.accept_events([1], None)
    assert woken == [True]
    assert d.result == ["outcome"]
    assert waking.messages is not None      # everything else is the store's


def test_pull_receiver_waits_until_woken_or_the_deadline():
    """A poll with nothing queued waits; wake answers it with what is queued; with
    nothing, it answers empty at the deadline and leaves no timer."""
    clock = Clock()
    store = _Store()
    receiver = PullReceiver(store, clock, poll=100)
    d = receiver.receive("n", after=3, wait=30)
    assert store.acked == 3 and not d.called
    store.messages_queued.append(Message("n", 4, "j", 0.0, {"seq": 4}))
    clock.advance(5)
    assert not d.called                       # poll period not reached, not woken
    receiver.wake()
    assert [m.seq for m in d.result] == [4]
    assert clock.getDelayedCalls() == []
    d = receiver.receive("n", after=4, wait=2)
    clock.advance(1.9)
    assert not d.called
    clock.advance(0.2)
    assert d.result == []
    assert clock.getDelayedCalls() == []


def test_pull_receiver_wait_is_capped():
    clock = Clock()
    receiver = PullReceiver(_Store(), clock, poll=1000)
    d: Deferred = receiver.receive("n", after=0, wait=10 ** 6)
    clock.advance(60.5)
    assert d.called and d.result == []
