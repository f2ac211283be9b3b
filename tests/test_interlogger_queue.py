"""Delivery queues (lbtx.interlogger.queue) over the in-memory fake server, on a Clock.

Nothing sleeps: time moves only when a test advances the Clock, so deadlines and
back-off are checked exactly, and "does not delay" means "happens at time 0".
"""

from __future__ import annotations

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from lbtx.interlogger.backoff import Backoff
from lbtx.interlogger.interfaces import (DeliveryResult, Destination, IDeliveryChannel,
                                         IDeliveryConnector, Reply, Submission)
from lbtx.interlogger.queue import DeliveryQueue, QueuePolicy
from lbtx.testing.delivery import FakeNetwork

A = Destination("lb-a.example.org", 9001)
B = Destination("lb-b.example.org", 9001)
POLICY = QueuePolicy(max_batch_lines=10, connect_timeout=5, send_timeout=6, ack_timeout=7,
                     idle_timeout=30, backoff=Backoff(initial=1, factor=2, maximum=16, jitter=0.5))


class Item:
    def __init__(self, n: int, job: str = "https://lb-a.example.org:9000/j1"):
        self.line = f'DG.LLLID={n} DATE=1 DG.JOBID="{job}" N={n}'.encode()
        self.current = True

    def __repr__(self):
        return f"Item({self.line!r})"


class Recorder:
    """The sink: remembers every (item, reply) in the order reported."""

    def __init__(self):
        self.replies: list[tuple[Item, Reply]] = []

    def __call__(self, items, replies):
        assert len(items) == len(replies)
        self.replies.extend(zip(items, replies))

    def items(self) -> list[Item]:
        return [item for item, _ in self.replies]


class QueueTests(SynchronousTestCase):
    def setUp(self):
        self.clock = Clock()
        self.network = FakeNetwork()
        self.sink = Recorder()

    def queue(self, destination=A, policy=POLICY, random=lambda: 0.0) -> DeliveryQueue:
        q = DeliveryQueue(destination, self.network, clock=self.clock, sink=self.sink,
                          policy=policy, random=random)
        self.addCleanup(q.stop)
        return q

    def items(self, n, start=0):
        return [Item(i) for i in range(start, start + n)]

    # --- the fakes ---------------------------------------------------------

    def test_fakes_provide_the_interfaces(self):
        """The fake network and its channels provide the delivery interfaces."""
        verifyObject(IDeliveryConnector, self.network)
        channel = self.successResultOf(self.network.connect(A))
        verifyObject(IDeliveryChannel, channel)

    # --- normal delivery ---------------------------------------------------

    def test_delivers_and_closes_idle_connection(self):
        """Items are sent in one batch over one connection and every reply reaches
        the sink; the idle connection is closed after the idle timeout, leaving no timer."""
        q = self.queue()
        items = self.items(5)
        q.put(items)
        server = self.network.server(A)
        self.assertEqual(self.sink.items(), items)
        self.assertEqual({r.result for _, r in self.sink.replies}, {DeliveryResult.STORED})
        self.assertEqual(len(server.batches), 1)
        self.assertEqual(q.load, 0)
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)  # the idle timer
        self.clock.advance(30)
        self.assertTrue(server.channels[0].closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_batches_and_connection_reuse(self):
        """Batches hold at most max_batch_lines; later items reuse the open connection."""
        q = self.queue()
        server = self.network.server(A)
        server.manual = True
        q.put(self.items(25))
        server.answer_all()
        server.answer_all()
        server.answer_all()
        self.assertEqual([len(b) for b in server.batches], [10, 10, 5])
        q.put(self.items(3, start=100))
        server.answer_all()
        self.assertEqual(len(server.channels), 1)
        self.assertEqual(len(self.sink.replies), 28)

    # --- lingering for fuller batches -------------------------------------

    def test_linger_gathers_a_small_batch(self):
        """With a linger, a small batch waits until its oldest event has been queued
        that long, gathering what arrives meanwhile; then it goes as one batch."""
        q = self.queue(policy=QueuePolicy(max_batch_lines=10, linger=0.02))
        server = self.network.server(A)
        q.put(self.items(1))
        self.clock.advance(0.015)
        q.put(self.items(2, start=1))
        self.assertEqual(server.batches, [])
        self.clock.advance(0.004)
        self.assertEqual(server.batches, [])
        self.clock.advance(0.001)
        self.assertEqual([len(b) for b in server.batches], [3])
        self.assertEqual(len(self.sink.replies), 3)
        q.put(self.items(1, start=3))   # the next batch waits from its own first event
        self.clock.advance(0.019)
        self.assertEqual(len(server.batches), 1)
        self.clock.advance(0.001)
        self.assertEqual([len(b) for b in server.batches], [3, 1])

    def test_linger_does_not_hold_a_full_batch(self):
        """A full batch goes at once; so does the rest once its events have waited."""
        q = self.queue(policy=QueuePolicy(max_batch_lines=10, linger=0.02))
        server = self.network.server(A)
        server.manual = True
        q.put(self.items(13))
        self.assertEqual([len(b) for b in server.batches], [10])
        self.clock.advance(0.03)   # the ack takes longer than the linger
        server.answer_all()
        self.assertEqual([len(b) for b in server.batches], [10, 3])

    def test_resent_events_do_not_linger(self):
        """Events put back after a failed delivery go as soon as the connection is back."""
        q = self.queue(policy=QueuePolicy(max_batch_lines=10, linger=0.02, ack_timeout=7,
                                          backoff=Backoff(initial=1, maximum=1, jitter=0)))
        server = self.network.server(A)
        server.hang = "ack"
        q.put(self.items(2))
        self.clock.advance(0.02)
        self.assertEqual(len(server.batches), 1)
        server.hang = None
        self.clock.advance(7)     # ack timeout: requeued, back-off 1 s
        self.clock.advance(1)     # reconnected: sent at once
        self.assertEqual([len(b) for b in server.batches], [2, 2])
        self.assertEqual(len(self.sink.replies), 2)

    def test_stop_cancels_the_linger(self):
        """Stopping a lingering queue leaves no timer behind."""
        q = self.queue(policy=QueuePolicy(max_batch_lines=10, linger=0.02))
        q.put(self.items(1))
        q.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_stale_items_are_skipped(self):
        """Items no longer current (their spool file was rewound) are not sent."""
        q = self.queue()
        items = self.items(4)
        items[1].current = items[2].current = False
        q.put(items)
        self.assertEqual(self.network.server(A).batches[0], [items[0].line, items[3].line])

    def test_answer_in_time_leaves_no_deadline(self):
        """An acknowledgement just before the deadline is taken, and no deadline timer is left."""
        q = self.queue()
        server = self.network.server(A)
        server.manual = True
        q.put(self.items(2))
        self.clock.advance(6.9)
        server.answer_all()
        self.assertEqual(len(self.sink.replies), 2)
        calls = self.clock.getDelayedCalls()
        self.assertEqual([c.getTime() for c in calls], [6.9 + 30])  # only the idle timer

    # --- deadlines ---------------------------------------------------------

    def test_connect_timeout(self):
        """A connection attempt that hangs is abandoned at the deadline; nothing is
        reported, and the queue connects again after the back-off."""
        q = self.queue()
        server = self.network.server(A)
        server.hang = "connect"
        q.put(self.items(3))
        self.clock.advance(4.9)
        self.assertEqual((server.attempts, q.failures), (1, 0))
        self.clock.advance(0.1)
        self.assertEqual(q.failures, 1)
        self.assertEqual(self.sink.replies, [])
        self.assertEqual(q.load, 3)
        server.hang = None
        self.clock.advance(1)  # back-off 1 s (no jitter)
        self.assertEqual(server.attempts, 2)
        self.assertEqual(len(self.sink.replies), 3)
        self.assertEqual(q.failures, 0)

    def test_send_timeout(self):
        """A batch that cannot be written in time is taken back and sent again later."""
        q = self.queue()
        server = self.network.server(A)
        server.hang = "send"
        q.put(self.items(3))
        self.clock.advance(6)
        self.assertTrue(server.channels[0].closed)
        self.assertEqual((self.sink.replies, q.load, q.failures), ([], 3, 1))
        server.hang = None
        self.clock.advance(1)
        self.assertEqual(len(self.sink.replies), 3)

    def test_ack_timeout(self):
        """A server that takes a batch and never answers: at the ack deadline the
        connection is dropped, the batch kept, and it is sent again after the back-off."""
        q = self.queue()
        server = self.network.server(A)
        server.hang = "ack"
        items = self.items(3)
        q.put(items)
        self.clock.advance(6.9)
        self.assertEqual(q.failures, 0)
        self.clock.advance(0.1)
        self.assertEqual((self.sink.replies, q.load, q.failures), ([], 3, 1))
        self.assertTrue(server.channels[0].closed)
        server.hang = None
        self.clock.advance(1)
        self.assertEqual(self.sink.items(), items)
        self.assertEqual(len(server.batches), 2)

    def test_dropped_connection(self):
        """A connection lost before the answer: the batch is sent again, stored once."""
        q = self.queue()
        server = self.network.server(A)
        server.drop = True
        q.put(self.items(4))
        self.assertEqual(q.failures, 1)
        server.drop = False
        self.clock.advance(1)
        self.assertEqual(len(self.sink.replies), 4)
        self.assertEqual(len(server.stored), 4)

    def test_partial_ack(self):
        """Replies for the first events only: those are reported, the rest sent again
        in order after a short back-off, and each event is stored once."""
        q = self.queue()
        server = self.network.server(A)
        server.drop_after = 3
        items = self.items(5)
        q.put(items)
        self.assertEqual(self.sink.items(), items[:3])
        self.assertEqual(q.load, 2)
        self.clock.advance(1)
        self.assertEqual(self.sink.items(), items)
        self.assertEqual(server.stored, [i.line.split(b" ", 1)[1] for i in items])

    def test_too_many_replies_is_a_protocol_error(self):
        """A channel answering more replies than lines is dropped and the batch resent."""

        @implementer(IDeliveryChannel)
        class Chatty:
            closed = False

            def send_batch(self, lines):
                return Submission(succeed(None), succeed([DeliveryResult.STORED] * (len(lines) + 1)))

            def close(self):
                self.closed = True

        @implementer(IDeliveryConnector)
        class Connector:
            def __init__(self):
                self.channels = []

            def connect(self, destination):
                self.channels.append(Chatty())
                return succeed(self.channels[-1])

        connector = Connector()
        q = DeliveryQueue(A, connector, clock=self.clock, sink=self.sink, policy=POLICY)
        self.addCleanup(q.stop)
        q.put(self.items(2))
        self.assertEqual((self.sink.replies, q.load, q.failures), ([], 2, 1))
        self.assertTrue(connector.channels[0].closed)

    def test_results_are_reported_not_interpreted(self):
        """UNKNOWN_JOB, NOT_OWNER and INVALID replies go to the sink like any other;
        deciding what to do with them is the sink's business."""
        q = self.queue()
        server = self.network.server(A)
        server.unknown_jobs.add("https://lb-a.example.org:9000/j2")
        server.not_owner.add("https://lb-a.example.org:9000/j3")
        server.invalid = lambda line: b"N=3" in line
        items = [Item(1), Item(2, "https://lb-a.example.org:9000/j2"),
                 Item(3), Item(4, "https://lb-a.example.org:9000/j3")]
        q.put(items)
        self.assertEqual([r.result for _, r in self.sink.replies],
                         [DeliveryResult.STORED, DeliveryResult.UNKNOWN_JOB,
                          DeliveryResult.INVALID, DeliveryResult.NOT_OWNER])

    # --- back-off ----------------------------------------------------------

    def test_backoff_grows_exponentially_and_is_capped(self):
        """A destination that is down is retried after 1, 2, 4, 8, 16, 16 ... seconds
        (no jitter), and after a success the back-off starts again at 1 s."""
        q = self.queue()
        server = self.network.server(A)
        server.refuse = True
        q.put(self.items(1))
        delays = []
        for _ in range(7):
            (call,) = self.clock.getDelayedCalls()
            delays.append(call.getTime() - self.clock.seconds())
            self.clock.advance(delays[-1])
        self.assertEqual(delays, [1, 2, 4, 8, 16, 16, 16])
        server.refuse = False
        self.clock.advance(16)
        self.assertEqual((len(self.sink.replies), q.failures), (1, 0))
        server.refuse = True
        self.clock.advance(30)  # the idle connection closes
        q.put(self.items(1, start=50))
        self.assertEqual(self.clock.getDelayedCalls()[0].getTime() - self.clock.seconds(), 1)

    # --- hurry (a flush) -----------------------------------------------------

    def test_hurry_retries_a_destination_backing_off_at_once(self):
        """A queue waiting out its back-off connects at once when hurried, and its
        failed-attempt count goes on (a failure then waits the next, longer delay)."""
        q = self.queue()
        server = self.network.server(A)
        server.refuse = True
        q.put(self.items(2))
        self.clock.advance(1)   # 1st retry fails too: now waiting 2 s
        self.assertEqual((server.attempts, q.failures), (2, 2))
        q.hurry()
        self.assertEqual(server.attempts, 3)   # at once, not after the 2 s
        (call,) = self.clock.getDelayedCalls()   # failed again: the old timer is gone
        self.assertEqual(call.getTime() - self.clock.seconds(), 4)
        server.refuse = False
        q.hurry()
        self.assertEqual((len(self.sink.replies), q.failures), (2, 0))
        self.assertEqual(server.attempts, 4)

    def test_hurry_sends_a_lingering_batch_at_once(self):
        q = self.queue(policy=QueuePolicy(max_batch_lines=10, linger=5))
        server = self.network.server(A)
        q.put(self.items(1))   # connects, then lingers
        self.assertEqual(server.batches, [])
        q.hurry()
        self.assertEqual([len(b) for b in server.batches], [1])
        self.assertEqual(len(self.sink.replies), 1)

    def test_hurry_without_work_or_while_busy_does_nothing(self):
        """An empty queue does not connect; a queue waiting for an answer keeps
        waiting (its batch is not sent twice)."""
        q = self.queue()
        server = self.network.server(A)
        q.hurry()
        self.assertEqual((server.attempts, self.clock.getDelayedCalls()), (0, []))
        server.manual = True
        q.put(self.items(3))
        q.hurry()
        q.hurry()
        self.assertEqual([len(b) for b in server.batches], [3])
        server.answer_all()
        self.assertEqual(len(self.sink.replies), 3)
        q.stop()
        q.hurry()   # stopped: nothing
        self.assertEqual(server.attempts, 1)

    def test_backoff_jitter_is_bounded(self):
        """With jitter the delay lies within [base * (1 - jitter), base] and never
        exceeds the maximum."""
        policy = Backoff(initial=0.5, factor=3, maximum=60, jitter=0.5)
        for attempt in range(1, 40):
            base = min(60, 0.5 * 3 ** (attempt - 1))
            for r in (0.0, 0.25, 0.5, 0.999999):
                delay = policy.delay(attempt, lambda: r)
                self.assertTrue(base * 0.5 <= delay <= base <= 60, (attempt, r, delay))
        self.assertEqual(policy.delay(10**6, lambda: 0.0), 60)
        self.assertRaises(ValueError, Backoff, jitter=1.0)

    def test_jittered_queues_spread_out(self):
        """Two queues that failed together retry at different times."""
        values = iter([0.1, 0.9])
        qa = self.queue(A, random=lambda: next(values))
        qb = self.queue(B, random=lambda: next(values))
        self.network.server(A).refuse = self.network.server(B).refuse = True
        qa.put(self.items(1))
        qb.put(self.items(1))
        times = sorted(c.getTime() for c in self.clock.getDelayedCalls())
        self.assertEqual(times, [1 * (1 - 0.5 * 0.9), 1 * (1 - 0.5 * 0.1)])

    # --- isolation ---------------------------------------------------------

    def test_hanging_destination_does_not_delay_another(self):
        """While A accepts and never answers, B's events are delivered at once, again
        and again; A's only move at its own deadlines."""
        qa, qb = self.queue(A), self.queue(B)
        self.network.server(A).hang = "ack"
        for round_ in range(5):
            qa.put(self.items(2, start=10 * round_))
            qb.put(self.items(2, start=10 * round_))
            self.assertEqual(len(self.sink.replies), 2 * (round_ + 1))  # B's, with no time passing
            self.clock.advance(1)
        self.assertEqual(self.network.server(B).attempts, 1)
        self.assertEqual(qa.load, 10)
        self.assertEqual(len(self.network.server(B).stored), 10)
        self.assertEqual(self.network.server(A).stored, [])

    def test_refusing_destination_does_not_delay_another(self):
        """A destination that is down backs off alone."""
        qa, qb = self.queue(A), self.queue(B)
        self.network.server(A).refuse = True
        qa.put(self.items(3))
        qb.put(self.items(3))
        self.assertEqual(len(self.sink.replies), 3)
        self.assertEqual(qa.load, 3)

    # --- stopping ----------------------------------------------------------

    def test_stop_cancels_and_ignores_late_answers(self):
        """Stopping while awaiting an answer closes the connection and cancels the
        deadline; an answer arriving later is ignored."""
        q = self.queue()
        server = self.network.server(A)
        server.manual = True
        q.put(self.items(2))
        q.stop()
        self.assertTrue(server.channels[0].closed)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        server.answer_all()
        self.assertEqual(self.sink.replies, [])
        q.put(self.items(1, start=9))  # a stopped queue sends nothing
        self.assertEqual(len(server.batches), 1)
