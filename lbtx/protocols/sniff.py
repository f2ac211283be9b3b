"""Which framing a connection speaks, told from its first bytes (docs/protocol.md §7).

The framings start differently, so the first byte decides:

============================  ==============================================
first bytes                   framing
============================  ==============================================
``0x89 "LBTX" CR LF 0x1A``    the box protocol (:data:`~.box.codec.MAGIC`)
space or digit                legacy interlogger frame (16-character header)
``DGLOG``                     legacy local-logger frame
============================  ==============================================

:func:`sniff` looks at as many bytes as it has (up to a frame header), so bytes
that no accepted framing can start with are refused early. It decides as soon as
only one accepted framing fits; the chosen decoder checks the rest.
"""

from __future__ import annotations

import enum
import re
from typing import Collection

from lbtx.protocols.box.codec import MAGIC
from lbtx.protocols.errors import FrameError
from lbtx.protocols.legacy_framing.dglog import DGLOG_MAGIC
from lbtx.protocols.legacy_framing.interlogger import HEADER_SIZE as IL_HEADER_SIZE

__all__ = ["Framing", "sniff"]

_IL_PARTIAL_RE = re.compile(rb" *[0-9]*")


class Framing(str, enum.Enum):
    """A framing a listening port may accept."""

    BOX = "box"
    LEGACY_INTERLOGGER = "legacy-interlogger"
    DGLOG = "dglog"


def _fits(framing: Framing, prefix: bytes) -> bool:
    if framing is Framing.BOX:
        return prefix[:len(MAGIC)] == MAGIC[:len(prefix)]
    if framing is Framing.DGLOG:
        return prefix[:len(DGLOG_MAGIC)] == DGLOG_MAGIC[:len(prefix)]
    head = prefix[:IL_HEADER_SIZE - 1]
    if not _IL_PARTIAL_RE.fullmatch(head):
        return False
    return len(prefix) < IL_HEADER_SIZE or prefix[IL_HEADER_SIZE - 1:IL_HEADER_SIZE] == b"\n"


def sniff(prefix: bytes, accept: Collection[Framing] = tuple(Framing)) -> Framing | None:
    """The framing of a stream that starts with ``prefix``, or None if more bytes
    are needed to tell.

    :raises FrameError: no framing in ``accept`` starts with these bytes.
    """
    if not prefix:
        return None
    fitting = [f for f in accept if _fits(f, prefix)]
    if not fitting:
        names = ", ".join(f.value for f in accept)
        raise FrameError(f"unrecognised first bytes {prefix[:16]!r}: not {names}", offset=0)
    return fitting[0] if len(fitting) == 1 else None
