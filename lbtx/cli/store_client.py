"""A small blocking client of the box protocol, for synchronous registration.

``glite-lb-job_reg`` registers a job with the server before it returns (cli.md
§3.1). Until the local logger takes synchronous records, the RegJob goes straight
to the server's store port (the query port plus one, formats.md §1.1) in one
batch, over a plain TCP or Unix socket, the whole exchange (connect, handshake,
batch, acknowledgement) bounded by one deadline. The protocol is that of
docs/protocol.md, through its sans-I/O codec (:mod:`lbtx.protocols.box.codec`,
:mod:`lbtx.protocols.box.messages`); the Twisted client in
:mod:`lbtx.protocols.box.client` is the asynchronous sibling.

:func:`send_events` returns one :class:`~lbtx.protocols.box.messages.Result` per
line; connection failures, timeouts and error replies raise
:class:`~lbtx.cli.client_error.ClientError`. :func:`result_error` turns a refused
result into the error number the legacy library would report.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Sequence

from lbtx import __version__
from lbtx.cli.connection import connect
from lbtx.cli.client_error import ClientError, from_os_error
from lbtx.cli.environment import Address, DEFAULT_SYNC_TIMEOUT
from lbtx.protocols.box.codec import MAGIC, BoxDecoder
from lbtx.protocols.box.messages import (
    EVENTS, HELLO, BatchAck, ErrorCode, ErrorReply, EventBatch, Hello, MessageError,
    Result, ResultCode, Welcome, decode_reply, encode_message)
from lbtx.protocols.errors import FrameError

__all__ = ["send_events", "result_error"]

_RECV = 64 * 1024
#: result code -> errno of the legacy library (formats.md §6.7)
_RESULT_ERRNO = {
    ResultCode.UNKNOWN_JOB: errno.ENOENT,
    ResultCode.NOT_OWNER: errno.EPERM,
    ResultCode.EXISTS: errno.EEXIST,
    ResultCode.INVALID: errno.EINVAL,
}
_REPLY_ERRNO = {
    ErrorCode.TOO_LARGE: errno.E2BIG,
    ErrorCode.TIMEOUT: errno.ETIMEDOUT,
    ErrorCode.INTERNAL: errno.EAGAIN,
    ErrorCode.UNSUPPORTED_VERSION: errno.ENOTSUP,
}


def result_error(result: Result) -> ClientError | None:
    """None for an accepted event, else the error the sender reports."""
    if result.accepted:
        return None
    return ClientError(_RESULT_ERRNO.get(result.code, errno.EINVAL),
                       result.reason or result.code.value)


class _Connection:
    def __init__(self, sock: socket.socket, address: Address, deadline: float):
        self.sock = sock
        self.address = address
        self.deadline = deadline
        self.decoder = BoxDecoder(preamble=MAGIC)
        self.boxes: list = []

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            self.sock.settimeout(_remaining(self.deadline))
            view = view[self.sock.send(view):]

    def reply(self, command: str):
        while not self.boxes:
            self.sock.settimeout(_remaining(self.deadline))
            data = self.sock.recv(_RECV)
            if not data:
                raise ClientError(errno.ECONNRESET, f"{self.address} closed the connection "
                                                    f"before it answered")
            try:
                self.boxes += self.decoder.feed(data)
            except FrameError as e:
                raise ClientError(errno.EPROTO, f"bad answer from {self.address}: {e}") from None
        box = self.boxes.pop(0)
        try:
            return decode_reply(box, command)
        except MessageError as e:
            raise ClientError(errno.EPROTO, f"bad answer from {self.address}: {e.reason}") from None


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def _connect(address: Address, deadline: float):
    return connect(address, deadline)


def _check(reply, what: str):
    if isinstance(reply, ErrorReply):
        code = _REPLY_ERRNO.get(reply.code, errno.EINVAL)
        raise ClientError(code, f"{what}: {reply.code.value}: {reply.message}")
    return reply


def send_events(address: Address, lines: Sequence[bytes], *,
                timeout: float = DEFAULT_SYNC_TIMEOUT) -> list[Result]:
    """Deliver ULM ``lines`` (without line feeds) as one batch; return their results.

    :raises ClientError: the connection failed or timed out, the server refused the
        handshake or the batch, or its answer is not the protocol's.
    """
    deadline = time.monotonic() + timeout
    try:
        sock = _connect(address, deadline)
    except TimeoutError:
        raise ClientError(errno.ETIMEDOUT, f"connecting to {address}") from None
    except OSError as e:
        raise from_os_error(e, f"connecting to {address}") from None
    try:
        with sock:
            conn = _Connection(sock, address, deadline)
            # the hello and the batch go out at once; the answers come in order
            conn.send(MAGIC + encode_message(Hello(1, agent=f"lbtx-cli/{__version__}"))
                      + encode_message(EventBatch(2, list(lines))))
            welcome = _check(conn.reply(HELLO), "handshake")
            if not isinstance(welcome, Welcome):
                raise ClientError(errno.EPROTO, f"{address} answered the hello wrongly")
            ack = _check(conn.reply(EVENTS), "events")
            if not isinstance(ack, BatchAck) or len(ack.results) != len(lines):
                raise ClientError(errno.EPROTO, f"{address} answered the batch wrongly")
            return list(ack.results)
    except TimeoutError:
        raise ClientError(errno.ETIMEDOUT, f"no answer from {address} within "
                                           f"{timeout:g} s") from None
    except OSError as e:
        raise from_os_error(e, f"talking to {address}") from None
