"""The spool's on-disk layout, shared by the logger (writer) and the interlogger (reader).

See docs/spool.md. In short::

    <spool>/<stem>.ulm            event file of one job, one line per event
    <spool>/<stem>.pos            the interlogger's delivery position (interlogger.positions)
    <spool>/quarantine/           lines taken out of delivery, each with a .reason file
    <spool>/.logger.lock          held (flock) by the one logger writing this spool
    <spool>/.interlogger.lock     held by the one interlogger reading it

A line is ``DG.LLLID=<n> <ULM record>\\n``. Writers hold an exclusive ``flock`` on an
event file while they append and flush; readers read under a shared one, so a
reader sees exactly the lines that were made durable (plus, after a crash, a
possibly torn tail, which :func:`repair_tail` cuts off).

Blocking code: run it in a disk worker thread.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
from typing import Callable

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.logger.durable import fdatasync
from lbtx.logger.errors import SpoolLockedError

__all__ = ["EVENT_SUFFIX", "LINE_PREFIX", "POSITION_SUFFIX", "QUARANTINE_DIR", "LineCheck",
           "acquire_directory_lock", "check_line", "checked_jobid", "event_file_name",
           "find_torn_tail", "format_line", "is_event_file", "line_before", "lllid_of", "raw_jobid", "release_directory_lock", "repair_tail",
           "spool_stem", "stem_of", "validate_line"]

EVENT_SUFFIX = ".ulm"
POSITION_SUFFIX = ".pos"
QUARANTINE_DIR = "quarantine"
LOGGER_LOCK = ".logger.lock"
INTERLOGGER_LOCK = ".interlogger.lock"
#: Every spool line starts with this field, the logger's id of the event.
LINE_PREFIX = b"DG.LLLID="

#: A line check: None for a good line (with its LF), else the reason it is bad.
LineCheck = Callable[[bytes], "str | None"]

_READABLE = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_PREFIX_RE = re.compile(rb"DG\.LLLID=([0-9]{1,20}) ")
_JOBID_RE = re.compile(rb'(?:^|[ \t])(?i:DG\.JOBID)="((?:[^"\\\n]|\\.)*)"')
_BLOCK = 64 * 1024


def spool_stem(jobid: JobId) -> str:
    """The file name stem of ``jobid``'s event file: safe for any job id.

    It is the unique part where that is a plain name (letters, digits, ``-``, ``_``,
    at most 64), else ``job``, then a dot and 16 hex digits of the SHA-256 of
    ``host:port/unique``: jobs of different servers with the same unique part get
    different files, and no job id can name a path outside the spool.
    """
    key = f"{jobid.host}:{jobid.port}/{jobid.unique}".encode("utf-8", "surrogateescape")
    readable = jobid.unique if _READABLE.match(jobid.unique) else "job"
    return f"{readable}.{hashlib.sha256(key).hexdigest()[:16]}"


def event_file_name(jobid: JobId) -> str:
    return spool_stem(jobid) + EVENT_SUFFIX


def is_event_file(name: str) -> bool:
    """Whether a directory entry is an event file (not a position, temp or hidden file)."""
    return name.endswith(EVENT_SUFFIX) and not name.startswith(".")


def stem_of(name: str) -> str:
    return name[: -len(EVENT_SUFFIX)]


def format_line(lllid: int, record: bytes) -> bytes:
    """The spool line for one record (a ULM record without its line feed).

    :raises ValueError: the record is empty or holds a line feed or NUL, so it would
        not be one line.
    """
    if record.endswith(b"\n"):
        record = record[:-1]
    if not record or b"\n" in record or b"\0" in record:
        raise ValueError("a spool record is one non-empty line without NUL")
    return b"DG.LLLID=%d %s\n" % (lllid, record)


def lllid_of(line: bytes) -> int | None:
    """The DG.LLLID of a spool line, or None if it does not start with one."""
    m = _PREFIX_RE.match(line)
    return int(m.group(1)) if m else None


def raw_jobid(line: bytes) -> bytes | None:
    """The DG.JOBID value of a line as written (still escaped), or None."""
    m = _JOBID_RE.search(line)
    return m.group(1) if m else None


def check_line(line: bytes) -> str | None:
    """Cheap structural check of a spool line: LF-terminated, the logger's prefix, no
    NUL, a DG.JOBID. Returns None when good, else why not."""
    return checked_jobid(line)[0]


def checked_jobid(line: bytes) -> tuple[str | None, bytes | None]:
    """:func:`check_line` and :func:`raw_jobid` with one search: ``(None, raw job id)``
    for a good line, ``(why not, None)`` otherwise."""
    if not line.endswith(b"\n"):
        return "no line feed at the end", None
    if b"\0" in line:
        return "NUL byte in the line", None
    if not _PREFIX_RE.match(line):
        return "no DG.LLLID prefix", None
    m = _JOBID_RE.search(line)
    if m is None:
        return "no DG.JOBID", None
    return None, m.group(1)


def validate_line(line: bytes) -> str | None:
    """:func:`check_line`, then a full ULM parse; None when the line is a good record."""
    reason = check_line(line)
    if reason is not None:
        return reason
    try:
        ulm.parse_bytes(line)
    except LBFormatError as e:
        return f"not a ULM record: {e}"
    return None


def _last_lf_before(fd: int, end: int) -> int:
    """Offset of the last LF in ``[0, end)`` of ``fd``, or -1."""
    pos = end
    while pos > 0:
        start = max(0, pos - _BLOCK)
        block = os.pread(fd, pos - start, start)
        i = block.rfind(b"\n")
        if i >= 0:
            return start + i
        pos = start
    return -1


def line_before(fd: int, offset: int) -> bytes:
    """The line of ``fd`` that ends at ``offset`` (with its LF), or b"" at offset 0."""
    if offset <= 0:
        return b""
    start = _last_lf_before(fd, offset - 1) + 1
    return os.pread(fd, offset - start, start)


def find_torn_tail(fd: int, check: LineCheck = validate_line) -> tuple[int, list[tuple[int, bytes, str]]]:
    """Find a torn tail of the event file open on ``fd``; change nothing.

    A crash during an append can leave a last line without its line feed, or
    garbage (zeros, a partial record) that is not a record. Everything after the
    last LF is torn, and so are complete last lines while ``check`` rejects them.
    Returns the length of the good part and the torn pieces as ``(offset, bytes,
    reason)``, from the end backwards.
    """
    size = os.fstat(fd).st_size
    end = size
    cuts: list[tuple[int, bytes, str]] = []
    last_lf = _last_lf_before(fd, end)
    if last_lf + 1 < end:
        cuts.append((last_lf + 1, os.pread(fd, end - last_lf - 1, last_lf + 1),
                     "incomplete last line (no line feed)"))
        end = last_lf + 1
    while end > 0:
        start = _last_lf_before(fd, end - 1) + 1
        line = os.pread(fd, end - start, start)
        reason = check(line)
        if reason is None:
            break
        cuts.append((start, line, reason))
        end = start
    return end, cuts


def repair_tail(fd: int, check: LineCheck = validate_line,
                sync: Callable[[int], None] = fdatasync) -> list[tuple[int, bytes, str]]:
    """Cut the torn tail (:func:`find_torn_tail`) off the file open read-write on ``fd``
    and sync it. The caller holds the file's exclusive lock. Returns the pieces cut."""
    end, cuts = find_torn_tail(fd, check)
    if cuts:
        os.ftruncate(fd, end)
        sync(fd)
    return cuts


def lock_exclusive(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_EX)


def try_lock_exclusive(fd: int) -> bool:
    """Take the exclusive lock if nobody holds the file; False if busy."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def lock_shared(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_SH)


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def acquire_directory_lock(directory: str, name: str) -> int:
    """Hold the lock file ``name`` of the spool: one logger (one interlogger) per spool.

    :raises SpoolLockedError: another process holds it.
    """
    # read-only: flock needs no write access, and nothing stays open for writing
    fd = os.open(os.path.join(directory, name), os.O_RDONLY | os.O_CREAT, 0o644)
    if not try_lock_exclusive(fd):
        os.close(fd)
        raise SpoolLockedError(f"{directory} is in use by another process ({name} is locked)")
    return fd


def release_directory_lock(fd: int) -> None:
    os.close(fd)
