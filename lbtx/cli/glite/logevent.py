"""``glite-lb-logevent``: log one event through the local logger (cli.md §3.2).

::

    glite-lb-logevent [-d] [-p] [-I] [-m host] [-i instance] [-j jobid] -s source
                      [-c seqcode] -e EventName [--field value | --field=value ...]

One long option for every field name of every event type (unused ones are
ignored for the chosen event, but source and job-id fields must still parse);
upstream's option syntax: long names match exactly, ``--field value`` and
``--field=value``, ``-j value`` and ``-j=value``; unknown options are ignored;
the flags ``-p -x -d -I`` swallow a following ``on/off/true/false/1/0``.

stdout is exactly one line, the new sequence code (input plus 2 in the source's
component; with ``-I`` the event carries the input and the output is plus 1),
printed even when logging failed. ``-p`` logs synchronously: the event reaches the
job's server before the command returns. The logger is ``LBTX_LOGGER``, else
``GLITE_WMS_LOG_DESTINATION`` / ``EDG_WL_LOG_DESTINATION``, else localhost:9002.

``-l N`` (stress only) replaces the event's ``reason`` by a filler of exactly N
characters: dots, the decimal offset written at every multiple of 20 that leaves
room, and ``end=N`` as its last characters (:func:`reason_filler`). N above
200,000,000 is reported and ignored, as upstream does; N <= 0 changes nothing.

Not supported: ``-x``/``-S``/``-U`` (the L&B proxy): refused with exit 1.
"""

from __future__ import annotations

import errno
import os
import sys

from lbtx.cli.client_error import strerror
from lbtx.cli.program import exit_status, program_name, run
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId
from lbtx.producer import LoggingError, Producer, RefusedError
from lbtx.producer.address import LOGGER_VARIABLES
from lbtx.schema import EVENT_SPECS, Level, Source
from lbtx.seqcode import ZERO_GLITE

__all__ = ["console", "main", "reason_filler"]

#: the longest ``-l`` filler; a longer one is reported and not used (as upstream)
MAX_REASON_LENGTH = 200_000_000

_FLAGS = {"-p": "priority", "--priority": "priority", "-x": "lbproxy", "--lbproxy": "lbproxy",
          "-d": "debug", "-I": "dont_increment", "--dont-increment": "dont_increment"}
_VALUES = {"-e": "event", "--event": "event", "-s": "source", "--source": "source",
           "-j": "jobid", "--jobid": "jobid", "-c": "sequence", "--sequence": "sequence",
           "-i": "instance", "--source-instance": "instance", "-m": "machine",
           "--machine": "machine", "-l": "reason_length", "--reason-length": "reason_length",
           "-S": "proxy_sock", "--lbproxy-store-sock": "proxy_sock", "-U": "proxy_user",
           "--lbproxy-user-dn": "proxy_user"}
_BOOL_WORDS = {"on", "off", "true", "false", "1", "0"}
#: field name -> the attribute specs of every event that has a field of that name
_FIELDS: dict[str, list] = {}
for _spec in EVENT_SPECS:
    for _a in _spec.attrs:
        _FIELDS.setdefault(_a.name, []).append(_a)


_HELP = """\
Usage: {prog} [-d] [-p] [-l len] [-I] [-m host] [-i instance] [-j jobid] -s source
       [-c seqcode] -e EventName [--field value | --field=value ...]

  -e, --event NAME             event type (-e help lists them with their fields)
  -s, --source NAME            source component (-s help lists them)
  -j, --jobid ID               job id (invented on the -m host when absent)
  -c, --sequence CODE          current sequence code (default: all zero)
  -i, --source-instance TEXT   source instance
  -m, --machine HOST           server host for an invented job id
  -p, --priority               synchronous: return once the server stored the event
  -I, --dont-increment         do not increment the sequence code
  -d                           debug level (LVL=DEBUG)
  -l, --reason-length N        replace the reason by a filler of N characters
  --<field> VALUE              a field of the event (any field of any event type)
  -h, --help                   this text

Prints the new sequence code. The logger is LBTX_LOGGER, else
GLITE_WMS_LOG_DESTINATION or EDG_WL_LOG_DESTINATION, else localhost:9002."""


class _Usage(Exception):
    pass


def _parse(argv: list[str]) -> tuple[dict, dict]:
    options: dict = {}
    fields: dict = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        name, eq, glued = arg.partition("=")
        if name in ("-h", "--help"):
            options["help"] = True
        elif name in _FLAGS:
            options[_FLAGS[name]] = True
            if not eq and i < len(argv) and argv[i].lower() in _BOOL_WORDS:
                options[_FLAGS[name]] = argv[i].lower() in ("on", "true", "1")
                i += 1
        elif name in _VALUES or (name.startswith("--") and name[2:] in _FIELDS):
            if eq:
                value = glued
            elif i < len(argv):
                value, i = argv[i], i + 1
            else:
                raise _Usage(f"option {name} needs a value")
            if name in _VALUES:
                options[_VALUES[name]] = value
            else:
                fields[name[2:]] = value
        # anything else: silently ignored, as upstream does
    return options, fields


def _c_int(text: str) -> int:
    """An integer read like C ``%i``: 0x hex, a leading 0 octal, else decimal."""
    t = text.strip()
    sign = -1 if t.startswith("-") else 1
    t = t.lstrip("+-")
    if t.lower().startswith("0x"):
        return sign * int(t[2:], 16)
    if len(t) > 1 and t.startswith("0"):
        return sign * int(t[1:], 8)
    return sign * int(t, 10)


def _check_fields(fields: dict, event_spec, opt: str) -> dict:
    """The chosen event's field texts; every field checked by its type."""
    mine = {a.name: a for a in event_spec.attrs}
    out = {}
    for name, value in fields.items():
        for a in _FIELDS[name]:
            if a.type == "logsrc" and Source.from_text(value) in (None, Source.NONE):
                raise _Usage(f"ERROR {opt}  unknown source: {value}")
            if a.type == "jobid" and value:
                try:
                    JobId.parse(value)
                except LBFormatError as e:
                    raise _Usage(f"ERROR {opt}  can't parse {value}: {e}") from None
        a = mine.get(name)
        if a is None:
            continue
        if a.type == "int" and a.enum is None:
            try:
                value = str(_c_int(value))
            except ValueError:
                raise _Usage(f"ERROR {opt}  can't parse {value}: not a number") from None
        out[name] = value
    return out


def _reason_length(text: str | None) -> int:
    if text is None:
        return 0
    try:
        return _c_int(text)
    except ValueError:
        raise _Usage(f"ERROR -l  can't parse {text}: not a number") from None


def reason_filler(length: int) -> str:
    """The ``-l`` filler: exactly ``length`` characters of dots, with the decimal
    offset written where a multiple of 20 begins (when at least 15 characters
    remain), and ``end=<length>`` over its last characters when it fits.

    (Upstream writes the same pattern but, unless ``length`` is a power of ten,
    ends the string one character short; cli.md asks for exactly ``length``.)
    """
    if length <= 0:
        return ""
    last = length - 15  # the last offset that leaves room: k + 14 < length
    text = "".join((str(k) if k <= last else "").ljust(20, ".")
                   for k in range(0, length, 20))[:length]
    end = f"end={length}"
    if length > len(end):
        text = text[:length - len(end)] + end
    return text


def _logger(environ) -> str:
    for name in LOGGER_VARIABLES:
        if environ.get(name):
            return environ[name]
    return "localhost:9002"


def main(argv: list[str] | None = None, environ=None) -> int:
    prog = program_name()
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    try:
        options, fields = _parse(argv)
    except _Usage as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 1
    if options.get("help"):
        print(_HELP.format(prog=prog))
        return 0
    event_name = options.get("event")
    if event_name is not None and event_name.lower() == "help":
        for spec in EVENT_SPECS:
            print(spec.name + "".join(f" --{a.name}" for a in spec.attrs))
        return 1
    specs = {s.name.lower(): s for s in EVENT_SPECS}
    if event_name is None:
        print(f"{prog}: unknown or unspecified event", file=sys.stderr)
        return 1
    spec = specs.get(event_name.lower())
    if spec is None:
        print(f"ERROR -e  unknown event: {event_name}", file=sys.stderr)
        return 1
    source_name = options.get("source")
    if source_name is not None and source_name.lower() == "help":
        for member in Source:
            if member is not Source.NONE:
                print(member.text)
        return 1
    source = Source.from_text(source_name or "")
    if source in (None, Source.NONE):
        print(f"ERROR -s  unknown source: {source_name or ''}", file=sys.stderr)
        return 1
    if options.get("lbproxy") or "proxy_sock" in options or "proxy_user" in options:
        print(f"{prog}: -x, -S and -U (the L&B proxy) are not supported by lbtx",
              file=sys.stderr)
        return 1
    try:
        attrs = _check_fields(fields, spec, "--")
        length = _reason_length(options.get("reason_length"))
    except _Usage as e:
        print(str(e), file=sys.stderr)
        return 1
    if length > MAX_REASON_LENGTH:
        print(f"{prog}: unsupported reason message length: {length}", file=sys.stderr)
    elif length > 0 and "reason" in {a.name for a in spec.attrs}:
        attrs["reason"] = reason_filler(length)
    failed_later = False
    job_text = options.get("jobid")
    if job_text is None:
        host = options.get("machine") or "localhost"
        job_text = str(JobId.generate(host))
        print(f"JobId not given: created {job_text} (server: {host})", file=sys.stderr)
        failed_later = "machine" not in options
    try:
        job = JobId.parse(job_text)
    except LBFormatError as e:
        print(f"{job_text}: {e}", file=sys.stderr)
        return 1
    code = options.get("sequence") or str(ZERO_GLITE)
    producer = Producer(_logger(environ), source=source, src_instance=options.get("instance"),
                        level=Level.DEBUG if options.get("debug") else Level.SYSTEM,
                        environ={})
    try:
        try:
            ctx = producer.context(job, code, increment=not options.get("dont_increment"))
        except LBFormatError:
            if spec.name.upper().startswith("CREAM"):
                ctx = producer.context(job, str(ZERO_GLITE),
                                       increment=not options.get("dont_increment"))
            else:
                print(f"SetLoggingJob({job},{code}): {strerror(errno.EINVAL)} "
                      f"(invalid sequence code)", file=sys.stderr)
                return 1
        status = 0
        try:
            producer.log_text(ctx, spec.name, attrs, sync=bool(options.get("priority")))
        except LBFormatError as e:
            print(f"{prog}: edg_wll_LogEvent(): {strerror(errno.EINVAL)} ({e})", file=sys.stderr)
            status = exit_status(errno.EINVAL)
        except LoggingError as e:
            number = errno.EINVAL if isinstance(e, RefusedError) else errno.EAGAIN
            print(f"{prog}: edg_wll_LogEvent(): {strerror(number)} ({e})", file=sys.stderr)
            status = exit_status(number)
        print(ctx.seqcode)
    finally:
        producer.close()
    return 1 if failed_later and status == 0 else status


def console() -> None:
    """The ``glite-lb-logevent`` console script."""
    run(main)


if __name__ == "__main__":
    console()
