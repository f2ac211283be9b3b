"""The blocking half of the spool: writes one batch of lines, made durable by one flush.

:class:`SpoolWriter` runs only in the spool's disk worker thread. For a batch it

1. appends every line, tagged with its job file, to the journal
   (:mod:`lbtx.logger.journal`) and flushes that one file: the batch is durable;
2. appends each job file's lines to it with one ``write``, holding the file's
   exclusive ``flock`` (the interlogger removes a delivered file only under that
   lock, and the writer notices a removed file by its link count and creates it
   afresh).

If the journal write or flush fails, the whole batch fails and nothing of it is in
the spool. If a job file write fails (disk full), the complete lines that reached
the file stay and succeed, the rest fail and the file is cut back to its last
complete line, so that no complete line ever disappears from a job file (readers
need no lock). A failed line may still be in the journal, so after a crash it can
reappear: its producer was told it failed and will have sent it again, which the
server deduplicates.

When the journal segment is full the writer starts a new one and hands back a
:class:`Checkpoint`, which the spool runs in another thread: flush the job files,
then remove the old segments. At start-up the writer repairs the job files
(cutting torn tails) and replays the journal into them, so a crash loses no
acknowledged line even though job files are not flushed per batch.
"""

from __future__ import annotations

import errno
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

from lbtx.logger import layout
from lbtx.logger.durable import (GroupSync, fdatasync, flush_tree, fsync_directory, sync_files,
                                 write_all)
from lbtx.logger.errors import SpoolWriteError, write_error
from lbtx.logger.journal import SEGMENT_BYTES, Journal, journal_record, parse_segment
from lbtx.logger.quarantine import quarantine_lines

__all__ = ["Appended", "Checkpoint", "Cut", "SpoolWriter", "StartReport",
           "default_max_open_files"]

_FULL = (errno.ENOSPC, errno.EDQUOT)


def default_max_open_files() -> int:
    """How many job files the writer keeps open: a quarter of the soft limit on open
    files (the logger needs the rest for its connections and the interlogger),
    between 64 and 4096. Every job of a batch beyond it costs an open, a close and
    a repair check."""
    try:
        import resource
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
        return 256
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(64, min(4096, soft // 4))


class Appended:
    """Where one appended line landed: durable, and in ``path`` at ``[offset, end)``;
    ``line`` is what was written there (with its LF), so that an in-process reader
    need not read it back."""

    __slots__ = ("stem", "path", "offset", "end", "lllid", "line")

    def __init__(self, stem: str, path: str, offset: int, end: int, lllid: int,
                 line: bytes | None = None):
        self.stem = stem
        self.path = path
        self.offset = offset
        self.end = end
        self.lllid = lllid
        self.line = line

    def __repr__(self) -> str:
        return f"Appended({self.path!r}, {self.offset}, {self.end}, lllid={self.lllid})"


@dataclass(frozen=True)
class Cut:
    """A torn or bad piece taken out at recovery, saved to the quarantine folder."""

    path: str
    offset: int
    length: int
    reason: str
    saved_to: str | None


@dataclass(frozen=True)
class StartReport:
    """What start-up found: pieces cut, lines replayed from the journal, the highest LLLID."""

    cuts: list[Cut]
    replayed: int
    max_lllid: int


@dataclass(frozen=True)
class Checkpoint:
    """Flush every job file, then remove the journal segments that covered them."""

    spool_dir: str
    segments: tuple[str, ...]
    flush: Callable[[str], None]
    sync_directory: Callable[[str], None]

    def run(self) -> int:
        """Do it (blocking); return the number of segments removed."""
        self.flush(self.spool_dir)
        removed = 0
        for path in self.segments:
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
        if self.segments:
            self.sync_directory(os.path.dirname(self.segments[0]))
        return removed


@dataclass
class _Handle:
    stem: str
    path: str
    fd: int
    size: int = 0


@dataclass
class SpoolWriter:
    """Appends batches to the job files of ``directory``; blocking, one thread only.

    ``sync`` is the group sync function called once per batch (on the journal);
    ``flush`` makes the whole spool durable at checkpoints.
    """

    directory: str
    sync: GroupSync = sync_files
    sync_directory: Callable[[str], None] = fsync_directory
    flush: Callable[[str], None] = flush_tree
    check: layout.LineCheck = layout.validate_line
    max_open_files: int = field(default_factory=default_max_open_files)
    segment_bytes: int = SEGMENT_BYTES
    _open: "OrderedDict[str, _Handle]" = field(default_factory=OrderedDict)
    _cuts: list[Cut] = field(default_factory=list)
    _lock_fd: int | None = None
    _journal: Journal | None = None

    # --- life cycle --------------------------------------------------------

    def start(self) -> StartReport:
        """Take the spool's logger lock, repair every job file, replay the journal.

        :raises SpoolLockedError: another logger owns the directory.
        :raises OSError: the spool cannot be read or written.
        """
        os.makedirs(self.directory, exist_ok=True)
        self._lock_fd = layout.acquire_directory_lock(self.directory, layout.LOGGER_LOCK)
        try:
            return self._recover()
        except BaseException:
            self.close(checkpoint=False)
            raise

    def _recover(self) -> StartReport:
        last: dict[str, int] = {}
        for name in sorted(os.listdir(self.directory)):
            if layout.is_event_file(name):
                stem = layout.stem_of(name)
                try:
                    handle, _ = self._acquire(stem, create=False)
                except FileNotFoundError:
                    continue
                last[stem] = layout.lllid_of(layout.line_before(handle.fd, handle.size)) or 0
                self._forget(handle)  # closing also unlocks; files reopen on demand
        self._journal = Journal(self.directory, self.sync, self.sync_directory, self.segment_bytes)
        segments = self._journal.segments()
        missing: dict[str, list[bytes]] = {}
        max_lllid = max(last.values(), default=0)
        for path, data in self._journal.read():
            records, bad = parse_segment(data)
            for offset, piece, reason in bad:
                self._save_cut("journal", path, offset, piece, reason)
            for rec in records:
                max_lllid = max(max_lllid, rec.lllid)
                if rec.lllid > last.get(rec.stem, 0):
                    missing.setdefault(rec.stem, []).append(rec.line)
                    last[rec.stem] = rec.lllid
        replayed = 0
        for stem, lines in missing.items():
            handle, _ = self._acquire(stem, create=True)
            try:
                write_all(handle.fd, b"".join(lines))
            finally:
                self._forget(handle)
            replayed += len(lines)
        if segments:
            self._checkpoint(tuple(segments)).run()
        self._journal.open_new()
        cuts, self._cuts = self._cuts, []
        return StartReport(cuts, replayed, max_lllid)

    def close(self, checkpoint: bool = True) -> None:
        """Close every file; with ``checkpoint``, flush the spool and empty the journal."""
        try:
            if self._journal is not None:
                self._journal.close()
                if checkpoint:
                    self._checkpoint(tuple(self._journal.segments())).run()
        finally:
            self._journal = None
            for handle in self._open.values():
                os.close(handle.fd)
            self._open.clear()
            if self._lock_fd is not None:
                layout.release_directory_lock(self._lock_fd)
                self._lock_fd = None

    # --- one batch ---------------------------------------------------------

    def write_batch(self, items: Sequence[tuple[str, bytes, int]]
                    ) -> tuple[list[Appended | SpoolWriteError], list[Cut], Checkpoint | None]:
        """Append ``(stem, line, lllid)`` items with one flush.

        Returns one outcome per item, in order (an :class:`Appended` or the
        :class:`SpoolWriteError` that kept it out), the tails cut from files that
        were repaired on first opening, and a :class:`Checkpoint` to run when the
        journal moved to a new segment.
        """
        journal = self._journal
        assert journal is not None, "spool writer not started"
        records = b"".join([journal_record(stem, line) for stem, line, _ in items])
        try:
            try:
                journal.append(records)
            except OSError as e:
                if e.errno not in _FULL or not self._trim_journal():
                    raise
                journal.append(records)  # the journal's own room is free again
        except OSError as e:
            error = write_error(e, journal.current)
            return [error] * len(items), [], None
        groups: dict[str, list[int]] = {}
        for i, item in enumerate(items):
            groups.setdefault(item[0], []).append(i)
        outcomes: list[Appended | SpoolWriteError | None] = [None] * len(items)
        for stem, indexes in groups.items():
            self._write_group(stem, indexes, items, outcomes)
            while len(self._open) > self.max_open_files:  # none is locked between groups
                _, old = self._open.popitem(last=False)
                os.close(old.fd)
        checkpoint = None
        if journal.full():
            old = tuple(journal.segments())
            try:
                journal.open_new()
            except OSError:
                pass  # keep appending to the full segment; try again after the next batch
            else:
                checkpoint = self._checkpoint(old)
        cuts, self._cuts = self._cuts, []
        return outcomes, cuts, checkpoint  # type: ignore[return-value]

    def _write_group(self, stem: str, indexes: list[int], items, outcomes: list) -> None:
        try:
            handle, _ = self._acquire(stem, create=True)
        except OSError as e:
            error = write_error(e, os.path.join(self.directory, stem + layout.EVENT_SUFFIX))
            for i in indexes:
                outcomes[i] = error
            return
        path = handle.path
        lines = [items[i][1] for i in indexes]
        data = lines[0] if len(lines) == 1 else b"".join(lines)
        start = pos = handle.size
        try:
            written = os.write(handle.fd, data)
            if written != len(data):
                write_all(handle.fd, data[written:])
        except OSError as e:
            self._partial_group(handle, start, indexes, items, outcomes, write_error(e, path))
            return
        for i, line in zip(indexes, lines):
            end = pos + len(line)
            outcomes[i] = Appended(stem, path, pos, end, items[i][2], line)
            pos = end
        handle.size = pos
        layout.unlock(handle.fd)

    def _partial_group(self, handle: _Handle, start: int, indexes: list[int], items,
                       outcomes: list, failure: SpoolWriteError) -> None:
        """After a failed write: the complete lines that reached the file succeed,
        the rest fail, and the file is cut back to its last complete line."""
        try:
            reached = os.fstat(handle.fd).st_size
            pos = start
            for i in indexes:
                line = items[i][1]
                if pos + len(line) > reached:
                    reached = -1  # this line and every later one failed
                    outcomes[i] = failure
                    continue
                outcomes[i] = Appended(handle.stem, handle.path, pos, pos + len(line), items[i][2],
                                       line)
                pos += len(line)
            os.ftruncate(handle.fd, pos)
            handle.size = pos
        except OSError:
            self._forget(handle)  # repaired when next opened
            return
        layout.unlock(handle.fd)

    # --- helpers -----------------------------------------------------------

    def _trim_journal(self) -> bool:
        """The disk is full: start a new journal segment and checkpoint the old ones
        at once (every line they hold is in its job file), which frees the room the
        journal took, so that a spool smaller than a segment does not fill up with
        journal for good. False if there was nothing to free or it failed."""
        journal = self._journal
        old = tuple(journal.segments())
        try:
            if len(old) <= 1 and os.path.getsize(journal.current) == 0:
                return False
            journal.open_new()
            self._checkpoint(old).run()
        except OSError:
            return False
        return True

    def _checkpoint(self, segments: tuple[str, ...]) -> Checkpoint:
        return Checkpoint(self.directory, segments, self.flush, self.sync_directory)

    def _forget(self, handle: _Handle) -> None:
        if self._open.get(handle.stem) is handle:
            del self._open[handle.stem]
        try:
            os.close(handle.fd)  # also releases the lock
        except OSError:  # pragma: no cover
            pass

    def _acquire(self, stem: str, *, create: bool) -> tuple[_Handle, bool]:
        """The locked handle of ``stem``'s file (size known) and whether it was created now."""
        while True:
            handle = self._open.get(stem)
            created = False
            fresh = handle is None
            if fresh:
                handle, created = self._open_file(stem, create)
            layout.lock_exclusive(handle.fd)
            st = os.fstat(handle.fd)
            if st.st_nlink == 0:  # delivered and removed meanwhile
                self._forget(handle)
                continue
            handle.size = st.st_size
            if fresh and not created and handle.size:
                self._repair(handle)
            self._open[stem] = handle
            self._open.move_to_end(stem)
            return handle, created

    def _open_file(self, stem: str, create: bool) -> tuple[_Handle, bool]:
        path = os.path.join(self.directory, stem + layout.EVENT_SUFFIX)
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        while True:
            if create:
                try:
                    return _Handle(stem, path, os.open(path, flags | os.O_CREAT | os.O_EXCL,
                                                       0o644)), True
                except FileExistsError:
                    pass
            try:
                return _Handle(stem, path, os.open(path, flags)), False
            except FileNotFoundError:
                if not create:
                    raise

    def _repair(self, handle: _Handle) -> None:
        """Cut a torn tail, saving it to the quarantine folder first (if that fails,
        the tail is cut all the same: a torn line must never be delivered)."""
        try:
            end, pieces = layout.find_torn_tail(handle.fd, self.check)
            for offset, data, reason in pieces:
                self._save_cut(handle.stem, handle.path, offset, data, reason)
            if pieces:
                os.ftruncate(handle.fd, end)
                fdatasync(handle.fd)
                handle.size = end
        except OSError:
            os.close(handle.fd)
            raise

    def _save_cut(self, stem: str, path: str, offset: int, data: bytes, reason: str) -> None:
        try:
            saved = quarantine_lines(self.directory, stem, data, reason=reason,
                                     detail="cut off at recovery", source=path, offset=offset)
        except OSError:
            saved = None
        self._cuts.append(Cut(path, offset, len(data), reason, saved))
