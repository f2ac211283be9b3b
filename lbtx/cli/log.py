"""``lbtx log``: log one event through the local logger and print the new sequence code.

Usage: ``lbtx log -j JOBID -s SOURCE -e EVENT [-c SEQCODE] [ATTR=VALUE ...]``.
Attributes are named as in the schema (``node=wn01``, ``dest_host=ce.example.org``)
and given as text; the event is validated before it is sent. The sequence code
is ``-c``, else ``EDG_WLL_SEQUENCE`` / ``EDG_WL_SEQUENCE``; the source's own
counter is incremented as formats.md §3.2 says, and the code for the next event
is printed. A ``RegJob`` is a registration: it goes to the job's server first
(synchronously), then to the logger, and starts from the all-zero code.
"""

from __future__ import annotations

import sys

from lbtx.errors import LBFormatError
from lbtx.producer import LoggingError, Producer

__all__ = ["add_parser", "run"]


def _attribute(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ValueError(text)
    return name, value


def add_parser(sub) -> None:
    p = sub.add_parser("log", help="log an event through the local logger",
                       description=__doc__.split("\n\n")[1])
    p.add_argument("-j", "--jobid", required=True, help="the job id")
    p.add_argument("-s", "--source", required=True, help="the logging component "
                                                          "(UserInterface, LRMS, ...)")
    p.add_argument("-e", "--event", required=True, help="the event type (Running, Done, ...)")
    p.add_argument("-c", "--sequence", help="sequence code received from the previous component")
    p.add_argument("-l", "--logger", help="logger address: a Unix socket path or host[:port] "
                                          "(default: LBTX_LOGGER, GLITE_WMS_LOG_DESTINATION, "
                                          "lbtx-data/logger.sock)")
    p.add_argument("--user", help="DG.USER to send (default: the logger sets it)")
    p.add_argument("--host", help="HOST of the event (default: this host)")
    p.add_argument("--instance", help="DG.SRC_INSTANCE of the event")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait [120]")
    p.add_argument("attributes", nargs="*", type=_attribute, metavar="ATTR=VALUE",
                   help="event attributes by schema name")
    p.set_defaults(run=run)


def run(args) -> int:
    attrs = dict(args.attributes)
    try:
        with Producer(args.logger, source=args.source, user=args.user, host=args.host,
                      src_instance=args.instance, timeout=args.timeout) as producer:
            if args.event.lower() == "regjob":
                ctx = producer.register_text(args.jobid, attrs, seqcode=args.sequence)
                code = ctx.seqcode
            else:
                ctx = producer.context(args.jobid, args.sequence)
                code = producer.log_text(ctx, args.event, attrs)
    except LBFormatError as e:
        print(f"lbtx log: invalid event: {e}", file=sys.stderr)
        return 2
    except LoggingError as e:
        print(f"lbtx log: not logged: {e}", file=sys.stderr)
        return 1
    print(code)
    return 0
