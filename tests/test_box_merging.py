"""Merging of pipelined requests on a store port (``ServerLimits.max_merged_events``):
queued requests go to the handler as one call, each is answered from its share, in
order; a failed merged call is handed over again request by request."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from box_support import RecordingHandler, connected
from lbtx.protocols.box.client import BoxRemoteError
from lbtx.protocols.box.messages import ErrorCode, ResultCode
from lbtx.protocols.box.server import ServerLimits

MERGING = ServerLimits(max_merged_events=5, max_merged_bytes=1000)


def _send(client, pump, batches):
    """The first batch alone (it goes to the handler at once), then the others,
    which queue behind it."""
    ds = [client.send_batch(batches[0])]
    pump.flush()
    ds += [client.send_batch(lines) for lines in batches[1:]]
    pump.flush()
    return ds


class MergingTests(SynchronousTestCase):

    def test_off_by_default(self):
        """Without the limit every request is a call of its own."""
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler)
        _send(client, pump, [[b"a"], [b"b"], [b"c"]])
        handler.answer(0)
        pump.flush()
        assert [c.lines for c in handler.calls] == [[b"a"], [b"b"]]

    def test_queued_requests_share_one_call_and_keep_their_answers(self):
        """Requests queued behind a call go together; each gets its own results, in order."""
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, limits=MERGING)
        ds = _send(client, pump, [[b"stored 1"], [b"duplicate 2", b"stored 3"],
                                  [b"unknown_job 4"], [b"stored 5"]])
        assert [c.lines for c in handler.calls] == [[b"stored 1"]]
        handler.answer(0)
        pump.flush()
        assert handler.calls[1].lines == [b"duplicate 2", b"stored 3", b"unknown_job 4",
                                          b"stored 5"]
        assert all(not d.called for d in ds[1:])  # nothing answered before the whole call
        handler.answer(1)
        pump.flush()
        got = [[(r.code, r.reason) for r in self.successResultOf(d)] for d in ds]
        assert got == [[(ResultCode.STORED, "1")],
                       [(ResultCode.DUPLICATE, "2"), (ResultCode.STORED, "3")],
                       [(ResultCode.UNKNOWN_JOB, "4")], [(ResultCode.STORED, "5")]]
        assert client.outstanding == 0

    def test_merging_stops_at_the_event_and_byte_limits(self):
        """A call never holds more than max_merged_events events or max_merged_bytes bytes."""
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, limits=MERGING)
        big = b"x" * 600
        _send(client, pump, [[b"a"], [b"b", b"c", b"d"], [b"e", b"f"], [b"g"], [big], [big]])
        for i in range(4):
            handler.answer(i)
            pump.flush()
        # 5 events, then the 6th would be over; 601 bytes, then 1201 would be over
        assert [c.lines for c in handler.calls] == [
            [b"a"], [b"b", b"c", b"d", b"e", b"f"], [b"g", big], [big]]

    def test_a_failed_merged_call_is_retried_request_by_request(self):
        """Only the request that fails alone gets an error; the others are answered."""
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, limits=MERGING)
        ds = _send(client, pump, [[b"first"], [b"good"], [b"bad"], [b"fine"]])
        handler.answer(0)
        pump.flush()
        assert handler.calls[1].lines == [b"good", b"bad", b"fine"]
        handler.calls[1].deferred.errback(ZeroDivisionError("bad line"))
        pump.flush()
        assert handler.calls[2].lines == [b"good"]
        handler.answer(2)
        pump.flush()
        assert handler.calls[3].lines == [b"bad"]
        handler.calls[3].deferred.errback(ZeroDivisionError("bad line"))
        pump.flush()
        assert handler.calls[4].lines == [b"fine"]
        handler.answer(4)
        pump.flush()
        assert len(self.flushLoggedErrors(ZeroDivisionError)) == 1  # the lone failure
        assert self.successResultOf(ds[1])[0].code is ResultCode.STORED
        failure = self.failureResultOf(ds[2], BoxRemoteError)
        assert failure.value.code is ErrorCode.INTERNAL and failure.value.retryable
        assert self.successResultOf(ds[3])[0].code is ResultCode.STORED
        assert len(handler.calls) == 5

    def test_a_timed_out_merged_call_fails_each_request_with_timeout(self):
        """Past the request deadline every request of the call gets a retryable timeout."""
        clock = Clock()
        handler = RecordingHandler(auto=False)
        limits = ServerLimits(max_merged_events=10, request_timeout=5)
        client, server, pump = connected(handler, limits=limits, server_clock=clock)
        ds = _send(client, pump, [[b"a"], [b"b"], [b"c"]])
        handler.answer(0)
        pump.flush()
        assert handler.calls[1].lines == [b"b", b"c"]
        clock.advance(6)
        pump.flush()
        for d in ds[1:]:
            assert self.failureResultOf(d, BoxRemoteError).value.code is ErrorCode.TIMEOUT
        assert len(handler.calls) == 2  # not handed over again

    def test_a_wrong_result_count_fails_every_merged_request(self):
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, limits=MERGING)
        ds = _send(client, pump, [[b"a"], [b"b"], [b"c"]])
        handler.answer(0)
        pump.flush()
        handler.calls[1].deferred.callback([])
        pump.flush()
        for d in ds[1:]:
            assert self.failureResultOf(d, BoxRemoteError).value.code is ErrorCode.INTERNAL

    def test_lost_connection_during_a_merged_call(self):
        """The connection going away drops the merged call's answers without error."""
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, limits=MERGING)
        ds = _send(client, pump, [[b"a"], [b"b"], [b"c"]])
        handler.answer(0)
        pump.flush()
        server.transport.loseConnection()
        pump.flush()
        handler.answer(1)  # late: nobody to answer
        for d in ds[1:]:
            self.failureResultOf(d)
        assert server._handling is None


def test_merged_answers_equal_unmerged_answers():
    """The same pipelined requests give the same answers with and without merging."""
    batches = [[b"stored %d" % i, b"duplicate %d" % i][: 1 + i % 2] for i in range(12)]

    def run(limits):
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, limits=limits)
        ds = _send(client, pump, batches)
        answered = 0
        while answered < len(handler.calls):
            handler.answer(answered)
            answered += 1
            pump.flush()
        out = []
        for d in ds:
            d.addBoth(out.append)
        return [[(r.code, r.reason) for r in rs] for rs in out], len(handler.calls)

    merged, merged_calls = run(ServerLimits(max_merged_events=6))
    plain, plain_calls = run(ServerLimits())
    assert merged == plain and plain_calls == 12 and merged_calls < 12
