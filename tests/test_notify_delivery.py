"""The callback delivery loop (lbtx.server.notify.delivery) over a real SQLite store
with real matching, a recording HTTP client whose answers the test gives, and a
``Clock`` for timeouts, backoff and expiry."""

from __future__ import annotations

import random
import time

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.task import Clock, deferLater

from lbtx import ulm
from lbtx.server.authz import ReadPolicy
from lbtx.server.notify.delivery import HEADER_ID, HEADER_SEQ, Backoff, CallbackDelivery
from lbtx.server.notify.model import Flags, Registration
from lbtx.server.store import open_store
from notify_support import ALICE, job_streams

URL = "http://127.0.0.1:9/hook"
OTHER = "http://127.0.0.1:10/other"
NOTIF = "https://lb.example.org:9000/NOTIF:deliverytestxxxxxxxxxx"


class _Response:
    def __init__(self, code):
        self.code = code

    def content(self):
        return defer.succeed(b"")


class RecordingHTTP:
    """``post`` records its arguments and returns a Deferred the test fires."""

    def __init__(self):
        self.calls = []

    def post(self, url, data, headers, timeout):
        d = defer.Deferred()
        self.calls.append({"url": url, "data": data, "headers": headers, "timeout": timeout,
                           "d": d})
        return d

    def answer(self, i, code=200):
        self.calls[i]["d"].callback(_Response(code))

    def seq(self, i):
        return int(self.calls[i]["headers"][HEADER_SEQ.encode()][0])


@pytest.fixture
def store(tmp_path):
    s = open_store("sqlite:///" + str(tmp_path / "d.sqlite"), reactor)
    pytest_twisted.blockon(s.start())
    s.read_policy = ReadPolicy(noauth=True)
    yield s
    pytest_twisted.blockon(s.stop())


async def until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await deferLater(reactor, 0.01, lambda: None)


async def setup(store, clock, *, jobs=1, destination=URL, validity=3600):
    await store.register(Registration(notif_id=NOTIF, owner=ALICE, destination=destination,
                                      expires=int(clock.seconds()) + validity, conditions=(),
                                      job_ids=(), flags=Flags.NONE))
    lines = [ln for _, s in job_streams(jobs, "lb.example.org:9000") for ln in s]
    events = [ulm.parse(ln, require_user=True) for ln in lines]
    await store.accept_events(events, lines)
    return (await store.registration(NOTIF)).last_seq


def make(store, http, clock, **kw):
    d = CallbackDelivery(store, http, clock, rng=random.Random(1), **kw)
    d.start()
    clock.advance(0)
    return d


@pytest_twisted.ensureDeferred
async def test_in_order_one_in_flight_acknowledged_after_2xx(store):
    """POSTs go one at a time in seq order with the id and seq headers and the
    timeout; a message leaves the store only after its 2xx."""
    clock = Clock()
    clock.advance(time.time())
    last = await setup(store, clock)
    http = RecordingHTTP()
    delivery = make(store, http, clock, request_timeout=7)
    for i in range(last):
        await until(lambda: len(http.calls) == i + 1)
        await deferLater(reactor, 0.02, lambda: None)
        assert len(http.calls) == i + 1          # nothing else in flight
        call = http.calls[i]
        assert http.seq(i) == i + 1 and call["url"] == URL and call["timeout"] == 7
        assert call["headers"][HEADER_ID.encode()] == [NOTIF.encode()]
        remaining = await store.messages(NOTIF, after_seq=0, limit=100)
        # not acknowledged before its answer (earlier ones may still be, coalesced)
        assert i + 1 in [m.seq for m in remaining]
        http.answer(i, 200 if i % 2 else 204)
    await until(lambda: not delivery._active)
    assert await store.messages(NOTIF, after_seq=0, limit=100) == []
    import json
    docs = [json.loads(c["data"]) for c in http.calls]
    assert all(d["notification"] == NOTIF and d["status"]["state"] for d in docs)
    assert [d["seq"] for d in docs] == list(range(1, last + 1))
    await delivery.stop()


@pytest_twisted.ensureDeferred
async def test_failure_backs_off_the_destination_and_retries_the_same_seq(store):
    """A 500 or a refused connection stops the loop; nothing is sent before the
    backoff delay; then the same seq is sent again; delays grow."""
    clock = Clock()
    clock.advance(time.time())
    await setup(store, clock)
    http = RecordingHTTP()
    delivery = make(store, http, clock, backoff=Backoff(first=1.0, maximum=8.0))
    await until(lambda: len(http.calls) == 1)
    http.answer(0, 500)
    await until(lambda: not delivery._active)
    delays = []
    for attempt in range(1, 5):
        call = delivery._retry_calls[next(iter(delivery._retry_calls))]
        delays.append(call.getTime() - clock.seconds())
        clock.advance(delays[-1] - 0.01)
        await deferLater(reactor, 0.05, lambda: None)
        assert len(http.calls) == attempt          # still waiting
        clock.advance(0.02)
        await until(lambda: len(http.calls) == attempt + 1)
        assert http.seq(attempt) == 1
        http.calls[attempt]["d"].errback(ConnectionRefusedError())
        await until(lambda: not delivery._active)
    assert delays[0] <= 1.0 and delays[-1] > delays[0] and max(delays) <= 8.0
    assert (await store.messages(NOTIF, after_seq=0, limit=1))[0].seq == 1
    await delivery.stop()
    assert clock.getDelayedCalls() == []


@pytest_twisted.ensureDeferred
async def test_nothing_is_sent_after_expiry(store):
    """A registration that expires while its destination backs off gets no POST."""
    clock = Clock()
    clock.advance(time.time())
    await setup(store, clock, validity=5)
    http = RecordingHTTP()
    delivery = make(store, http, clock, backoff=Backoff(first=10.0, maximum=10.0))
    await until(lambda: len(http.calls) == 1)
    http.answer(0, 503)
    await until(lambda: not delivery._active)
    clock.advance(11)
    await deferLater(reactor, 0.1, lambda: None)
    await delivery.scan()
    await deferLater(reactor, 0.1, lambda: None)
    assert len(http.calls) == 1
    await delivery.stop()


@pytest_twisted.ensureDeferred
async def test_a_new_destination_takes_the_rest_of_the_queue(store):
    """After a Bind the next batch goes to the new URL, from the first unanswered seq."""
    clock = Clock()
    clock.advance(time.time())
    await setup(store, clock)
    http = RecordingHTTP()
    delivery = make(store, http, clock, batch=1)
    await until(lambda: len(http.calls) == 1)
    http.answer(0)
    await until(lambda: len(http.calls) == 2)
    await store.update_registration(NOTIF, destination=OTHER)
    http.answer(1)
    await until(lambda: len(http.calls) == 3)
    assert http.calls[2]["url"] == OTHER and http.seq(2) == 3
    http.answer(2)
    await until(lambda: len(http.calls) == 4)
    assert http.calls[3]["url"] == OTHER and http.seq(3) == 4
    stopped = delivery.stop()
    http.answer(3)
    await stopped
    assert len(http.calls) == 4   # nothing started after stop


@pytest_twisted.ensureDeferred
async def test_pull_and_legacy_destinations_are_left_alone(store):
    """No POST for a registration without a URL (pull) or with host:port."""
    clock = Clock()
    clock.advance(time.time())
    await setup(store, clock, destination="ui.example.org:40123")
    http = RecordingHTTP()
    delivery = make(store, http, clock)
    await delivery.scan()
    await deferLater(reactor, 0.1, lambda: None)
    assert http.calls == []
    await delivery.stop()


class AnsweringHTTP(RecordingHTTP):
    """Answers every POST with 200 at once."""

    def post(self, url, data, headers, timeout):
        d = super().post(url, data, headers, timeout)
        d.callback(_Response(200))
        return d


@pytest_twisted.ensureDeferred
async def test_scan_pages_reach_every_callback_registration_past_pull_backlogs(store):
    """Pull registrations with backlogs sort before the callback ones; with one
    registration per scan page every callback registration is still delivered,
    the pull backlogs stay queued; acknowledgements (coalesced) leave nothing."""
    clock = Clock()
    clock.advance(time.time())
    ids = [f"https://lb.example.org:9000/NOTIF:page{i}xxxxxxxxxxxxxxxx" for i in range(6)]
    for i, notif in enumerate(ids):
        await store.register(Registration(
            notif_id=notif, owner=ALICE, destination=None if i < 3 else f"{URL}{i}",
            expires=int(clock.seconds()) + 3600, conditions=(), job_ids=(), flags=Flags.NONE))
    lines = [ln for _, s in job_streams(1, "lb.example.org:9000") for ln in s]
    await store.accept_events([ulm.parse(ln, require_user=True) for ln in lines], lines)
    last = (await store.registration(ids[0])).last_seq
    assert last > 1
    http = AnsweringHTTP()
    delivery = make(store, http, clock, scan_limit=1, ack_every=2)
    # wakes and the next page are calls at 0 s on the Clock: let them run
    await until(lambda: clock.advance(0) or (len(http.calls) == 3 * last
                                             and not delivery._active))
    assert sorted({c["url"] for c in http.calls}) == [f"{URL}{i}" for i in (3, 4, 5)]
    for notif in ids[3:]:
        assert await store.messages(notif, after_seq=0, limit=100) == []
    for notif in ids[:3]:
        assert len(await store.messages(notif, after_seq=0, limit=100)) == last
    await delivery.stop()
