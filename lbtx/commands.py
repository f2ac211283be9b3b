"""Logger command records (formats.md §4.7): ULM lines that ask, not tell.

A producer asks its logger to deliver everything pending by sending, in the normal
framing, a record with ``DG.TYPE="command"``::

    DATE=... HOST="ui.example.org" PROG=internal LVL=system DG.PRIORITY=1
    DG.TYPE="command" DG.COMMAND="flush" DG.TIMEOUT="30" DG.JOBID="https://..."

Without ``DG.JOBID`` every job's events are meant. Such a record is not an event:
it is never spooled nor delivered. :func:`flush_record` writes one and
:func:`parse_command` reads one; :func:`is_command` tells a line that claims to be
one (so that the logger parses it as a command, and reports *its* errors).

A logger whose interlogger runs as a process of its own forwards flushes to the
interlogger's control socket, and asks it there for the server's answer to each
synchronous line (:func:`confirm_record`, ``DG.COMMAND="confirm"`` with the line's
``DG.LLLID``; lbtx's own, in place of upstream's ``dglogd_sock_<LLLID>`` sockets).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.timeval import Timeval

__all__ = ["CONFIRM", "FLUSH", "Command", "confirm_record", "flush_record", "is_command",
           "parse_command"]

#: The one command producers may send to lbtx's logger.
FLUSH = "flush"
#: What a logger asks its interlogger for a synchronous line (interlogger control only).
CONFIRM = "confirm"
#: The longest ``DG.TIMEOUT`` accepted, seconds (a day; the logger caps it lower).
MAX_TIMEOUT = 86400

_COMMAND_KEYS = frozenset({"DG.TYPE", "DG.COMMAND", "DG.TIMEOUT", "DG.LLLID"})
_COMMAND_TYPE = re.compile(r'(?:^|[ \t])DG\.TYPE="?command"?(?=[ \t\n]|$)', re.IGNORECASE)


@dataclass(frozen=True)
class Command:
    """A parsed command: its name, the job it concerns (None: every job), the
    seconds it may take (None: the logger's default) and, for a confirmation, the
    spool line it is about."""

    name: str
    job_id: JobId | None = None
    timeout: int | None = None
    lllid: int | None = None


def is_command(line: str) -> bool:
    """Does ``line`` say it is a command record (``DG.TYPE="command"``)?"""
    return _COMMAND_TYPE.search(line) is not None


def parse_command(line: str, *, max_length: int = ulm.DEFAULT_MAX_LENGTH,
                  known: tuple[str, ...] = (FLUSH,)) -> Command | None:
    """The command of a ``DG.TYPE="command"`` record, None for a ULM record of
    another type; raises LBFormatError (codes of :mod:`lbtx.ulm`) for a line that
    is not ULM or a command that is not valid, naming the key at fault."""
    raw = ulm.parse_fields(line, max_length=max_length, unique=_COMMAND_KEYS)
    if raw.get("DG.TYPE", "").lower() != "command":
        return None
    name = raw.get("DG.COMMAND", "")
    if not name:
        raise LBFormatError("the command record has no DG.COMMAND", code="MSG_INCOMPLETE",
                            key="DG.COMMAND")
    name = name.lower()
    if name not in known:
        raise LBFormatError(f"unknown logger command {name[:60]!r}; known: {', '.join(known)}",
                            code="EVENT_UNDEF", key="DG.COMMAND")
    timeout = None
    text = raw.get("DG.TIMEOUT")
    if text:
        if not (len(text) <= 6 and text.isascii() and text.isdigit()) \
                or int(text) > MAX_TIMEOUT:
            raise LBFormatError(f"DG.TIMEOUT must be whole seconds up to {MAX_TIMEOUT}, "
                                f"not {text[:40]!r}", key="DG.TIMEOUT")
        timeout = int(text)
    job_id = None
    text = raw.get("DG.JOBID")
    if text:
        try:
            job_id = JobId.parse(text)
        except LBFormatError as e:
            raise LBFormatError(f"bad DG.JOBID: {e.reason}", code="BAD_JOBID",
                                key="DG.JOBID") from None
    lllid = None
    if name == CONFIRM:
        text = raw.get("DG.LLLID", "")
        if not (0 < len(text) <= 19 and text.isascii() and text.isdigit()):
            raise LBFormatError(f"a confirmation needs the DG.LLLID of its line, not "
                                f"{text[:40]!r}", key="DG.LLLID")
        lllid = int(text)
    return Command(name, job_id, timeout, lllid)


def flush_record(job_id: JobId | str | None = None, *, timeout: int | None = None,
                 host: str | None = None) -> str:
    """The record (without LF) asking the logger to deliver ``job_id``'s pending
    events, or every job's, within ``timeout`` seconds."""
    fields = _command_fields(FLUSH, timeout, host)
    if job_id is not None:
        job = job_id if isinstance(job_id, JobId) else JobId.parse(str(job_id))
        fields.append(f"DG.JOBID={_quoted(str(job))}")
    return " ".join(fields)


def confirm_record(lllid: int, *, timeout: int, host: str | None = None) -> str:
    """The record asking an interlogger for the server's answer to spool line
    ``lllid``, waiting at most ``timeout`` seconds for it."""
    if isinstance(lllid, bool) or not isinstance(lllid, int) or not 0 < lllid < 10 ** 19:
        raise ValueError(f"not a DG.LLLID: {lllid!r}")
    return " ".join(_command_fields(CONFIRM, timeout, host) + [f"DG.LLLID={lllid}"])


def _command_fields(name: str, timeout: int | None, host: str | None) -> list[str]:
    fields = [f"DATE={Timeval.now().to_ulm()}",
              f"HOST={_quoted(socket.getfqdn() if host is None else host)}",
              "PROG=internal", "LVL=system", "DG.PRIORITY=1", 'DG.TYPE="command"',
              f'DG.COMMAND="{name}"']
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int) \
                or not 0 <= timeout <= MAX_TIMEOUT:
            raise ValueError(f"timeout must be whole seconds from 0 to {MAX_TIMEOUT}")
        fields.append(f'DG.TIMEOUT="{timeout}"')
    return fields


def _quoted(text: str) -> str:
    return f'"{ulm.escape_text(text)}"'
