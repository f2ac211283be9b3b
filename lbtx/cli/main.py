"""The ``lbtx`` command: one entry point, one subcommand per module."""

from __future__ import annotations

import argparse
import sys

from lbtx import __version__
from lbtx.cli import ca, flush, log, queries, replay, serve, watch


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lbtx", description="lbtx Logging and Bookkeeping tools")
    parser.add_argument("--version", action="version", version=f"lbtx {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    replay.add_parser(sub)
    ca.add_parser(sub)
    queries.add_parsers(sub)
    log.add_parser(sub)
    flush.add_parser(sub)
    serve.add_parser(sub)
    watch.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
