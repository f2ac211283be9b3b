"""What can go wrong with the spool, as the logger's callers see it.

An append fails with a :class:`SpoolWriteError` (usually its subclass
:class:`SpoolFullError`) when its line could not be made durable; the line is then
not in the spool (the file was cut back to where it was) and the producer must be
told so, never "OK". The spool stays usable: later appends are tried afresh.
"""

from __future__ import annotations

import errno as _errno

__all__ = ["SpoolClosedError", "SpoolError", "SpoolFullError", "SpoolLockedError",
           "SpoolWriteError", "write_error"]

_FULL = frozenset({_errno.ENOSPC, getattr(_errno, "EDQUOT", _errno.ENOSPC)})


class SpoolError(Exception):
    """Base class of the spool's errors."""


class SpoolWriteError(SpoolError):
    """An append could not be made durable: the disk refused the write or the flush.

    :ivar errno: the operating system's error number (``EROFS``, ``EIO``, ``EACCES`` ...).
    :ivar path: the spool file concerned.
    """

    def __init__(self, errno: int | None, message: str, path: str):
        super().__init__(f"{path}: {message}")
        self.errno = errno
        self.path = path


class SpoolFullError(SpoolWriteError):
    """The spool's filesystem is full or the quota is exhausted (``ENOSPC``, ``EDQUOT``)."""


class SpoolClosedError(SpoolError):
    """The spool is not running: not started yet, or closed."""


class SpoolLockedError(SpoolError):
    """Another process already owns this spool directory (its lock file is held)."""


def write_error(error: OSError, path: str) -> SpoolWriteError:
    """The spool error for an OSError met while writing ``path``."""
    cls = SpoolFullError if error.errno in _FULL else SpoolWriteError
    return cls(error.errno, error.strerror or str(error), path)
