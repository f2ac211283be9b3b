"""The Automat machine behind :class:`lbtx.interlogger.queue.DeliveryQueue`.

Inputs are the methods of :class:`_Inputs`; all mutable state and the helpers the
transitions call live in :class:`QueueCore`. docs/interlogger.md has the table.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Protocol

from automat import TypeMachineBuilder
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbtx.interlogger.interfaces import (DeliveryProtocolError, DeliveryResult, Destination,
                                         IDeliveryChannel, IDeliveryConnector, Reply, Submission)

if TYPE_CHECKING:
    from lbtx.interlogger.queue import QueuePolicy, Sink

__all__ = ["QueueCore", "build_machine"]


class _Inputs(Protocol):
    def wake(self) -> None:
        "Events are pending."

    def hurry(self) -> None:
        "Send what is pending now: no linger, no back-off wait (a flush)."

    def stop(self) -> None:
        "Stop for good: cancel what is under way, close the connection."

    def _connected(self, channel: IDeliveryChannel) -> None:
        "The connection attempt succeeded."

    def _connect_failed(self, failure: Failure) -> None:
        "The connection attempt failed or timed out."

    def _nothing_to_send(self) -> None:
        "Woken, but every pending event turned out to be stale."

    def _linger(self) -> None:
        "Woken, but the batch is small and its oldest event young: wait for more."

    def _sent(self) -> None:
        "The batch was written."

    def _send_failed(self, failure: Failure) -> None:
        "Writing the batch failed or timed out."

    def _acked(self, replies: list[Reply]) -> None:
        "One reply for every event of the batch."

    def _partially_acked(self, replies: list[Reply]) -> None:
        "Replies for the first events of the batch only."

    def _ack_failed(self, failure: Failure) -> None:
        "No (usable) acknowledgement: lost connection, garbled answer, timeout."

    def _retry(self) -> None:
        "The back-off delay is over."

    def _idle_expired(self) -> None:
        "The connection has been idle for the idle timeout."


@dataclass
class QueueCore:
    destination: Destination
    connector: IDeliveryConnector
    clock: IReactorTime
    sink: Sink
    policy: QueuePolicy
    random: Callable[[], float]
    log: Logger
    pending: deque = field(default_factory=deque)
    channel: IDeliveryChannel | None = None
    batch: list = field(default_factory=list)
    submission: Submission | None = None
    waiting: Deferred | None = None
    timer: IDelayedCall | None = None
    #: When the oldest pending event was queued (None: nothing pending, or resent
    #: events that must not wait); the linger is counted from it.
    first_pending_at: float | None = None
    linger_timer: IDelayedCall | None = None
    failures: int = 0
    token: int = 0
    stopped: Deferred | None = None

    # --- helpers used by the transitions -----------------------------------

    def expect(self, d: Deferred, on_result: Callable, on_failure: Callable,
               on_stale_result: Callable | None = None) -> None:
        """Wait for ``d``: its outcome is fed to the machine unless the step was
        abandoned meanwhile (then a late result goes to ``on_stale_result``)."""
        token = self.token
        self.waiting = d

        def result(value):
            if token == self.token:
                self.waiting = None
                on_result(value)
            elif on_stale_result is not None:
                on_stale_result(value)
            return None

        def failure(f: Failure):
            if token == self.token:
                self.waiting = None
                on_failure(f)
            return None

        d.addCallbacks(result, failure)

    def abandon(self) -> None:
        """Forget the step under way (its late outcome is ignored) and cancel it."""
        self.token += 1
        waiting, self.waiting = self.waiting, None
        if waiting is not None:
            waiting.cancel()
        submission, self.submission = self.submission, None
        if submission is not None:
            for d in (submission.sent, submission.replies):
                d.addErrback(lambda f: None)
                d.cancel()

    def cancel_timer(self) -> None:
        timer, self.timer = self.timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def close_channel(self) -> None:
        channel, self.channel = self.channel, None
        if channel is not None:
            try:
                channel.close()
            except Exception:
                self.log.failure("closing the channel to {destination} failed",
                                 destination=self.destination)

    def cancel_linger(self) -> None:
        timer, self.linger_timer = self.linger_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def linger_left(self) -> float:
        """How much longer to wait for a fuller batch (0: send now): while fewer than
        a full batch are pending and the oldest of them is younger than the linger."""
        linger = self.policy.linger
        if (not linger or self.first_pending_at is None
                or len(self.pending) >= self.policy.max_batch_lines):
            return 0.0
        return max(0.0, self.first_pending_at + linger - self.clock.seconds())

    def requeue(self, items: list) -> None:
        """Put unacknowledged items back at the head, in their order; they go
        again without lingering."""
        self.pending.extendleft(reversed(items))
        self.first_pending_at = None

    def take_batch(self) -> list:
        batch: list = []
        size = 0
        pending = self.pending
        policy = self.policy
        while pending and len(batch) < policy.max_batch_lines:
            item = pending[0]
            if not item.current:
                pending.popleft()
                continue
            if batch and size + len(item.line) > policy.max_batch_bytes:
                break
            pending.popleft()
            batch.append(item)
            size += len(item.line)
        return batch

    def report(self, items: list, replies: list[Reply]) -> None:
        try:
            self.sink(items, replies)
        except Exception:
            self.log.failure("the sink of {destination} failed on {count} replies",
                             destination=self.destination, count=len(replies))

    def schedule_retry(self, retry: Callable[[], None], reason: str) -> None:
        self.failures += 1
        delay = self.policy.backoff.delay(self.failures, self.random)
        self.log.warn("delivery to {destination} failed ({reason}); {count} events wait,"
                      " retry {attempt} in {delay:.1f}s", destination=self.destination,
                      reason=reason, count=len(self.pending), attempt=self.failures, delay=delay)
        self.timer = self.clock.callLater(delay, retry)


def _describe(failure: Failure) -> str:
    return f"{type(failure.value).__name__}: {failure.getErrorMessage()}"


def _normalize(replies) -> list[Reply]:
    out = []
    for reply in replies:
        if isinstance(reply, DeliveryResult):
            reply = Reply(reply)
        elif not isinstance(reply, Reply):
            raise DeliveryProtocolError(f"reply {reply!r:.80} is not a delivery result")
        out.append(reply)
    return out


def build_machine():
    m = TypeMachineBuilder(_Inputs, QueueCore)
    idle = m.state("idle")
    connecting = m.state("connecting")
    ready = m.state("ready")
    sending = m.state("sending")
    awaiting_ack = m.state("awaiting_ack")
    backing_off = m.state("backing_off")
    stopped = m.state("stopped")

    def connect(q: _Inputs, s: QueueCore) -> None:
        s.cancel_timer()
        d = maybeDeferred(s.connector.connect, s.destination)
        d.addTimeout(s.policy.connect_timeout, s.clock)

        def stale(channel: IDeliveryChannel) -> None:
            channel.close()  # arrived after the attempt was abandoned

        s.expect(d, q._connected, q._connect_failed, stale)

    @idle.upon(_Inputs.wake).to(connecting)
    def idle_wake(q: _Inputs, s: QueueCore) -> None:
        connect(q, s)

    @backing_off.upon(_Inputs._retry).to(connecting)
    def retry(q: _Inputs, s: QueueCore) -> None:
        s.timer = None
        connect(q, s)

    @connecting.upon(_Inputs._connected).to(ready)
    def connected(q: _Inputs, s: QueueCore, channel: IDeliveryChannel) -> None:
        s.channel = channel
        q.wake()  # runs once this transition is done

    @connecting.upon(_Inputs._connect_failed).to(backing_off)
    def connect_failed(q: _Inputs, s: QueueCore, failure: Failure) -> None:
        s.schedule_retry(q._retry, f"connect: {_describe(failure)}")

    @ready.upon(_Inputs.wake).to(sending)
    def send(q: _Inputs, s: QueueCore) -> None:
        s.cancel_timer()
        left = s.linger_left()
        if left > 0:
            if s.linger_timer is None or not s.linger_timer.active():
                s.linger_timer = s.clock.callLater(left, q.wake)
            q._linger()
            return
        s.cancel_linger()
        s.batch = s.take_batch()
        if not s.pending:
            s.first_pending_at = None
        if not s.batch:
            q._nothing_to_send()
            return
        try:
            submission = s.channel.send_batch([item.line for item in s.batch])
        except Exception:
            q._send_failed(Failure())
            return
        s.submission = submission
        sent = submission.sent
        sent.addTimeout(s.policy.send_timeout, s.clock)
        s.expect(sent, lambda _: q._sent(), q._send_failed)

    sending.upon(_Inputs._linger).to(ready).returns(None)

    # a flush: what wake does, and a destination backing off is tried at once
    idle.upon(_Inputs.hurry).to(connecting)(idle_wake)
    ready.upon(_Inputs.hurry).to(sending)(send)

    @backing_off.upon(_Inputs.hurry).to(connecting)
    def retry_now(q: _Inputs, s: QueueCore) -> None:
        connect(q, s)  # cancels the back-off timer first

    @sending.upon(_Inputs._nothing_to_send).to(ready)
    @awaiting_ack.upon(_Inputs._acked).to(ready)
    def now_ready(q: _Inputs, s: QueueCore, replies: list[Reply] | None = None) -> None:
        if replies is not None:
            batch, s.batch, s.submission = s.batch, [], None
            s.failures = 0
            s.log.debug("{destination} acknowledged {count} events",
                        destination=s.destination, count=len(batch))
            s.report(batch, replies)
        if s.pending:
            q.wake()  # stale items are skipped there; none left leads back here
        else:
            s.timer = s.clock.callLater(s.policy.idle_timeout, q._idle_expired)

    @sending.upon(_Inputs._sent).to(awaiting_ack)
    def await_ack(q: _Inputs, s: QueueCore) -> None:
        replies = s.submission.replies
        replies.addTimeout(s.policy.ack_timeout, s.clock)
        expected = len(s.batch)

        def answered(values):
            try:
                values = _normalize(values)
            except DeliveryProtocolError:
                q._ack_failed(Failure())
                return
            if len(values) == expected:
                q._acked(values)
            elif len(values) < expected:
                q._partially_acked(values)
            else:
                q._ack_failed(Failure(DeliveryProtocolError(
                    f"{len(values)} replies for a batch of {expected} events")))

        s.expect(replies, answered, q._ack_failed)

    @sending.upon(_Inputs._send_failed).to(backing_off)
    @awaiting_ack.upon(_Inputs._ack_failed).to(backing_off)
    def failed(q: _Inputs, s: QueueCore, failure: Failure) -> None:
        s.abandon()
        s.close_channel()
        batch, s.batch = s.batch, []
        s.requeue(batch)
        s.schedule_retry(q._retry, _describe(failure))

    @awaiting_ack.upon(_Inputs._partially_acked).to(backing_off)
    def partially_acked(q: _Inputs, s: QueueCore, replies: list[Reply]) -> None:
        s.abandon()
        s.close_channel()
        batch, s.batch = s.batch, []
        s.failures = 0  # progress was made: start the back-off afresh
        s.report(batch[:len(replies)], replies)
        s.requeue(batch[len(replies):])
        s.schedule_retry(q._retry, f"only {len(replies)} of {len(batch)} events acknowledged")

    @ready.upon(_Inputs._idle_expired).to(idle)
    def idle_expired(q: _Inputs, s: QueueCore) -> None:
        s.timer = None
        s.close_channel()

    for busy in (connecting, sending, awaiting_ack, backing_off):
        busy.upon(_Inputs.wake).loop().returns(None)
    for busy in (connecting, sending, awaiting_ack):
        busy.upon(_Inputs.hurry).loop().returns(None)

    @idle.upon(_Inputs.stop).to(stopped)
    @connecting.upon(_Inputs.stop).to(stopped)
    @ready.upon(_Inputs.stop).to(stopped)
    @sending.upon(_Inputs.stop).to(stopped)
    @awaiting_ack.upon(_Inputs.stop).to(stopped)
    @backing_off.upon(_Inputs.stop).to(stopped)
    def stop(q: _Inputs, s: QueueCore) -> None:
        s.cancel_timer()
        s.cancel_linger()
        s.abandon()
        s.close_channel()
        batch, s.batch = s.batch, []
        s.requeue(batch)

    for name in ("wake", "hurry", "stop", "_nothing_to_send", "_linger", "_retry", "_idle_expired",
                 "_sent"):
        stopped.upon(getattr(_Inputs, name)).loop().returns(None)
    for name in ("_connected", "_connect_failed", "_send_failed", "_acked", "_partially_acked",
                 "_ack_failed"):
        stopped.upon(getattr(_Inputs, name)).loop().returns(None)

    return m.build()
