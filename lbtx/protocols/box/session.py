"""The server end of a box connection, sans-I/O (docs/protocol.md §4-§6).

:class:`BoxServerSession` turns the client's bytes into actions: a
:class:`~lbtx.protocols.actions.Send` of the welcome, a
:class:`~lbtx.protocols.actions.Handle` per event batch, error replies for bad
requests, and a final :class:`~lbtx.protocols.actions.Close` for a broken stream,
a failed handshake or a misbehaving client. It does the handshake and checks
requests; the adapter runs the handler and keeps the answers in order.
"""

from __future__ import annotations

from zope.interface import implementer

from lbtx.protocols.actions import Action, Close, Handle, Ready, Send
from lbtx.protocols.box.codec import DEFAULT_MAX_FRAME, MAGIC, BoxDecoder
from lbtx.protocols.box.messages import (
    CONNECTION_ERROR_ID, DEFAULT_MAX_BATCH, PROTOCOL_VERSIONS, BatchAck, ErrorCode, ErrorReply,
    EventBatch, Hello, MessageError, Result, Welcome, choose_version, decode_request,
    encode_message)
from lbtx.protocols.errors import FrameError
from lbtx.protocols.interfaces import IServerSession
from lbtx.protocols.sniff import Framing

__all__ = ["BoxServerSession", "MAX_REASON"]

#: Longest reason text sent per event (longer ones are cut), so that an ack of a
#: full batch always fits in a frame.
MAX_REASON = 1024


@implementer(IServerSession)
class BoxServerSession:
    """One client's box conversation, as seen by the server.

    :param max_frame: largest frame accepted (and announced in the welcome).
    :param max_batch: most events per batch (announced in the welcome).
    :param versions: protocol versions offered.
    :param agent: the server's name and version, for the welcome.
    """

    framing = Framing.BOX

    def __init__(self, *, max_frame: int = DEFAULT_MAX_FRAME, max_batch: int = DEFAULT_MAX_BATCH,
                 versions: tuple[int, ...] = PROTOCOL_VERSIONS, agent: str = ""):
        self.max_frame = max_frame
        self.max_batch = max_batch
        self.versions = versions
        self.agent = agent
        #: the version agreed in the handshake, None before it
        self.version: int | None = None
        self._decoder = BoxDecoder(max_frame=max_frame, preamble=MAGIC)
        self._outstanding: set[int] = set()
        self._magic_sent = False
        self._closed = False

    def feed(self, data: bytes) -> list[Action]:
        if self._closed:
            return []
        error = None
        try:
            boxes = self._decoder.feed(data)
        except FrameError as e:
            boxes, error = e.decoded, e
        actions: list[Action] = []
        for box in boxes:
            actions += self._request(box)
            if self._closed:
                return actions
        if error is not None:
            actions.append(self._close(ErrorReply(CONNECTION_ERROR_ID, ErrorCode.FRAME_ERROR,
                                                  error.reason),
                                       f"malformed box stream: {error}"))
        return actions

    def ack(self, request_id: int, results: list[Result]) -> bytes:
        self._outstanding.discard(request_id)
        results = [r if len(r.reason) <= MAX_REASON and len(r.detail) <= MAX_REASON else
                   Result(r.code, r.reason[:MAX_REASON], r.detail[:MAX_REASON]) for r in results]
        return self._encode(BatchAck(request_id, results))

    def fail(self, request_id: int, code: ErrorCode, message: str,
             errno_value: int | None = None) -> bytes:
        self._outstanding.discard(request_id)
        return self._encode(ErrorReply(request_id, code, message[:MAX_REASON]))

    def end(self) -> str | None:
        try:
            self._decoder.finish()
        except FrameError as e:
            return e.reason
        return None

    # --- internals ----------------------------------------------------------------

    def _encode(self, message) -> bytes:
        data = encode_message(message, max_frame=max(self.max_frame, DEFAULT_MAX_FRAME))
        if not self._magic_sent:
            self._magic_sent = True
            return MAGIC + data
        return data

    def _close(self, reply: ErrorReply, reason: str) -> Close:
        self._closed = True
        return Close(self._encode(reply), reason)

    def _request(self, box) -> list[Action]:
        try:
            request = decode_request(box, max_batch=self.max_batch)
        except MessageError as e:
            if e.request_id is None:
                return [self._close(ErrorReply(CONNECTION_ERROR_ID, e.code, e.reason),
                                    f"bad request: {e.reason}")]
            if self.version is None:
                if box.get("_command") != b"hello":
                    return [self._before_handshake(e.request_id)]
                return [self._close(ErrorReply(e.request_id, e.code, e.reason),
                                    f"bad hello: {e.reason}")]
            return [Send(self._encode(ErrorReply(e.request_id, e.code, e.reason)))]
        if isinstance(request, Hello):
            return self._hello(request)
        if self.version is None:
            return [self._before_handshake(request.request_id)]
        assert isinstance(request, EventBatch)
        if request.request_id in self._outstanding:
            message = f"request id {request.request_id} reused while outstanding"
            return [self._close(ErrorReply(CONNECTION_ERROR_ID, ErrorCode.BAD_REQUEST, message),
                                message)]
        self._outstanding.add(request.request_id)
        return [Handle(request.request_id, request.lines)]

    def _before_handshake(self, request_id: int) -> Close:
        return self._close(ErrorReply(request_id, ErrorCode.HANDSHAKE_REQUIRED,
                                      "the first request must be hello"),
                           "request before the handshake")

    def _hello(self, hello: Hello) -> list[Action]:
        if self.version is not None:
            return [Send(self._encode(ErrorReply(hello.request_id, ErrorCode.BAD_REQUEST,
                                                 "hello already received")))]
        version = choose_version(hello.versions, self.versions)
        if version is None:
            ours = ", ".join(map(str, self.versions))
            theirs = ", ".join(map(str, hello.versions))
            message = (f"no common protocol version: this server speaks {ours}, "
                       f"the client offered {theirs}")
            return [self._close(ErrorReply(hello.request_id, ErrorCode.UNSUPPORTED_VERSION,
                                           message, self.versions), message)]
        self.version = version
        welcome = Welcome(hello.request_id, version, self.agent, self.max_frame, self.max_batch)
        return [Send(self._encode(welcome)), Ready(self.framing.value, version)]
