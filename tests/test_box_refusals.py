"""A store port while the handler cannot process anything (the database is down):
the handler fails with TemporarilyUnavailable, every request of the call gets a
retryable error with its message, one warning line per refused request and no
traceback is logged, a merged call is not handed over again, and the connection
keeps serving once the handler recovers. The intake turns the store's
StoreUnavailableError into such a failure."""

from __future__ import annotations

from twisted.logger import LogLevel
from twisted.trial.unittest import SynchronousTestCase

from box_support import RecordingHandler, connected
from lbtx.protocols.box.client import BoxRemoteError
from lbtx.protocols.box.messages import ErrorCode, ResultCode
from lbtx.protocols.box.server import ServerLimits, TemporarilyUnavailable
from lbtx.server.intake import DatabaseUnavailable, IntakeHandler
from lbtx.server.store.interfaces import StoreUnavailableError
from lbtx.testing.logs import CapturedLogs

WHY = "the database is unavailable (connection lost); retry later"


class RefusalTests(SynchronousTestCase):

    def _refuse(self, limits=ServerLimits(), batches=((b"a",),)):
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler, limits=limits)
        with CapturedLogs() as logged:
            ds = [client.send_batch(list(batches[0]))]
            pump.flush()
            ds += [client.send_batch(list(b)) for b in batches[1:]]
            pump.flush()
            handler.answer(0)
            pump.flush()
            call = handler.calls[-1]
            call.deferred.errback(TemporarilyUnavailable(WHY))
            pump.flush()
        return handler, client, pump, ds, logged

    def test_a_refused_batch_says_why_and_is_retryable(self):
        handler, client, pump, ds, logged = self._refuse(batches=((b"stored 1",), (b"x", b"y")))
        assert self.successResultOf(ds[0])[0].code is ResultCode.STORED
        err = self.failureResultOf(ds[1], BoxRemoteError).value
        assert (err.code, err.retryable) == (ErrorCode.INTERNAL, True)
        assert "database is unavailable" in str(err) and "retry" in str(err)
        warnings = logged.at(LogLevel.warn)
        assert len(warnings) == 1 and "refused request" in warnings[0]["log_format"]
        assert warnings[0]["count"] == 2
        assert not logged.at(LogLevel.critical) and not logged.at(LogLevel.error)
        assert not [e for e in logged.events if e.get("log_failure") is not None]
        # the connection goes on: the next batch is served
        d = client.send_batch([b"stored 3"])
        pump.flush()
        handler.answer(len(handler.calls) - 1)
        pump.flush()
        assert self.successResultOf(d)[0].code is ResultCode.STORED

    def test_a_refused_merged_call_refuses_each_request_once(self):
        limits = ServerLimits(max_merged_events=10, max_merged_bytes=1000)
        handler, client, pump, ds, logged = self._refuse(
            limits, batches=((b"stored 1",), (b"b",), (b"c", b"d"), (b"e",)))
        assert handler.calls[1].lines == [b"b", b"c", b"d", b"e"]
        assert len(handler.calls) == 2  # not handed over again one by one
        for d in ds[1:]:
            err = self.failureResultOf(d, BoxRemoteError).value
            assert err.retryable and "database is unavailable" in str(err)
        warnings = logged.at(LogLevel.warn)
        assert [w["request_id"] for w in warnings] == sorted({w["request_id"] for w in warnings})
        assert len(warnings) == 3
        assert not logged.at(LogLevel.critical) and not logged.at(LogLevel.info)

    def test_other_failures_still_log_a_traceback(self):
        handler = RecordingHandler(auto=False)
        client, server, pump = connected(handler)
        d = client.send_batch([b"a"])
        pump.flush()
        handler.calls[0].deferred.errback(ZeroDivisionError("a bug"))
        pump.flush()
        err = self.failureResultOf(d, BoxRemoteError).value
        assert err.code is ErrorCode.INTERNAL and "failed to process" in str(err)
        assert len(self.flushLoggedErrors(ZeroDivisionError)) == 1


class _DownStore:
    """A store whose database is down (it fails every call as a real one does)."""

    def __init__(self, error):
        self.error = error
        self.calls = 0

    def accept_events(self, events, lines=None):
        from twisted.internet import defer
        self.calls += 1
        return defer.fail(self.error)


LINE = (b'DATE=20240101000000.000000 HOST="ui.example.org" PROG=edg-wms LVL=SYSTEM '
        b'DG.PRIORITY=0 DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="UserTag" '
        b'DG.JOBID="https://lb.example.org:9000/abc" DG.SEQCODE="UI=000001:NS=0000000000:'
        b'WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000" '
        b'DG.USER="/CN=Alice" DG.USERTAG.NAME="a" DG.USERTAG.VALUE="b"')


class IntakeTests(SynchronousTestCase):

    def test_an_unavailable_store_refuses_as_database_unavailable(self):
        intake = IntakeHandler(_DownStore(StoreUnavailableError(
            "database connection lost: server closed the connection unexpectedly")))
        f = self.failureResultOf(intake.handle_batch("/CN=Alice", [LINE]))
        assert f.check(DatabaseUnavailable) and f.check(StoreUnavailableError)
        assert isinstance(f.value, TemporarilyUnavailable)
        assert str(f.value) == ("the database is unavailable (database connection lost: server "
                                "closed the connection unexpectedly); retry later")

    def test_other_store_failures_pass_unchanged(self):
        intake = IntakeHandler(_DownStore(RuntimeError("a bug")))
        f = self.failureResultOf(intake.handle_batch("/CN=Alice", [LINE]))
        assert f.check(RuntimeError) and not f.check(TemporarilyUnavailable)

    def test_invalid_lines_are_answered_without_the_store(self):
        store = _DownStore(StoreUnavailableError("down"))
        intake = IntakeHandler(store)
        results = self.successResultOf(intake.handle_batch("/CN=Alice", [b"garbage", b""]))
        assert [r.code for r in results] == [ResultCode.INVALID, ResultCode.INVALID]
        assert store.calls == 0
