"""The box protocol as a delivery transport (lbtx.interlogger.box_channel), over
a real box client and server connected in memory (twisted.test.iosim)."""

from __future__ import annotations

from twisted.internet.defer import succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from lbtx.interlogger.box_channel import (BoxDeliveryChannel, BoxDeliveryConnector,
                                          endpoint_description)
from lbtx.interlogger.interfaces import (DeliveryResult, Destination, IDeliveryChannel,
                                         IDeliveryConnector, Reply)
from lbtx.interlogger.queue import DeliveryQueue, QueuePolicy
from lbtx.protocols.box.server import ServerLimits

from box_support import RecordingHandler, connected

DEST = Destination("lb.example.org", 9001)


class BoxChannelTests(SynchronousTestCase):
    def setUp(self):
        self.handler = RecordingHandler()
        self.client, self.server, self.pump = connected(self.handler,
                                                        limits=ServerLimits(max_batch=3))
        self.pump.flush()
        self.channel = BoxDeliveryChannel(self.client)

    def test_provides_the_interfaces(self):
        """The channel and the connector provide the delivery interfaces."""
        verifyObject(IDeliveryChannel, self.channel)
        verifyObject(IDeliveryConnector, BoxDeliveryConnector(object(), clock=Clock()))

    def test_results_map_by_name_and_big_batches_are_split(self):
        """A batch over the server's max_batch goes as several requests; the replies
        come back as one list, in order, with the server's reasons."""
        lines = [b"stored a", b"duplicate b", b"unknown_job c not yet", b"not_owner d",
                 b"exists e", b"invalid f bad key", b"stored g"]
        submission = self.channel.send_batch(lines)
        self.successResultOf(submission.sent)
        self.pump.flush()
        replies = self.successResultOf(submission.replies)
        self.assertEqual([r.result for r in replies], [
            DeliveryResult.STORED, DeliveryResult.DUPLICATE, DeliveryResult.UNKNOWN_JOB,
            DeliveryResult.NOT_OWNER, DeliveryResult.EXISTS, DeliveryResult.INVALID,
            DeliveryResult.STORED])
        self.assertEqual(replies[2], Reply(DeliveryResult.UNKNOWN_JOB, "c not yet"))
        self.assertEqual([len(c.lines) for c in self.handler.calls], [3, 3, 1])

    def test_cancel_closes_the_connection(self):
        """Cancelling the replies (the queue's deadline) abandons the requests and
        closes the connection."""
        self.handler.auto = False
        submission = self.channel.send_batch([b"a"])
        self.pump.flush()
        submission.replies.cancel()
        self.failureResultOf(submission.replies)
        self.pump.flush()
        self.assertTrue(self.client.transport.disconnected)

    def test_queue_over_the_box_protocol(self):
        """A delivery queue delivers through the box channel like through the fake."""

        @implementer(IDeliveryConnector)
        class Connector:
            def connect(inner, destination):
                return succeed(self.channel)

        got = []
        queue = DeliveryQueue(DEST, Connector(), clock=Clock(), policy=QueuePolicy(),
                              sink=lambda items, replies: got.extend(replies))
        self.addCleanup(queue.stop)

        class Item:
            current = True

            def __init__(self, line):
                self.line = line

        queue.put([Item(b"stored x"), Item(b"unknown_job y")])
        self.pump.flush()
        self.assertEqual([r.result for r in got], [DeliveryResult.STORED,
                                                   DeliveryResult.UNKNOWN_JOB])

    def test_endpoint_description(self):
        """Endpoint strings for host names and IPv6 addresses."""
        self.assertEqual(endpoint_description("tcp:{host}:{port}", DEST), "tcp:lb.example.org:9001")
        self.assertEqual(endpoint_description("tls:{host}:{port}", Destination("::1", 9001)),
                         "tls:\\:\\:1:9001")
