"""The two seams of the intake protocols: what handles a batch, and what speaks a framing."""

from __future__ import annotations

from zope.interface import Attribute, Interface

__all__ = ["IBatchHandler", "IServerSession"]


class IBatchHandler(Interface):
    """Stores the events that arrive on a store or logger port (the intake service,
    the local logger's spool writer, a test fake)."""

    def handle_batch(peer_identity, lines):
        """Process the events of one request, in order.

        :param peer_identity: who is on the other end (``unix:NAME``, a certificate
            subject, a configured identity, or ``anonymous``); a ``str``.
        :param lines: the events as ULM lines without line feeds, ``list[bytes]``.
            A line may be anything: parsing and validating it is the handler's job,
            and a line that fails gets :attr:`ResultCode.INVALID` with the reason.
        :return: a Deferred firing, **only after every accepted event is
            committed** (on disk, in the database), with one
            :class:`~lbtx.protocols.box.messages.Result` per line in the same
            order. It fails when the batch as a whole could not be processed (the
            database is down, the disk is full); the peer then gets a retryable
            error and nothing of the batch counts as acknowledged. An ``OSError``
            carries its ``errno`` to DGLOG producers.

        Requests of one connection are handed over one at a time: the next call
        for the same connection comes only after the previous Deferred fired.
        """


class IServerSession(Interface):
    """The server end of one framing on one connection, sans-I/O: bytes in,
    actions (:mod:`lbtx.protocols.actions`) out."""

    framing = Attribute("The :class:`~lbtx.protocols.sniff.Framing` this session speaks.")

    def feed(data):
        """Add received bytes; return the actions they cause, in order.

        Never raises: bad input becomes a final ``Close`` action, after which
        every call returns ``[]``.
        """

    def ack(request_id, results):
        """The bytes that answer ``Handle(request_id, ...)`` with its results."""

    def fail(request_id, code, message, errno_value=None):
        """The bytes that answer a ``Handle`` whose processing failed as a whole
        with the :class:`~lbtx.protocols.box.messages.ErrorCode` ``code``;
        ``errno_value`` is the failure's errno, if it had one."""

    def end():
        """The connection ended: a description of the incomplete frame it ended
        in, or None if it ended between frames."""
