"""A blocking box-protocol client on a plain socket, for programs without a reactor.

:class:`BlockingConnection` connects (Unix socket or TCP), shakes hands, and
sends batches of events one request at a time, waiting for the answer; every
socket operation is bounded by ``timeout``. The codec is the sans-I/O one of
:mod:`lbtx.protocols.box`, so the bytes are those of the Twisted client.
"""

from __future__ import annotations

import socket
import time
from typing import Sequence

from lbtx import __version__
from lbtx.producer.address import Address
from lbtx.producer.errors import UnavailableError
from lbtx.protocols.box.codec import DEFAULT_MAX_FRAME, MAGIC, BoxDecoder
from lbtx.protocols.box.messages import (EVENTS, HELLO, BatchAck, ErrorReply, EventBatch, Hello,
                                         Result, Welcome, decode_reply, encode_message)
from lbtx.protocols.errors import FrameError

__all__ = ["BlockingConnection", "DEFAULT_TIMEOUT"]

#: Client timeouts default to 120 s (formats.md §12.1).
DEFAULT_TIMEOUT = 120.0


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
        except OSError as e:
            raise UnavailableError(f"cannot connect to {self.address}: {e}") from e
        self._sock = sock
        self._decoder = BoxDecoder(max_frame=DEFAULT_MAX_FRAME, preamble=MAGIC)
        welcome = self._exchange(Hello(self._take_id(), agent=f"lbtx-producer/{__version__}"),
                                 HELLO, deadline, preamble=MAGIC)
        assert isinstance(welcome, Welcome)
        self.max_batch = welcome.max_batch
        self.max_frame = welcome.max_frame

    def send(self, lines: Sequence[bytes]) -> list[Result]:
        """Send ``lines`` (ULM records without LF); one result per line, in order."""
        self.connect()
        results: list[Result] = []
        lines = list(lines)
        step = max(1, self.max_batch)
        for i in range(0, len(lines), step):
            deadline = time.monotonic() + self.timeout
            ack = self._exchange(EventBatch(self._take_id(), lines[i:i + step]), EVENTS, deadline)
            assert isinstance(ack, BatchAck)
            if len(ack.results) != len(lines[i:i + step]):
                self.close()
                raise UnavailableError(f"{self.address} answered {len(ack.results)} results "
                                       f"for {len(lines[i:i + step])} events")
            results += ack.results
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
        try:
            self._sock.sendall(preamble + encode_message(message, max_frame=self.max_frame))
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise socket.timeout("no answer in time")
                self._sock.settimeout(remaining)
                data = self._sock.recv(65536)
                if not data:
                    raise ConnectionError("the connection was closed")
                boxes = self._decoder.feed(data)
                if boxes:
                    reply = decode_reply(boxes[0], command)
                    break
        except (OSError, FrameError, ValueError) as e:
            self.close()
            raise UnavailableError(f"{self.address}: {e or type(e).__name__}") from e
        if isinstance(reply, ErrorReply):
            if reply.request_id == 0 or not reply.retryable and command == HELLO:
                self.close()
            raise UnavailableError(f"{self.address}: {reply.code.value}: {reply.message}",
                                   code=reply.code)
        return reply
