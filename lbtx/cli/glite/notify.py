"""``glite-lb-notify``: notification registrations (cli.md §3.9, docs/notifications.md).

::

    glite-lb-notify new [-s fd | -a URL] [-t validity] [-j jobid] [-o owner | -O]
                        [-n network_server] [-v VO] [-S|--state s1,s2] [-E|--type t1,t2]
                        [-c] [-J|--jdl] [-B|--bootstrap] [-T|--terminal] [-H|--history]
                        [-N|--anonymize] [-f flags]
    glite-lb-notify bind [-s fd | -a URL] [-t validity] notifid
    glite-lb-notify change notifid jobid
    glite-lb-notify refresh [-t validity] notifid
    glite-lb-notify receive [-s fd | -a URL] [-t validity] [-i timeout] [-r]
                            [-f field1,field2,...] notifid [notifid ...]
    glite-lb-notify drop notifid

The server is ``GLITE_WMS_NOTIF_SERVER`` (``EDG_WL_NOTIF_SERVER``), else the server
named in the job id (``new -j``) or in the notification id. lbtx talks to the JSON
API of the query port. ``-a`` takes a callback URL (``http://``/``https://``): the
server POSTs notifications there. Without ``-a`` a registration is pulled:
``receive`` binds it to no destination and long-polls the server. ``receive -a URL``
binds the registration to the URL and itself listens on the URL's port, printing
what is POSTed. ``-s fd`` (a listening socket of the original library) binds nothing.

Exit codes: 0; 64 (``EX_USAGE``) for bad usage; 74 (``EX_IOERR``) when ``new``,
``bind`` or ``receive`` fail; the error number when ``change``, ``refresh`` or
``drop`` fail; ``receive`` ends after ``-i`` seconds (600) with ``ETIMEDOUT``.
"""

from __future__ import annotations

import getopt
import sys
import time
from typing import TextIO

from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import AddressError, parse_server, setting
from lbtx.cli.notify_client import NotifyClient
from lbtx.cli.notify_receive import Receiver
from lbtx.cli.notify_lines import (DEFAULT_FIELDS, FieldError, notification_line,
                                   parse_fields, utc_text)
from lbtx.cli.program import exit_status, program_name, run
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId, NotifId
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.query.conditions import Attr, Condition, Op
from lbtx.schema import JobState, StatJobtype

__all__ = ["main", "EX_USAGE", "EX_IOERR"]

EX_USAGE = 64
EX_IOERR = 74
MAX_GROUPS = 7
RECEIVE_VALIDITY = 3600
RECEIVE_TIMEOUT = 600
_FLAG_NAMES = ((1, "classadd"), (32, "anonymized"), (64, "terminal_states"),
               (128, "history"), (256, "bootstrap"))


class _Usage(Exception):
    """Bad usage: print ``message`` (if any) and the usage, exit ``status``."""

    def __init__(self, message: str = "", status: int = EX_USAGE, *, to_stdout=False):
        super().__init__(message)
        self.message = message
        self.status = status
        self.to_stdout = to_stdout


class _Quit(Exception):
    """An upstream quirk: print ``message`` on stderr and exit 0."""


def usage(prog: str, err: TextIO) -> None:
    err.write(
        f"Usage: {prog} command [options]\n"
        "  new [-s fd | -a URL] [-t validity] [-j jobid] [-o owner | -O] [-n network_server]\n"
        "      [-v VO] [-S|--state s1,s2] [-E|--type t1,t2] [-c] [-J|--jdl] [-B|--bootstrap]\n"
        "      [-T|--terminal] [-H|--history] [-N|--anonymize] [-f flags]\n"
        "  bind [-s fd | -a URL] [-t validity] notifid\n"
        "  change notifid jobid\n"
        "  refresh [-t validity] notifid\n"
        "  receive [-s fd | -a URL] [-t validity] [-i timeout] [-r] [-f field,...] notifid...\n"
        "  drop notifid\n"
        "The server is GLITE_WMS_NOTIF_SERVER (host:port); -a takes a callback URL.\n")


def _int(text: str, what: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise _Usage(f"{what} must be a number, not {text!r}") from None


def _client(notif_or_job=None) -> NotifyClient:
    text = setting("NOTIF_SERVER")
    try:
        if text is not None:
            address = parse_server(text)
        elif notif_or_job is not None:
            address = parse_server(f"{notif_or_job.host}:{notif_or_job.port}")
        else:
            raise ClientError(ErrorCode.EINVAL, "no server: set GLITE_WMS_NOTIF_SERVER")
    except AddressError as e:
        raise ClientError(ErrorCode.EINVAL, str(e)) from None
    timeout = 120.0
    t = setting("NOTIF_TIMEOUT")
    if t is not None:
        try:
            timeout = max(1.0, min(float(t), 1800.0))
        except ValueError:
            pass
    return NotifyClient(address, timeout=timeout)


def _notif_id(args: list[str], *, to_stdout: bool = False, status: int = EX_USAGE) -> NotifId:
    try:
        return NotifId.parse(args[0])
    except (IndexError, LBFormatError, ValueError):
        raise _Usage("Notification ID parameter not set propperly!", status,
                     to_stdout=to_stdout) from None


def _validity(opts) -> int | None:
    for opt, value in opts:
        if opt == "-t":
            v = _int(value, "-t")
            return v if v > 0 else None
    return None


def _destination(opts) -> tuple[str | None, bool]:
    """``(-a URL, -s given)``; both is bad usage."""
    a = [v for o, v in opts if o == "-a"]
    s = [v for o, v in opts if o == "-s"]
    if a and s:
        raise _Usage("-s and -a cannot be used together")
    return (a[-1] if a else None), bool(s)


# --- new --------------------------------------------------------------------------

def _new(args, out, err) -> int:
    opts, rest = _getopt(args, "s:a:t:j:o:On:v:S:E:cJBTHNf:",
                         ["state=", "type=", "jdl", "bootstrap", "terminal", "history",
                          "anonymize"])
    if rest:
        raise _Usage(f"unexpected argument {rest[0]!r}")
    destination, _ = _destination(opts)
    groups, flags, job = [], 0, None
    owners = [o for o, _ in opts if o in ("-o", "-O")]
    if len(set(owners)) > 1:
        raise _Usage("-o and -O cannot be used together")
    for opt, value in opts:
        if opt == "-j":
            try:
                job = JobId.parse(value)
            except (LBFormatError, ValueError):
                raise _Usage("Job ID parameter not set propperly!", 0) from None
            groups.append((Condition(Attr.JOBID, Op.EQUAL, job),))
        elif opt == "-o":
            groups.append((Condition(Attr.OWNER, Op.EQUAL, value),))
        elif opt == "-O":
            groups.append((Condition(Attr.OWNER, Op.EQUAL, None),))
        elif opt == "-n":
            groups.append((Condition(Attr.NETWORK_SERVER, Op.EQUAL, value),))
        elif opt == "-v":
            groups.append((Condition(Attr.JDL_ATTR, Op.EQUAL, value,
                                     name="VirtualOrganisation"),))
        elif opt in ("-S", "--state"):
            states = []
            for name in filter(None, value.split(",")):
                state = JobState.from_text(name.strip())
                if state is None:
                    raise _Quit(f"'{name}' is not a valid state name! Exitting.")
                states.append(Condition(Attr.STATUS, Op.EQUAL, state))
            if states:
                groups.append(tuple(states))
        elif opt in ("-E", "--type"):
            types = []
            for name in filter(None, value.split(",")):
                jobtype = StatJobtype.from_text(name.strip())
                if jobtype is None:
                    raise _Quit(f"'{name}' is not a valid job type! Exitting.")
                types.append(Condition(Attr.JOBTYPE, Op.EQUAL, jobtype))
            if types:
                groups.append(tuple(types))
        elif opt == "-c":
            groups.append((Condition(Attr.STATUS, Op.CHANGED),))
        elif opt in ("-J", "--jdl"):
            flags |= 1
        elif opt in ("-N", "--anonymize"):
            flags |= 32
        elif opt in ("-T", "--terminal"):
            flags |= 64
        elif opt in ("-H", "--history"):
            flags |= 128 | 64
        elif opt in ("-B", "--bootstrap"):
            flags |= 256
        elif opt == "-f":
            flags |= _int(value, "-f")
    if len(groups) > MAX_GROUPS:
        raise _Usage(f"at most {MAX_GROUPS} conditions")
    validity = _validity(opts)
    try:
        reg = _client(job).new(destination=destination, conditions=tuple(groups),
                               flags=[n for bit, n in _FLAG_NAMES if flags & bit],
                               validity=validity)
    except ClientError as e:
        return _failed(e, err, EX_IOERR)
    out.write(f"notification ID: {reg['id']}\n")
    out.write(f"valid: {utc_text(reg['expires'])} ({int(reg['expires'])})\n")
    return 0


# --- bind, change, refresh, drop ----------------------------------------------------

def _bind(args, out, err) -> int:
    opts, rest = _getopt(args, "s:a:t:", [])
    destination, _ = _destination(opts)
    notif = _notif_id(rest)
    validity = _validity(opts)
    try:
        reg = _client(notif).bind(str(notif), destination=destination, validity=validity)
    except ClientError as e:
        return _failed(e, err, EX_IOERR)
    out.write(f"valid until: {utc_text(reg['expires'])} ({int(reg['expires'])})\n")
    return 0


def _change(args, out, err) -> int:
    opts, rest = _getopt(args, "", [])
    notif = _notif_id(rest, to_stdout=True, status=1)
    if len(rest) < 2:
        raise _Usage("change needs a notification id and a job id")
    try:
        job = JobId.parse(rest[1])
    except (LBFormatError, ValueError):
        raise _Usage("Job ID parameter not set propperly!") from None
    try:
        _client(notif).change(str(notif), ((Condition(Attr.JOBID, Op.EQUAL, job),),))
    except ClientError as e:
        return _failed(e, err, exit_status(e.code))
    return 0


def _refresh(args, out, err) -> int:
    opts, rest = _getopt(args, "t:", [])
    notif = _notif_id(rest)
    validity = _validity(opts)
    try:
        reg = _client(notif).refresh(str(notif), validity=validity)
    except ClientError as e:
        return _failed(e, err, exit_status(e.code))
    out.write(f"valid until: {utc_text(reg['expires'])} ({int(reg['expires'])})\n")
    return 0


def _drop(args, out, err) -> int:
    opts, rest = _getopt(args, "", [])
    if not rest:
        raise _Usage("Notification ID parameter not set propperly!")
    try:
        notif = NotifId.parse(rest[0])
    except (LBFormatError, ValueError) as e:
        return _failed(ClientError(ErrorCode.EINVAL, f"not a notification id: {e}"[:200]),
                       err, exit_status(ErrorCode.EINVAL))
    try:
        _client(notif).drop(str(notif))
    except ClientError as e:
        return _failed(e, err, exit_status(e.code))
    return 0


# --- receive --------------------------------------------------------------------------

def _receive(args, out, err) -> int:
    opts, rest = _getopt(args, "s:a:t:i:rf:", [])
    destination, socket_given = _destination(opts)
    if socket_given and any(o in ("-a", "-t", "-r") for o, _ in opts):
        raise _Usage("-s cannot be used with -a, -t or -r")
    fields_text = next((v for o, v in reversed(opts) if o == "-f"), DEFAULT_FIELDS)
    try:
        fields = parse_fields(fields_text)
    except FieldError as e:
        err.write(f"{e.name}: invalid argument\n")
        return EX_USAGE
    timeout = next((_int(v, "-i") for o, v in reversed(opts) if o == "-i"), RECEIVE_TIMEOUT)
    refresh = any(o == "-r" for o, _ in opts)
    validity = _validity(opts) or RECEIVE_VALIDITY
    if not rest:
        raise _Usage("Notification ID parameter not set propperly!")
    ids = [_notif_id([text]) for text in rest]
    receiver = Receiver(ids, client_of=_client, out=out, err=err, fields=fields,
                        destination=destination, bind=not socket_given, validity=validity,
                        refresh=refresh, line=notification_line)
    try:
        receiver.run(time.monotonic() + max(0, timeout))
    except ClientError as e:
        return _failed(e, err, EX_IOERR)
    err.write(f"{program_name()}: {ClientError(ErrorCode.ETIMEDOUT, 'no more notifications').text()}\n")
    return int(ErrorCode.ETIMEDOUT)


# --- main ---------------------------------------------------------------------------------

def _getopt(args, short, long):
    try:
        return getopt.gnu_getopt(args, short, long)
    except getopt.GetoptError as e:
        raise _Usage(e.msg) from None


def _failed(e: ClientError, err: TextIO, status: int) -> int:
    err.write(f"{program_name()}: {e.text()}\n")
    return status


_COMMANDS = {"new": _new, "bind": _bind, "change": _change, "refresh": _refresh,
             "receive": _receive, "drop": _drop}


def main(argv: list[str] | None = None, *, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    out = out or sys.stdout
    err = err or sys.stderr
    prog = program_name()
    if not args or args[0] in ("help", "--help", "-h", "-?"):
        usage(prog, err)
        return 0
    command = _COMMANDS.get(args[0])
    if command is None:
        err.write(f"{prog}: unknown command {args[0][:40]!r}\n")
        usage(prog, err)
        return EX_USAGE
    try:
        return command(args[1:], out, err)
    except _Usage as e:
        if e.message:
            (out if e.to_stdout else err).write(
                (e.message if e.to_stdout else f"{prog}: {e.message}") + "\n")
        usage(prog, err)
        return e.status
    except _Quit as e:
        err.write(f"{e}\n")
        return 0


def console() -> None:
    """The ``glite-lb-notify`` console script."""
    run(main)


if __name__ == "__main__":
    console()
