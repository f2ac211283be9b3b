"""The error types of lbtx's pure codecs.

Every parser in lbtx (ULM lines, job ids, sequence codes, event validation) raises
:class:`LBFormatError` or a subclass for bad input, and nothing else. The message
says where and why; the attributes carry the same facts for programs.
"""

from __future__ import annotations


class LBFormatError(ValueError):
    """Malformed input: a value, field or record that lbtx cannot accept.

    :ivar reason: what is wrong, in words.
    :ivar code: an upstream-compatible error class name (``BROKEN_ULM``,
        ``KEY_DUPLICITY``, ``KEY_MISUSE``, ``MSG_INCOMPLETE``, ``EVENT_UNDEF``,
        ``BAD_VALUE``, ``BAD_JOBID``, ``BAD_SEQCODE``, ``TOO_LONG``).
    :ivar key: the ULM key (or attribute) concerned, if any.
    :ivar position: byte offset in the input where the problem was found, if known.
    """

    def __init__(self, reason: str, *, code: str = "BAD_VALUE", key: str | None = None,
                 position: int | None = None):
        self.reason = reason
        self.code = code
        self.key = key
        self.position = position
        where = []
        if key is not None:
            where.append(f"key {key}")
        if position is not None:
            where.append(f"offset {position}")
        super().__init__(f"{reason} ({', '.join(where)})" if where else reason)


class JobIdError(LBFormatError):
    """A job id or notification id that does not parse."""

    def __init__(self, reason: str, **kw):
        kw.setdefault("code", "BAD_JOBID")
        super().__init__(reason, **kw)


class SeqCodeError(LBFormatError):
    """A sequence code that does not parse."""

    def __init__(self, reason: str, **kw):
        kw.setdefault("code", "BAD_SEQCODE")
        super().__init__(reason, **kw)


class ULMError(LBFormatError):
    """A ULM line that is not a valid event record."""
