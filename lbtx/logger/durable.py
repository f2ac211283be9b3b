"""Making bytes durable: fsync helpers and the dedicated disk worker thread.

Everything here blocks: it is meant to run in a :class:`DiskWorker` thread, never
on the reactor. The sync functions are the injection points that tests replace
to count how often the disk is asked to flush.

A *group sync* function takes the file descriptors written in one batch and
returns only when all of them are durable (or raises :class:`OSError`). The
default, :func:`sync_files`, uses one ``fdatasync`` for one file and one
``syncfs`` (Linux) for several: a single flush of the spool's filesystem covers
every file of the batch, which costs about as much as one ``fdatasync``, where one
``fdatasync`` per file costs one disk flush each.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import queue
import sys
import threading
from typing import Callable, Sequence

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorFromThreads
from twisted.python.failure import Failure

__all__ = ["DiskWorker", "GroupSync", "atomic_write", "fdatasync", "flush_tree", "fsync_directory",
           "sync_each", "sync_files", "syncfs", "write_all"]

#: A group sync function: make every given descriptor's data durable, or raise OSError.
GroupSync = Callable[[Sequence[int]], None]

fdatasync: Callable[[int], None] = getattr(os, "fdatasync", os.fsync)


def _load_syncfs() -> Callable[[int], None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int

    def syncfs(fd: int) -> None:
        """Flush the whole filesystem holding ``fd`` (Linux ``syncfs(2)``; the GIL is released)."""
        if func(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))

    return syncfs


#: ``syncfs(fd)`` where the platform has it (Linux), else None. Since Linux 5.8 it
#: reports write-back errors of the filesystem, as ``fdatasync`` does for one file.
syncfs = _load_syncfs()


def sync_each(fds: Sequence[int]) -> None:
    """Group sync by one ``fdatasync`` per descriptor (portable, slower for many files)."""
    for fd in fds:
        fdatasync(fd)


def sync_files(fds: Sequence[int]) -> None:
    """The default group sync: ``fdatasync`` for one file, one ``syncfs`` for several."""
    if len(fds) == 1 or syncfs is None:
        sync_each(fds)
    elif fds:
        syncfs(fds[0])


def flush_tree(directory: str, names: Callable[[str], bool] = lambda name: True) -> None:
    """Make every file of ``directory`` (whose name passes ``names``) and the directory's
    entries durable: one ``syncfs`` where the platform has it, else one ``fdatasync``
    per file and an ``fsync`` of the directory. For checkpoints, off the write path."""
    if syncfs is not None:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            syncfs(fd)
        finally:
            os.close(fd)
        return
    for name in os.listdir(directory):  # pragma: no cover - non-Linux platforms
        if not names(name):
            continue
        try:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
        except (FileNotFoundError, IsADirectoryError):
            continue
        try:
            fdatasync(fd)
        finally:
            os.close(fd)
    fsync_directory(directory)  # pragma: no cover


def fsync_directory(path: str) -> None:
    """Make the entries of directory ``path`` (files created, renamed, removed) durable."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data`` to ``fd``, looping over short writes; raise OSError on failure."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - a regular file never returns 0 for len > 0
            raise OSError(5, "short write")
        view = view[written:]


def atomic_write(path: str, data: bytes, *, sync: Callable[[int], None] = fdatasync) -> None:
    """Replace the file ``path`` with ``data`` so that a crash leaves the old or the new
    content, never a mixture: write ``path.tmp``, sync it, rename it over ``path``.

    The rename itself becomes durable with the directory's next sync; until then a
    crash may bring back the previous version, which callers must accept.
    """
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        write_all(fd, data)
        sync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class DiskWorker:
    """One dedicated thread that runs blocking disk work in submission order.

    :meth:`run` returns a Deferred fired on the reactor thread with the function's
    result (or failure). Work submitted before :meth:`stop` still runs. The thread
    is a daemon: a process that exits without stopping it is not held up by it
    (work cut short that way was never acknowledged to anyone).
    """

    def __init__(self, reactor: IReactorFromThreads, name: str):
        self._reactor = reactor
        self._name = name
        self._queue: "queue.SimpleQueue[tuple | None]" = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def run(self, func: Callable, *args, **kwargs) -> Deferred:
        """Run ``func(*args, **kwargs)`` in the worker thread; fire with its result."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        d: Deferred = Deferred()
        self._queue.put((d, func, args, kwargs))
        return d

    def _work(self) -> None:
        call = self._reactor.callFromThread
        while True:
            item = self._queue.get()
            if item is None:
                return
            d, func, args, kwargs = item
            try:
                result = func(*args, **kwargs)
            except BaseException:
                call(d.errback, Failure())
            else:
                call(d.callback, result)

    def stop(self) -> None:
        """Finish the queued work and join the thread (blocks for at most that work)."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join()
