"""Reading the spool back: directory scans, event files from a position, purges.

Blocking code for the interlogger's disk workers. Readers take no lock: the
logger appends whole lines and never takes a complete line away (docs/spool.md),
so everything up to the last line feed is good to send; a last piece without a
line feed is left for a later pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.logger import layout
from lbtx.logger.durable import fsync_directory
from lbtx.interlogger.positions import (Position, check_position, position_path, read_position,
                                        remove_position)

__all__ = ["ReadResult", "StoreInfo", "job_of_lines", "jobid_of_line", "open_store", "purge_file",
           "read_lines", "scan_spool", "spool_file_size"]

#: The longest line looked for when a read meets no line feed (a ULM record's
#: limit plus the logger's prefix).
MAX_LINE = ulm.DEFAULT_MAX_LENGTH + 64


@dataclass(frozen=True)
class ReadResult:
    """Complete lines from an offset: ``(offset, line with LF)``, where the next read
    starts (``end``), the file size, and whether the byte limit stopped the read."""

    lines: list[tuple[int, bytes]]
    end: int
    size: int
    truncated: bool


@dataclass(frozen=True)
class StoreInfo:
    """A spool file as found: its job (None if no line names one yet), the checked
    position, and why a stored position was not usable (if so)."""

    stem: str
    path: str
    jobid: JobId | None
    raw_jobid: bytes | None
    position: Position
    size: int
    position_note: str | None


def scan_spool(spool_dir: str) -> tuple[dict[str, int], list[str]]:
    """Event files by stem with their sizes, and position files without an event file."""
    sizes: dict[str, int] = {}
    positions: list[str] = []
    with os.scandir(spool_dir) as entries:
        for entry in entries:
            name = entry.name
            if layout.is_event_file(name):
                try:
                    sizes[layout.stem_of(name)] = entry.stat().st_size
                except FileNotFoundError:
                    continue
            elif name.endswith(layout.POSITION_SUFFIX):
                positions.append(name[: -len(layout.POSITION_SUFFIX)])
    orphans = [position_path(spool_dir, stem) for stem in positions if stem not in sizes]
    return sizes, orphans


def spool_file_size(spool_dir: str, stem: str) -> int | None:
    """The size of ``stem``'s event file, None if there is none."""
    try:
        return os.stat(os.path.join(spool_dir, stem + layout.EVENT_SUFFIX)).st_size
    except FileNotFoundError:
        return None


def jobid_of_line(line: bytes) -> JobId | None:
    """The job id a spool line names, or None."""
    raw = layout.raw_jobid(line)
    if raw is None:
        return None
    try:
        if b"\\" in raw:  # escaped characters: let the ULM parser undo them
            return ulm.parse_bytes(line).job_id
        return JobId.parse(raw.decode("utf-8", "surrogateescape"))
    except LBFormatError:
        return None


def read_lines(path: str, offset: int, max_bytes: int) -> ReadResult | None:
    """The complete lines of ``path`` from ``offset`` (at most about ``max_bytes``,
    but always a whole line if one is there); None if the file does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        if offset >= size:
            return ReadResult([], offset, size, False)
        want = min(max_bytes, size - offset)
        data = os.pread(fd, want, offset)
        while b"\n" not in data and offset + len(data) < size and len(data) < MAX_LINE:
            more = os.pread(fd, min(len(data) or 65536, size - offset - len(data)),
                            offset + len(data))
            if not more:
                break
            data += more
    finally:
        os.close(fd)
    cut = data.rfind(b"\n") + 1
    lines: list[tuple[int, bytes]] = []
    pos = 0
    while pos < cut:
        nl = data.index(b"\n", pos)
        lines.append((offset + pos, data[pos:nl + 1]))
        pos = nl + 1
    return ReadResult(lines, offset + cut, size, offset + len(data) < size and cut > 0)


def open_store(spool_dir: str, stem: str, scan_bytes: int = 1024 * 1024) -> StoreInfo | None:
    """Look at ``stem``'s event file: its job id (from the first line naming a job
    whose file this is), and its position, checked. None if there is no such file."""
    path = os.path.join(spool_dir, stem + layout.EVENT_SUFFIX)
    stored = read_position(position_path(spool_dir, stem))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        position, note = Position(), None
        if stored is not None:
            note = check_position(fd, stored)
            if note is None:
                position = stored
        data = os.pread(fd, min(size, scan_bytes), 0)
    finally:
        os.close(fd)
    jobid, raw = job_of_lines(data.splitlines(keepends=True), stem)
    return StoreInfo(stem, path, jobid, raw, position, size, note)


def job_of_lines(lines, stem: str) -> tuple[JobId | None, bytes | None]:
    """The job id (and its raw text) of the first complete line of ``lines`` that
    names a job whose file is ``stem``; ``(None, None)`` if none does."""
    for line in lines:
        if not line.endswith(b"\n"):
            break
        candidate = jobid_of_line(line)
        if candidate is not None and layout.spool_stem(candidate) == stem:
            return candidate, layout.raw_jobid(line)
    return None, None


def purge_file(spool_dir: str, stem: str, delivered: int) -> bool:
    """Remove ``stem``'s event file and position if the file is exactly ``delivered``
    bytes long and the logger is not writing it (its exclusive lock is free).

    The position goes first, so that a crash in between leaves an event file with
    no position (delivered again, deduplicated) rather than a stale position.
    Returns whether the file was removed (True also if it was gone already).
    """
    path = os.path.join(spool_dir, stem + layout.EVENT_SUFFIX)
    pos_path = position_path(spool_dir, stem)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        remove_position(pos_path)
        return True
    try:
        if not layout.try_lock_exclusive(fd):
            return False
        if os.fstat(fd).st_size != delivered:
            return False
        remove_position(pos_path)
        fsync_directory(spool_dir)
        os.unlink(path)
        fsync_directory(spool_dir)
        return True
    finally:
        os.close(fd)
