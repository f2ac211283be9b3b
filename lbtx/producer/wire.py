"""A blocking box-protocol client on a plain socket, for programs without a reactor.

:class:`BlockingConnection` connects (Unix socket or TCP), shakes hands, and
sends batches of events: one request per ``max_batch`` events, a few requests
pipelined, the answers read in request order; every socket operation is bounded
by ``timeout``. The codec is the sans-I/O one of
:mod:`lbtx.protocols.box`, so the bytes are those of the Twisted client.
"""

from __future__ import annotations

import socket
import time
from collections import deque
from typing import Sequence

from lbtx import __version__
from lbtx.producer.address import Address
from lbtx.producer.errors import UnavailableError
from lbtx.protocols.box.codec import DEFAULT_MAX_FRAME, MAGIC, BoxDecoder
from lbtx.protocols.box.messages import (EVENTS, HELLO, BatchAck, ErrorReply, EventBatch, Hello,
                                         Result, Welcome, decode_reply, encode_message)
from lbtx.protocols.errors import FrameError

__all__ = ["BlockingConnection", "DEFAULT_TIMEOUT", "PIPELINE"]

#: Client timeouts default to 120 s (formats.md §12.1).
DEFAULT_TIMEOUT = 120.0
#: Most requests one connection has on the wire unanswered (the server reads up
#: to 8 ahead before it pauses, ServerLimits.max_pending).
PIPELINE = 4


class BlockingConnection:
    """One connection to a logger or server; not thread-safe.

    :raises UnavailableError: from every method, for a connection that cannot be
        made, breaks, times out, or an error box (``.code`` set).
    """

    def __init__(self, address: Address, *, timeout: float = DEFAULT_TIMEOUT):
        self.address = address
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._decoder: BoxDecoder | None = None
        self._boxes: deque = deque()  # decoded replies not yet taken
        self._next_id = 1
        self.max_batch = 1
        self.max_frame = DEFAULT_MAX_FRAME

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Connect and shake hands (does nothing if connected)."""
        if self._sock is not None:
            return
        deadline = time.monotonic() + self.timeout
        try:
            if self.address.path is not None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.address.path)
            else:
                sock = socket.create_connection((self.address.host, self.address.port),
                                                timeout=self.timeout)
                # each request is one write; never hold it back waiting for an ACK
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as e:
            raise UnavailableError(f"cannot connect to {self.address}: {e}") from e
        self._sock = sock
        self._decoder = BoxDecoder(max_frame=DEFAULT_MAX_FRAME, preamble=MAGIC)
        self._boxes.clear()
        welcome = self._exchange(Hello(self._take_id(), agent=f"lbtx-producer/{__version__}"),
                                 HELLO, deadline, preamble=MAGIC)
        assert isinstance(welcome, Welcome)
        self.max_batch = welcome.max_batch
        self.max_frame = welcome.max_frame

    def send(self, lines: Sequence[bytes]) -> list[Result]:
        """Send ``lines`` (ULM records without LF); one result per line, in order.

        More lines than the receiver's ``max_batch`` go as several requests,
        pipelined: up to :data:`PIPELINE` requests are on the wire before the
        first answer is awaited, so a long list costs about one round trip per
        :data:`PIPELINE` batches. Each answer is awaited for at most ``timeout``.
        If anything fails with requests still unanswered the connection is closed
        (their answers must not be taken for a later request's).
        """
        self.connect()
        lines = list(lines)
        step = max(1, self.max_batch)
        chunks = [lines[i:i + step] for i in range(0, len(lines), step)]
        results: list[Result] = []
        waiting: deque[tuple[int, int]] = deque()  # (request id, events) sent, unanswered
        sent = 0
        try:
            while sent < len(chunks) or waiting:
                frames = []
                while sent < len(chunks) and len(waiting) < PIPELINE:
                    request_id = self._take_id()
                    frames.append(encode_message(EventBatch(request_id, chunks[sent]),
                                                 max_frame=self.max_frame))
                    waiting.append((request_id, len(chunks[sent])))
                    sent += 1
                if frames:
                    self._write(b"".join(frames))
                request_id, count = waiting.popleft()
                ack = self._receive(EVENTS, request_id, time.monotonic() + self.timeout)
                assert isinstance(ack, BatchAck)
                if len(ack.results) != count:
                    self.close()
                    raise UnavailableError(f"{self.address} answered {len(ack.results)} "
                                           f"results for {count} events")
                results += ack.results
        except UnavailableError:
            if waiting:  # answers still due: the connection cannot be reused
                self.close()
            raise
        return results

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # --- one request -------------------------------------------------------

    def _take_id(self) -> int:
        request_id, self._next_id = self._next_id, self._next_id + 1
        return request_id

    def _exchange(self, message, command: str, deadline: float, preamble: bytes = b""):
        self._write(preamble + encode_message(message, max_frame=self.max_frame))
        return self._receive(command, message.request_id, deadline)

    def _write(self, data: bytes) -> None:
        try:
            self._sock.settimeout(self.timeout)
            self._sock.sendall(data)
        except OSError as e:
            self.close()
            raise UnavailableError(f"{self.address}: {e or type(e).__name__}") from e

    def _receive(self, command: str, request_id: int, deadline: float):
        """The reply to ``request_id`` (or a connection-level error); raise
        UnavailableError for an error reply, a broken or late answer."""
        try:
            while not self._boxes:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout("no answer in time")
                self._sock.settimeout(remaining)
                data = self._sock.recv(65536)
                if not data:
                    raise ConnectionError("the connection was closed")
                self._boxes.extend(self._decoder.feed(data))
            reply = decode_reply(self._boxes.popleft(), command)
            if reply.request_id not in (request_id, 0):
                raise ValueError(f"answer to request {reply.request_id}, "
                                 f"expected one to {request_id}")
        except (OSError, FrameError, ValueError) as e:
            self.close()
            raise UnavailableError(f"{self.address}: {e or type(e).__name__}") from e
        if isinstance(reply, ErrorReply):
            if reply.request_id == 0 or not reply.retryable and command == HELLO:
                self.close()
            raise UnavailableError(f"{self.address}: {reply.code.value}: {reply.message}",
                                   code=reply.code)
        return reply
