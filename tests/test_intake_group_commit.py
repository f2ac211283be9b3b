"""The intake's group commit: batches that arrive while the store is busy go to it
together, each is answered from its share once the call is committed; a failed
merged call is re-run batch by batch; an unavailable database fails them all."""

from __future__ import annotations

import pytest
from twisted.internet import defer
from twisted.python.failure import Failure

from lbtx.acceptance import Delivery, Outcome
from lbtx.jobid import JobId
from lbtx.protocols.box.messages import ResultCode
from lbtx.server.intake import IntakeHandler
from lbtx.server.store.interfaces import StoreUnavailableError

PEER = "/DC=org/DC=example/CN=Test Interlogger"


def line(n: int) -> bytes:
    job = JobId.generate("lb.example.org:9000")
    return ('DATE=20240501120000.000000 HOST="ui.example.org" PROG=edg-wms LVL=SYSTEM '
            'DG.PRIORITY=0 DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="RegJob" '
            f'DG.JOBID="{job}" DG.USER="/CN=User {n}" '
            'DG.SEQCODE="UI=000001:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:'
            'LRMS=000000:APP=000000:LBS=000000" DG.REGJOB.JDL="" DG.REGJOB.NS="NS" '
            'DG.REGJOB.JOBTYPE="SIMPLE"').encode()


class ControlledStore:
    """Records each accept_events call; the test answers it: every event stored,
    except users named in ``duplicates``, or a failure."""

    def __init__(self):
        self.calls: list[tuple[list, defer.Deferred]] = []

    def accept_events(self, events, texts):
        assert len(events) == len(texts)
        d = defer.Deferred()
        self.calls.append((list(events), d))
        return d

    def users(self, i: int) -> list[str]:
        return [ev.user for ev in self.calls[i][0]]

    def answer(self, i: int, duplicates=()) -> None:
        events, d = self.calls[i]
        d.callback([Outcome(Delivery.DUPLICATE if ev.user in duplicates else Delivery.STORED)
                    for ev in events])

    def fail(self, i: int, error: Exception) -> None:
        self.calls[i][1].errback(Failure(error))


def _codes(d):
    out = []
    d.addBoth(out.append)
    assert out, "not answered"
    if isinstance(out[0], Failure):
        return out[0]
    return [r.code for r in out[0]]


def test_batches_arriving_meanwhile_share_the_next_call():
    """One call at a time; what arrived meanwhile goes next as one call, in order,
    and nothing is answered before its call is committed."""
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1)
    d1 = intake.handle_batch(PEER, [line(1)])
    d2 = intake.handle_batch(PEER, [line(2), line(3)])
    d3 = intake.handle_batch(PEER, [line(4)])
    assert len(store.calls) == 1 and store.users(0) == ["/CN=User 1"]
    store.answer(0)
    assert _codes(d1) == [ResultCode.STORED]
    assert not d2.called and not d3.called
    assert store.users(1) == ["/CN=User 2", "/CN=User 3", "/CN=User 4"]
    store.answer(1, duplicates={"/CN=User 3"})
    assert _codes(d2) == [ResultCode.STORED, ResultCode.DUPLICATE]
    assert _codes(d3) == [ResultCode.STORED]
    assert intake.store_calls == 2


def test_invalid_lines_keep_their_places_in_a_merged_batch():
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1)
    intake.handle_batch(PEER, [line(1)])
    d = intake.handle_batch(PEER, [b"garbage", line(2), b"DG.EVNT=\"RegJob\""])
    d_other = intake.handle_batch(PEER, [line(3)])
    store.answer(0)
    assert store.users(1) == ["/CN=User 2", "/CN=User 3"]
    store.answer(1)
    assert _codes(d) == [ResultCode.INVALID, ResultCode.STORED, ResultCode.INVALID]
    assert _codes(d_other) == [ResultCode.STORED]


def test_max_inflight_calls_run_at_once():
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=2)
    intake.handle_batch(PEER, [line(1)])
    intake.handle_batch(PEER, [line(2)])
    intake.handle_batch(PEER, [line(3)])
    intake.handle_batch(PEER, [line(4)])
    assert len(store.calls) == 2
    store.answer(1)
    assert store.users(2) == ["/CN=User 3", "/CN=User 4"]


def test_merging_stops_at_the_limits():
    """A call holds at most max_merged_events events and max_merged_chars characters;
    a batch over a limit goes alone."""
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1, max_merged_events=3,
                           max_merged_chars=3 * len(line(0)) + 10)
    intake.handle_batch(PEER, [line(0)])
    intake.handle_batch(PEER, [line(1), line(2)])
    intake.handle_batch(PEER, [line(3)])
    intake.handle_batch(PEER, [line(4)])
    intake.handle_batch(PEER, [line(5), line(6), line(7), line(8)])
    for i in range(4):
        store.answer(i)
    assert [len(events) for events, _ in store.calls] == [1, 3, 1, 4]


def test_a_failed_merged_call_is_run_again_batch_by_batch():
    """Only the batch that fails alone gets the failure; the others are stored."""
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1)
    intake.handle_batch(PEER, [line(0)])
    good = intake.handle_batch(PEER, [line(1)])
    bad = intake.handle_batch(PEER, [line(2)])
    fine = intake.handle_batch(PEER, [line(3)])
    store.answer(0)
    store.fail(1, RuntimeError("state machine broke"))
    assert not good.called and not bad.called
    assert store.users(2) == ["/CN=User 1"]
    store.answer(2)
    assert _codes(good) == [ResultCode.STORED]
    assert store.users(3) == ["/CN=User 2"]
    store.fail(3, RuntimeError("state machine broke"))
    assert _codes(bad).check(RuntimeError)
    assert store.users(4) == ["/CN=User 3"]
    store.answer(4)
    assert _codes(fine) == [ResultCode.STORED]
    assert len(store.calls) == 5


def test_an_unavailable_database_fails_every_batch_of_the_call():
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1)
    intake.handle_batch(PEER, [line(0)])
    ds = [intake.handle_batch(PEER, [line(i)]) for i in (1, 2)]
    store.answer(0)
    store.fail(1, StoreUnavailableError("database restarting"))
    for d in ds:
        assert _codes(d).check(StoreUnavailableError)
    assert len(store.calls) == 2
    d = intake.handle_batch(PEER, [line(3)])  # the queue goes on
    store.answer(2)
    assert _codes(d) == [ResultCode.STORED]


def test_a_cancelled_batch_that_waits_is_withdrawn():
    """Cancelling (the request deadline) a batch not yet with the store keeps it out."""
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1)
    intake.handle_batch(PEER, [line(0)])
    gone = intake.handle_batch(PEER, [line(1)])
    kept = intake.handle_batch(PEER, [line(2)])
    gone.cancel()
    assert _codes(gone).check(defer.CancelledError)
    store.answer(0)
    assert store.users(1) == ["/CN=User 2"]
    store.answer(1)
    assert _codes(kept) == [ResultCode.STORED]


def test_a_cancelled_batch_with_the_store_drops_its_outcome():
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1)
    d = intake.handle_batch(PEER, [line(0)])
    d.cancel()
    store.answer(0)  # no AlreadyCalledError
    assert _codes(d).check(defer.CancelledError)
    later = intake.handle_batch(PEER, [line(1)])
    store.answer(1)
    assert _codes(later) == [ResultCode.STORED]


def test_cancelled_batches_of_a_merged_call_are_neither_answered_nor_run_again():
    """A merged call with batches cancelled meanwhile: on success their outcomes are
    dropped; on failure they are not run again alone (no AlreadyCalledError)."""
    store = ControlledStore()
    intake = IntakeHandler(store, max_inflight=1)
    intake.handle_batch(PEER, [line(0)])
    gone, kept = intake.handle_batch(PEER, [line(1)]), intake.handle_batch(PEER, [line(2)])
    store.answer(0)
    assert store.users(1) == ["/CN=User 1", "/CN=User 2"]    # merged
    gone.cancel()
    store.fail(1, RuntimeError("state machine broke"))
    assert store.users(2) == ["/CN=User 2"]                   # only the live one again
    store.answer(2)
    assert _codes(kept) == [ResultCode.STORED]
    assert _codes(gone).check(defer.CancelledError) and len(store.calls) == 3
    a, b = intake.handle_batch(PEER, [line(3)]), intake.handle_batch(PEER, [line(4)])
    c = intake.handle_batch(PEER, [line(5)])
    store.answer(3)
    b.cancel()
    store.answer(4)
    assert _codes(c) == [ResultCode.STORED] and _codes(a) == [ResultCode.STORED]


def test_max_inflight_must_be_positive():
    with pytest.raises(ValueError):
        IntakeHandler(ControlledStore(), max_inflight=0)


def test_undecodable_bytes_outside_job_ids_are_stored_inside_them_refused():
    """A line that is not valid UTF-8 is still checked for its job ids (the fast path
    skips the check only for valid UTF-8): bad bytes in the host are stored as
    surrogate escapes, bad bytes in the job id make the line invalid."""
    store = ControlledStore()
    intake = IntakeHandler(store)
    host = line(1).replace(b'HOST="ui.example.org"', b'HOST="ui\xff.example.org"')
    good = line(2)
    jobid = good.replace(b"https://lb.example.org:9000/", b"https://lb.example.org:9000/\xfe", 1)
    d = intake.handle_batch(PEER, [host, jobid, good])
    assert store.users(0) == ["/CN=User 1", "/CN=User 2"]
    assert store.calls[0][0][0].host == "ui\udcff.example.org"
    store.answer(0)
    results = []
    d.addCallback(results.append)
    assert [r.code for r in results[0]] == [ResultCode.STORED, ResultCode.INVALID,
                                            ResultCode.STORED]
    assert "UTF-8" in results[0][1].reason
