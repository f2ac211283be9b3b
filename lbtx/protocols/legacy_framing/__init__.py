"""The upstream framings lbtx accepts beside its box protocol (formats.md §4, §5.12).

:mod:`~.interlogger` is the interlogger→server store frame and its reply;
:mod:`~.dglog` is the local logger's ``DGLOG`` input frame and its answer;
:mod:`~.codes` holds the upstream reply and error codes they carry. All are
sans-I/O: bytes in, values out, :class:`~lbtx.protocols.errors.FrameError` for
bad input.
"""

from lbtx.protocols.legacy_framing.dglog import (
    DglogAnswerDecoder, DglogDecoder, DglogFrameError, encode_dglog, encode_dglog_answer)
from lbtx.protocols.legacy_framing.interlogger import (
    ILReply, ILReplyDecoder, ILRequestDecoder, ILBodyError, encode_il_reply, encode_il_request)

__all__ = ["DglogAnswerDecoder", "DglogDecoder", "DglogFrameError", "encode_dglog",
           "encode_dglog_answer", "ILReply", "ILReplyDecoder", "ILRequestDecoder",
           "ILBodyError", "encode_il_reply", "encode_il_request"]
