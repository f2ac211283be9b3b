"""The spool's write-ahead journal: where a batch becomes durable with one flush.

A batch of appends touches many job files, and making many files durable costs
one flush each (or a ``syncfs`` of the whole filesystem). So the spool first
appends every line of the batch, tagged with its job file's stem, to one journal
segment and flushes that one file: the batch is durable. Then it appends the
lines to their job files without flushing them. A *checkpoint*, off the write
path, later flushes the job files and removes the journal segments they cover.
After a crash, :func:`replay_records` gives what the job files may lack.

Layout: ``<spool>/journal/<12-digit number>.jnl``, records ``<stem> <spool line>``
(the line with its LF). Blocking code: run it in a disk worker thread.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Callable, Iterator

from lbtx.logger import layout
from lbtx.logger.durable import GroupSync, fsync_directory, sync_files, write_all

__all__ = ["JOURNAL_DIR", "Journal", "JournalRecord", "journal_record", "parse_segment"]

JOURNAL_DIR = "journal"
SEGMENT_SUFFIX = ".jnl"
#: A new segment is started once the current one holds this many bytes.
SEGMENT_BYTES = 64 * 1024 * 1024

_STEM_RE = re.compile(rb"[A-Za-z0-9_-]{1,64}\.[0-9a-f]{16}\Z")


def journal_record(stem: str, line: bytes) -> bytes:
    return stem.encode("ascii") + b" " + line


@dataclass(frozen=True)
class JournalRecord:
    stem: str
    line: bytes
    lllid: int


def parse_segment(data: bytes) -> tuple[list[JournalRecord], list[tuple[int, bytes, str]]]:
    """The complete, well-formed records of a segment, and the bad pieces as
    ``(offset, bytes, reason)``: malformed records and a torn tail (a record
    without its LF, from a batch that was never acknowledged)."""
    records: list[JournalRecord] = []
    bad: list[tuple[int, bytes, str]] = []
    pos = 0
    end = len(data)
    while pos < end:
        nl = data.find(b"\n", pos)
        if nl < 0:
            bad.append((pos, data[pos:], "torn journal record (no line feed)"))
            break
        raw = data[pos:nl + 1]
        stem, sep, line = raw.partition(b" ")
        reason = None if sep and _STEM_RE.match(stem) else "journal record without a file stem"
        if reason is None:
            reason = layout.check_line(line)
        if reason is None:
            records.append(JournalRecord(stem.decode("ascii"), line, layout.lllid_of(line)))
        else:
            bad.append((pos, raw, reason))
        pos = nl + 1
    return records, bad


@dataclass
class Journal:
    """The journal segments under ``<spool>/journal``; one open for appending."""

    spool_dir: str
    sync: GroupSync = sync_files
    sync_directory: Callable[[str], None] = fsync_directory
    segment_bytes: int = SEGMENT_BYTES
    _fd: int | None = None
    _number: int = 0
    _size: int = 0
    _broken: bool = False

    @property
    def directory(self) -> str:
        return os.path.join(self.spool_dir, JOURNAL_DIR)

    def segments(self) -> list[str]:
        """Paths of the existing segments, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return [os.path.join(self.directory, n) for n in sorted(names)
                if n.endswith(SEGMENT_SUFFIX) and n[: -len(SEGMENT_SUFFIX)].isdigit()]

    def read(self) -> Iterator[tuple[str, bytes]]:
        """``(path, content)`` of every existing segment, oldest first."""
        for path in self.segments():
            with open(path, "rb") as f:
                yield path, f.read()

    def open_new(self) -> None:
        """Start a new segment after every existing one; its name is durable before
        anything is appended to it."""
        os.makedirs(self.directory, exist_ok=True)
        existing = self.segments()
        if existing:
            last = int(os.path.basename(existing[-1])[: -len(SEGMENT_SUFFIX)])
            self._number = max(self._number, last)
        self.close()
        self._number += 1
        path = os.path.join(self.directory, f"{self._number:012d}{SEGMENT_SUFFIX}")
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
                           | getattr(os, "O_CLOEXEC", 0), 0o644)
        self._size = 0
        self._broken = False
        self.sync_directory(self.directory)

    @property
    def current(self) -> str:
        return os.path.join(self.directory, f"{self._number:012d}{SEGMENT_SUFFIX}")

    def append(self, data: bytes) -> None:
        """Append and flush: when this returns, ``data`` is durable.

        :raises OSError: the write or the flush failed. A partial write is cut back;
            if even that fails, the next append starts a new segment first.
        """
        if self._fd is None or self._broken:
            self.open_new()
        try:
            write_all(self._fd, data)
            self.sync([self._fd])
        except OSError:
            try:
                os.ftruncate(self._fd, self._size)
            except OSError:
                self._broken = True
            raise
        self._size += len(data)

    def full(self) -> bool:
        return self._size >= self.segment_bytes

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
