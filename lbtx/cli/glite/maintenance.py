"""``glite-lb-purge``, ``glite-lb-dump`` and ``glite-lb-load`` (cli.md §3.13-3.15):
the administrators' commands, over the legacy protocol's purge, dump and load
requests (formats.md §7.11). The server needs ``PURGE`` (purge) or
``ADMIN_ACCESS`` (dump, load) of the caller; files are on the server host.
"""

from __future__ import annotations

import calendar
import re
import time
from typing import TextIO

from lbtx import __version__
from lbtx.cli.client_error import ClientError
from lbtx.cli.environment import Address, AddressError, Settings, parse_server, query_address
from lbtx.cli.program import begin, run
from lbtx.cli.query_client import QueryClient, interpret
from lbtx.protocols.legacy_query import maintenance_xml as mx
from lbtx.protocols.legacy_query.errors import ErrorCode
from lbtx.protocols.legacy_query.escaping import to_wire
from lbtx.schema import JobState
from lbtx.timeval import Timeval

__all__ = ["purge_main", "dump_main", "load_main", "parse_duration", "parse_dump_time"]

_DURATION = re.compile(r"^(\d{1,12})([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NAMED_STATES = {JobState.ABORTED, JobState.CLEARED, JobState.CANCELLED, JobState.DONE}


def parse_duration(text: str) -> int:
    """``NNN[smhd]`` in seconds (ValueError otherwise)."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"bad time {text!r}: expected NNN[smhd]")
    return int(m.group(1)) * _UNITS[m.group(2)]


def parse_dump_time(text: str) -> int:
    """UTC ``YYYYMMDDhhmmss``, ``now``, ``last_start`` or ``last_end``."""
    t = text.strip()
    named = {"now": mx.DUMP_NOW, "last_start": mx.DUMP_LAST_START, "last_end": mx.DUMP_LAST_END}
    if t in named:
        return named[t]
    if len(t) != 14 or not t.isascii() or not t.isdigit():
        raise ValueError(text)
    try:
        return calendar.timegm(time.strptime(t, "%Y%m%d%H%M%S"))
    except ValueError:
        raise ValueError(text) from None


def _address(settings: Settings, server: str | None, proxy_sock: str | None) -> Address:
    if proxy_sock is not None:
        return Address.unix(proxy_sock or settings.proxy_serve_sock)
    if server:
        return parse_server(server)
    return query_address(settings)


def _post(address: Address, timeout: float, path: str, document: str, reader):
    client = QueryClient(address, timeout=timeout)
    response = client.exchange(f"POST {path} HTTP/1.1", to_wire(document))
    return interpret(response, reader)


def _version(prog: str, out: TextIO) -> int:
    out.write(f"{prog}: lbtx version {__version__}\n")
    return 0


def _uldate(epoch: int) -> str:
    return Timeval(int(epoch), 0).to_ulm()


def _failed(err: TextIO, call: str, e) -> None:
    """``Error running the <call>().`` and ``<error> (<desc>)`` on stderr."""
    text = e.text() if isinstance(e, ClientError) else ClientError(ErrorCode.EINVAL, str(e)).text()
    err.write(f"Error running the {call}().\n{text}\n")


# --- glite-lb-purge ----------------------------------------------------------------------------
def _purge_usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-m|--server host:port] [-j|--jobs file] [-a|--aborted T]\n"
              "       [-c|--cleared T] [-n|--cancelled T] [-e|--done T] [-o|--other T]\n"
              "       [-r|--dry-run] [-l|--return-list] [-s|--server-dump] [-i|--client-dump]\n"
              "       [-t|--target-runtime T] [-b|--background] [-x | -X sock] [-d] [-h] [-v]\n"
              "  T is NNN[smhd] (seconds by default); unset timeouts are the server's.\n")


def purge_main(argv: list[str] | None = None, *, out: TextIO | None = None,
               err: TextIO | None = None, settings: Settings | None = None) -> int:
    begun = begin(argv, out, err, settings, "m:j:a:c:n:e:o:rlsit:bxX:dhv",
                   ["server=", "jobs=", "aborted=", "cleared=", "cancelled=", "done=", "other=",
                    "dry-run", "return-list", "server-dump", "client-dump", "target-runtime=",
                    "background", "proxy", "sock=", "debug", "help", "version"], usage=_purge_usage)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    server = jobs_file = proxy = None
    timeouts: dict[JobState, int] = {}
    other = None
    flags = mx.PurgeFlag.REALLY_PURGE
    runtime = 0
    per_state = {"-a": JobState.ABORTED, "--aborted": JobState.ABORTED,
                 "-c": JobState.CLEARED, "--cleared": JobState.CLEARED,
                 "-n": JobState.CANCELLED, "--cancelled": JobState.CANCELLED,
                 "-e": JobState.DONE, "--done": JobState.DONE}
    try:
        for opt, value in opts:
            if opt in ("-h", "--help"):
                _purge_usage(prog, err)
                return 1
            if opt in ("-v", "--version"):
                return _version(prog, out)
            if opt in ("-m", "--server"):
                server = value
            elif opt in ("-j", "--jobs"):
                jobs_file = value
            elif opt in per_state:
                timeouts[per_state[opt]] = parse_duration(value)
            elif opt in ("-o", "--other"):
                other = parse_duration(value)
            elif opt in ("-r", "--dry-run"):
                flags &= ~mx.PurgeFlag.REALLY_PURGE
            elif opt in ("-l", "--return-list"):
                flags |= mx.PurgeFlag.LIST_JOBS
            elif opt in ("-s", "--server-dump"):
                flags |= mx.PurgeFlag.SERVER_DUMP
            elif opt in ("-i", "--client-dump"):
                flags |= mx.PurgeFlag.CLIENT_DUMP
            elif opt in ("-t", "--target-runtime"):
                runtime = parse_duration(value)
            elif opt in ("-b", "--background"):
                flags |= mx.PurgeFlag.BACKGROUND
            elif opt in ("-x", "--proxy"):
                proxy = ""
            elif opt in ("-X", "--sock"):
                proxy = value
    except ValueError as e:
        err.write(f"{prog}: {e}\n")
        _purge_usage(prog, err)
        return 1
    if rest:
        err.write(f"{prog}: unexpected argument {rest[0]!r}\n")
        _purge_usage(prog, err)
        return 1
    if other is not None:
        for state in JobState:
            if state not in _NAMED_STATES:
                timeouts.setdefault(state, other)
    jobs: list[str] = []
    if jobs_file is not None:
        try:
            with open(jobs_file, encoding="utf-8", errors="surrogateescape") as f:
                jobs = [line.strip() for line in f if line.strip()]
        except OSError:
            err.write(f"Unable to read jobIds from file '{jobs_file}'\n")
            return 1
        if not jobs:
            return 1
    req = mx.PurgeRequest(tuple(jobs), timeouts, runtime, flags)
    try:
        address = _address(settings, server, proxy)
        error, result = _post(address, settings.query_timeout, "/purgeRequest",
                              mx.write_purge(req), mx.read_purge_result)
    except (AddressError, ClientError) as e:
        if isinstance(e, ClientError) and e.code == ErrorCode.ACCEPTED_OK:
            err.write(f"{e.text()}\n")  # the server goes on in the background
            return 0
        _failed(err, "edg_wll_Purge", e)
        return 1
    status = 0
    if error is not None:
        _failed(err, "edg_wll_Purge", ClientError(*error))
        status = 1
        if error[0] not in (ErrorCode.ENOENT, ErrorCode.EPERM, ErrorCode.EINVAL):
            return status
    if result.server_file:
        out.write(f"Server dump: {result.server_file}\n")
    else:
        out.write("The jobs were not dumped.\n")
    if flags & mx.PurgeFlag.LIST_JOBS:
        verb = "were" if flags & mx.PurgeFlag.REALLY_PURGE else "would be"
        out.write(f"The following jobs {verb} purged:\n")
        for job in result.jobs:
            out.write(f"{job}\n")
        if not result.jobs:
            out.write("None.\n")
    return status


# --- glite-lb-dump -----------------------------------------------------------------------------
def _dump_usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-m|--server host:port] [-f|--from T] [-t|--to T] [-d] [-h] [-v]\n"
              "  T is UTC YYYYMMDDhhmmss, now, last_start or last_end\n"
              "  (defaults: from last_end, to now)\n")


def _interval_lines(out: TextIO, result) -> None:
    if result.from_ is not None:
        out.write(f"- from: {result.from_} (i.e. {_uldate(result.from_)}).\n")
    if result.to is not None:
        out.write(f"- to: {result.to} (i.e. {_uldate(result.to)}).\n")


def dump_main(argv: list[str] | None = None, *, out: TextIO | None = None,
              err: TextIO | None = None, settings: Settings | None = None) -> int:
    begun = begin(argv, out, err, settings, "m:f:t:dhv",
                   ["server=", "from=", "to=", "debug", "help", "version"], usage=_dump_usage)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    server, start, end = None, mx.DUMP_LAST_END, mx.DUMP_NOW
    for opt, value in opts:
        if opt in ("-h", "--help"):
            _dump_usage(prog, err)
            return 1
        if opt in ("-v", "--version"):
            return _version(prog, out)
        if opt in ("-m", "--server"):
            server = value
        elif opt in ("-f", "--from"):
            try:
                start = parse_dump_time(value)
            except ValueError:
                out.write("Invalid 'from' date\n")
                return 0
        elif opt in ("-t", "--to"):
            try:
                end = parse_dump_time(value)
            except ValueError:
                out.write("Invalid 'to' date\n")
                return 0
    if rest:
        err.write(f"{prog}: unexpected argument {rest[0]!r}\n")
        _dump_usage(prog, err)
        return 1
    try:
        address = _address(settings, server, None)
        error, result = _post(address, settings.query_timeout, "/dumpRequest",
                              mx.write_dump(mx.DumpRequest(start, end)), mx.read_dump_result)
    except (AddressError, ClientError) as e:
        _failed(err, "edg_wll_DumpEvents", e)
        return 0
    if error is not None:
        _failed(err, "edg_wll_DumpEvents", ClientError(*error))
        return 0
    out.write("Dump result:\n")
    if result.server_file:
        out.write(f"- The jobs were dumped to the file '{result.server_file}' at the server.\n")
    else:
        out.write("- The jobs were not dumped.\n")
    _interval_lines(out, result)
    return 0


# --- glite-lb-load -----------------------------------------------------------------------------
def _load_usage(prog: str, err: TextIO) -> None:
    err.write(f"Usage: {prog} [-m|--server host:port] -f|--file server_side_dump_file "
              "[-d] [-h] [-v]\n")


def load_main(argv: list[str] | None = None, *, out: TextIO | None = None,
              err: TextIO | None = None, settings: Settings | None = None) -> int:
    begun = begin(argv, out, err, settings, "m:f:dhv",
                   ["server=", "file=", "debug", "help", "version"], usage=_load_usage)
    if isinstance(begun, int):
        return begun
    opts, rest, out, err, settings, prog = begun
    server = path = None
    for opt, value in opts:
        if opt in ("-h", "--help"):
            _load_usage(prog, err)
            return 1
        if opt in ("-v", "--version"):
            return _version(prog, out)
        if opt in ("-m", "--server"):
            server = value
        elif opt in ("-f", "--file"):
            path = value
    if rest or not path:
        err.write(f"{prog}: " + (f"unexpected argument {rest[0]!r}" if rest
                                  else "-f server_side_dump_file is required") + "\n")
        _load_usage(prog, err)
        return 1
    try:
        address = _address(settings, server, None)
        error, result = _post(address, settings.query_timeout, "/loadRequest",
                              mx.write_load(mx.LoadRequest(path)),
                              lambda data: mx.read_dump_result(data, "edg_wll_LoadResult"))
    except (AddressError, ClientError) as e:
        _failed(err, "edg_wll_LoadEvents", e)
        return 0
    if error is not None:
        _failed(err, "edg_wll_LoadEvents", ClientError(*error))
        if not result.server_file:
            return 0
    out.write("Load result:\n")
    if result.server_file:
        out.write(f"- Unloaded events were stored into the server file '{result.server_file}'.\n")
    _interval_lines(out, result)
    return 0


def purge_console() -> None:
    run(purge_main)


def dump_console() -> None:
    run(dump_main)


def load_console() -> None:
    run(load_main)
