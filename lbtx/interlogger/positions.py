"""Durable "delivered up to here" positions, one small file per spool file.

``<spool>/<stem>.pos`` holds::

    lbtx-position 2
    <job id>
    <offset>            bytes of the event file delivered (always a line boundary)
    <LLLID or ->        DG.LLLID of the line that ends at <offset>
    <CRC-32>            8 hex digits over the four lines above (with their LFs)

It is overwritten in place (one ``pwrite`` at offset 0, then a cut if the file was
longer) and only after the server acknowledged every line before ``offset``; the
positions of one group write share one flush. Overwriting an existing file costs
no new inode, no rename and no directory update (a temporary file and a rename
per position did, and dominated the interlogger's CPU). A crash of the process
leaves the old or the new content (one ``write`` of a few hundred bytes reaches
the page cache whole); a power failure during the flush may leave a mixture,
which the CRC rejects.

The LLLID makes a position checkable: it is trusted only if the line ending at
``offset`` in the event file carries that LLLID. A position that fails the check
or its CRC (the event file is not the one it was written for, it lost its tail in
a power failure, the position file is torn) is replaced by 0: the file is
delivered again from its start and the server drops the duplicates.

Version 1 files (the same four lines, no CRC, written by a temporary file and a
rename) are read as well, and overwritten in version 2 by the next write: an
old spool is upgraded in place, file by file. A ``.pos.tmp`` left by version 1
is removed with its position.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from typing import Sequence

from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from lbtx.logger import layout
from lbtx.logger.durable import GroupSync, sync_files

__all__ = ["Position", "PositionStore", "check_position", "decode_position", "encode_position",
           "position_path", "read_position", "write_positions"]

MAGIC = "lbtx-position 2"
#: The first line of the previous format (no CRC); still read.
MAGIC_V1 = "lbtx-position 1"


@dataclass(frozen=True)
class Position:
    """``offset`` bytes delivered; ``lllid`` of the line ending there (None at 0)."""

    offset: int = 0
    lllid: int | None = None


def position_path(spool_dir: str, stem: str) -> str:
    return os.path.join(spool_dir, stem + layout.POSITION_SUFFIX)


def encode_position(jobid: str, position: Position) -> bytes:
    lllid = "-" if position.lllid is None else str(position.lllid)
    body = f"{MAGIC}\n{jobid}\n{position.offset}\n{lllid}\n".encode("utf-8", "surrogateescape")
    return body + b"%08x\n" % zlib.crc32(body)


def decode_position(data: bytes) -> Position | None:
    """The position encoded in ``data`` (version 2 or 1), or None if it is not one."""
    text = data.decode("utf-8", "surrogateescape")
    parts = text.split("\n")
    if parts[0] == MAGIC:
        if len(parts) != 6 or parts[5] != "":
            return None
        body = data[: data.rindex(b"\n", 0, len(data) - 1) + 1]
        if parts[4] != "%08x" % zlib.crc32(body):
            return None
    elif parts[0] == MAGIC_V1:
        if len(parts) != 5 or parts[4] != "":
            return None
    else:
        return None
    if not parts[2].isdigit():
        return None
    if parts[3] == "-":
        lllid = None
    elif parts[3].isdigit():
        lllid = int(parts[3])
    else:
        return None
    return Position(int(parts[2]), lllid)


def read_position(path: str) -> Position | None:
    """The position stored at ``path``, or None if there is none or it is unreadable."""
    try:
        with open(path, "rb") as f:
            data = f.read(64 * 1024)
    except FileNotFoundError:
        return None
    return decode_position(data)


def check_position(fd: int, position: Position) -> str | None:
    """None if ``position`` fits the event file open on ``fd``, else why not."""
    if position.offset == 0:
        return None
    size = os.fstat(fd).st_size
    if position.offset > size:
        return f"position {position.offset} is beyond the end of the file ({size} bytes)"
    line = layout.line_before(fd, position.offset)
    if not line.endswith(b"\n") or layout.lllid_of(line) != position.lllid:
        return f"the line before position {position.offset} is not DG.LLLID={position.lllid}"
    return None


def write_positions(entries: Sequence[tuple[str, bytes]], sync: GroupSync = sync_files) -> None:
    """Overwrite each ``(path, content)`` in place (creating it if need be), then
    make all of them durable with one group sync. Blocking."""
    fds: list[int] = []
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    try:
        for path, content in entries:
            fd = os.open(path, flags, 0o644)
            fds.append(fd)
            written = os.pwrite(fd, content, 0)
            if written != len(content):  # pragma: no cover - short write to a regular file
                raise OSError(5, f"short write to {path}")
            if os.fstat(fd).st_size > len(content):
                os.ftruncate(fd, len(content))
        sync(fds)
    finally:
        for fd in fds:
            os.close(fd)


def remove_position(path: str) -> None:
    for name in (path, path + ".tmp"):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass


class PositionStore:
    """Commits positions through a disk worker, coalescing: while one write is on
    the disk, later commits wait, and then only the newest position of each file
    is written, all of them covered by one flush.

    A failed write is logged and retried with the next commit (or :meth:`flush`);
    meanwhile the disk may keep an older position, which is safe (the file may
    already show the newer one, which is as true: only acknowledged positions
    are ever written).
    """

    log = Logger()

    def __init__(self, spool_dir: str, worker, sync: GroupSync = sync_files):
        self._dir = spool_dir
        self._worker = worker
        self._sync = sync
        self._dirty: dict[str, tuple[str, Position]] = {}
        self._busy = False
        self._waiters: list[Deferred[None]] = []
        #: Group writes done (for tests and statistics).
        self.writes = 0

    def commit(self, stem: str, jobid: str, position: Position) -> None:
        """Record that ``stem``'s file is delivered up to ``position``."""
        self._dirty[stem] = (jobid, position)
        if not self._busy:
            self._write()

    def forget(self, stem: str) -> None:
        """Drop a not yet written position (its file is being removed)."""
        self._dirty.pop(stem, None)

    def flush(self) -> Deferred[None]:
        """Fire once every position committed so far has been written (or failed)."""
        if not self._busy and not self._dirty:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiters.append(d)
        if not self._busy:
            self._write()
        return d

    def _write(self) -> None:
        batch, self._dirty = self._dirty, {}
        entries = [(position_path(self._dir, stem), encode_position(jobid, pos))
                   for stem, (jobid, pos) in batch.items()]
        self._busy = True
        waiters, self._waiters = self._waiters, []

        def done(result):
            self._busy = False
            self.writes += 1
            if isinstance(result, Failure):
                self.log.failure("writing {count} delivery positions failed", result,
                                 count=len(entries))
                for stem, value in batch.items():
                    self._dirty.setdefault(stem, value)  # newer commits win
            for d in waiters:
                d.callback(None)
            if self._dirty and not isinstance(result, Failure):
                self._write()

        self._worker.run(write_positions, entries, self._sync).addBoth(done)
