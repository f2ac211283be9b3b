"""The one error type of the blocking clients: an error number and a description.

As in the legacy client library, every failure (a refused connection, a timeout,
an error the server reported) is an error number (a Linux ``errno`` or an L&B
code of formats.md Appendix B) plus a description. Commands print it as
``<strerror text> (<description>)``, the part the test suites grep; the
description with its parentheses is left out when there is none (cli.md §3.3).
"""

from __future__ import annotations

import errno
import os
import socket

from lbtx.protocols.legacy_query.errors import ErrorCode, error_text

__all__ = ["ClientError", "strerror", "from_os_error"]


def strerror(code: int) -> str:
    """The text of an error number: ``os.strerror`` for errnos, the L&B table above."""
    try:
        known = ErrorCode(code)
    except ValueError:
        known = None
    if known is not None and (code >= 1400 or code == 0):
        return error_text(code)
    if 0 < code < 1400:
        return os.strerror(code)
    return error_text(code)


class ClientError(Exception):
    """A failed client operation.

    :ivar code: the error number.
    :ivar desc: the description (what the server said, or where it failed).
    """

    def __init__(self, code: int, desc: str = ""):
        self.code = int(code)
        self.desc = desc or ""
        super().__init__(self.text())

    def text(self) -> str:
        """``<strerror> (<desc>)``, or just ``<strerror>`` without a description."""
        message = strerror(self.code)
        return f"{message} ({self.desc})" if self.desc else message


def from_os_error(e: OSError, what: str) -> ClientError:
    """A socket error as a client error; ``what`` says which operation failed."""
    if isinstance(e, TimeoutError):
        return ClientError(errno.ETIMEDOUT, what)
    if isinstance(e, socket.gaierror):
        return ClientError(errno.EHOSTUNREACH, f"{what}: {e.strerror}")
    if not isinstance(getattr(e, "errno", None), int) or e.errno <= 0:
        return ClientError(errno.ECONNABORTED, f"{what}: {e}")
    if e.strerror and e.strerror != os.strerror(e.errno):
        return ClientError(e.errno, f"{what}: {e.strerror}")  # a reason of our own (TLS)
    return ClientError(e.errno, what)
