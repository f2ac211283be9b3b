"""The blocking half of the spool: writes one batch of lines and flushes it once.

:class:`SpoolWriter` runs only in the spool's disk worker thread. For a batch it
locks each job file it touches (exclusive ``flock``), appends that file's lines
with one ``write``, then makes the whole batch durable with **one** call of the
group sync function (plus one directory sync when it created files), then
unlocks. Any failure cuts the files concerned back to their size before the
batch, so that a line the caller is told failed is not in the spool, and the
lines are reported as failed.

Open files are cached (least recently used closed first). A file the interlogger
removed meanwhile (it does so only under the exclusive lock, when every line was
delivered) is noticed by its link count after locking, and created afresh. A file
opened for the first time is repaired first (:func:`~lbtx.logger.layout.repair_tail`).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

from lbtx.logger import layout
from lbtx.logger.durable import GroupSync, fdatasync, fsync_directory, sync_files, write_all
from lbtx.logger.errors import SpoolWriteError, write_error
from lbtx.logger.quarantine import quarantine_lines

__all__ = ["Appended", "Cut", "SpoolWriter"]


@dataclass(frozen=True)
class Appended:
    """Where one appended line landed: it is durable in ``path`` at ``[offset, end)``."""

    stem: str
    path: str
    offset: int
    end: int
    lllid: int


@dataclass(frozen=True)
class Cut:
    """A torn or bad tail cut off a spool file at recovery, saved to the quarantine folder."""

    path: str
    offset: int
    length: int
    reason: str
    saved_to: str | None


@dataclass
class _Handle:
    stem: str
    path: str
    fd: int


@dataclass
class SpoolWriter:
    """Appends batches to the job files of ``directory``; blocking, one thread only."""

    directory: str
    sync: GroupSync = sync_files
    sync_directory: Callable[[str], None] = fsync_directory
    check: layout.LineCheck = layout.validate_line
    max_open_files: int = 256
    cuts: list[Cut] = field(default_factory=list)
    _open: "OrderedDict[str, _Handle]" = field(default_factory=OrderedDict)
    _lock_fd: int | None = None

    # --- life cycle --------------------------------------------------------

    def start(self) -> list[Cut]:
        """Take the spool's logger lock and repair every event file; return the cuts.

        :raises SpoolLockedError: another logger owns the directory.
        """
        os.makedirs(self.directory, exist_ok=True)
        self._lock_fd = layout.acquire_directory_lock(self.directory, layout.LOGGER_LOCK)
        self.cuts = []
        for name in sorted(os.listdir(self.directory)):
            if layout.is_event_file(name):
                try:
                    handle, _created = self._acquire(layout.stem_of(name), create=False)
                except FileNotFoundError:
                    continue
                self._forget(handle)  # closing also unlocks; files reopen on demand
        found, self.cuts = self.cuts, []
        return found

    def close(self) -> None:
        for handle in self._open.values():
            os.close(handle.fd)
        self._open.clear()
        if self._lock_fd is not None:
            layout.release_directory_lock(self._lock_fd)
            self._lock_fd = None

    # --- one batch ---------------------------------------------------------

    def write_batch(self, items: Sequence[tuple[str, bytes, int]]
                    ) -> tuple[list[Appended | SpoolWriteError], list[Cut]]:
        """Append ``(stem, line, lllid)`` items, then sync once.

        Returns one outcome per item, in order (an :class:`Appended` or the
        :class:`SpoolWriteError` that kept it out of the spool), and the tails
        cut from files opened for the first time.
        """
        groups: dict[str, list[int]] = {}
        for i, (stem, _line, _lllid) in enumerate(items):
            groups.setdefault(stem, []).append(i)
        outcomes: list[Appended | SpoolWriteError | None] = [None] * len(items)
        locked: list[_Handle] = []
        written: list[tuple[_Handle, int, list[int]]] = []
        created = False
        try:
            for stem, indexes in groups.items():
                path = self._path(stem)
                try:
                    handle, new = self._acquire(stem, create=True)
                except OSError as e:
                    self._fail(outcomes, indexes, write_error(e, path))
                    continue
                locked.append(handle)
                created = created or new
                start = os.lseek(handle.fd, 0, os.SEEK_END)
                try:
                    write_all(handle.fd, b"".join(items[i][1] for i in indexes))
                except OSError as e:
                    self._cut_back(handle, start)
                    self._fail(outcomes, indexes, write_error(e, path))
                    continue
                written.append((handle, start, indexes))
            if written:
                try:
                    self.sync([h.fd for h, _, _ in written])
                    if created:
                        self.sync_directory(self.directory)
                except OSError as e:
                    for handle, start, indexes in written:
                        self._cut_back(handle, start)
                        self._fail(outcomes, indexes, write_error(e, handle.path))
                    written = []
            for handle, start, indexes in written:
                pos = start
                for i in indexes:
                    stem, line, lllid = items[i]
                    outcomes[i] = Appended(stem, handle.path, pos, pos + len(line), lllid)
                    pos += len(line)
        finally:
            for handle in locked:
                if self._open.get(handle.stem) is handle:
                    layout.unlock(handle.fd)
            while len(self._open) > self.max_open_files:
                _, old = self._open.popitem(last=False)
                os.close(old.fd)
        found, self.cuts = self.cuts, []
        return outcomes, found  # type: ignore[return-value]

    # --- helpers -----------------------------------------------------------

    def _path(self, stem: str) -> str:
        return os.path.join(self.directory, stem + layout.EVENT_SUFFIX)

    @staticmethod
    def _fail(outcomes: list, indexes: list[int], error: SpoolWriteError) -> None:
        for i in indexes:
            outcomes[i] = error

    def _cut_back(self, handle: _Handle, size: int) -> None:
        """Undo a failed append. If even that fails, forget the handle: the file is
        repaired (its torn tail cut) before it is written again."""
        try:
            os.ftruncate(handle.fd, size)
        except OSError:
            self._forget(handle)

    def _forget(self, handle: _Handle) -> None:
        self._open.pop(handle.stem, None)
        try:
            os.close(handle.fd)  # also releases the lock
        except OSError:  # pragma: no cover
            pass

    def _acquire(self, stem: str, *, create: bool) -> tuple[_Handle, bool]:
        """The locked handle of ``stem``'s file and whether it was created now."""
        while True:
            handle = self._open.get(stem)
            created = False
            fresh = handle is None
            if fresh:
                handle, created = self._open_file(stem, create)
            layout.lock_exclusive(handle.fd)
            if os.fstat(handle.fd).st_nlink == 0:  # delivered and removed meanwhile
                self._forget(handle)
                continue
            if fresh and not created:
                self._repair(handle)
            self._open[stem] = handle
            self._open.move_to_end(stem)  # evicted after the batch, never while locked
            return handle, created

    def _open_file(self, stem: str, create: bool) -> tuple[_Handle, bool]:
        path = self._path(stem)
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
            cuts = []
            for offset, data, reason in pieces:
                try:
                    saved = quarantine_lines(self.directory, handle.stem, data, reason=reason,
                                             detail="cut off the spool file at recovery",
                                             source=handle.path, offset=offset)
                except OSError:
                    saved = None
                cuts.append(Cut(handle.path, offset, len(data), reason, saved))
            if pieces:
                os.ftruncate(handle.fd, end)
                fdatasync(handle.fd)
        except OSError:
            os.close(handle.fd)
            raise
        self.cuts.extend(cuts)
