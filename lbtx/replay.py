"""Offline replay: feed ULM event files through the acceptance rules and state machines.

This is the engine behind ``lbtx replay``: the same :func:`lbtx.acceptance.accept`
the server calls, over an in-memory job table. Lines are read in file order;
blank lines are skipped; dump prefixes (``DG.ARRIVED=``) and logger prefixes
(``DG.LLLID=``) are accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator, TextIO

from lbtx import ulm
from lbtx.acceptance import Delivery, MemoryJobTable, Outcome, accept
from lbtx.errors import LBFormatError
from lbtx.events import Event


@dataclass
class BadLine:
    """A line that is not a valid event: where it is and why."""

    source: str
    line: int
    error: LBFormatError

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.error}"


@dataclass
class Step:
    """One input event and what accepting it did."""

    number: int
    source: str
    line: int
    event: Event
    outcome: Outcome


def read_events(stream: TextIO, name: str, *, max_length: int = ulm.DEFAULT_MAX_LENGTH
                ) -> Iterator[tuple[int, Event | BadLine]]:
    """Yield ``(line number, event or BadLine)`` for every non-blank line of ``stream``."""
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            yield number, ulm.parse(line, max_length=max_length, require_user=True)
        except LBFormatError as e:
            yield number, BadLine(name, number, e)


class Replay:
    """Accept events one by one into an in-memory table, keeping the steps."""

    def __init__(self) -> None:
        self.table = MemoryJobTable(keep_events=False)
        self.steps = 0
        self.bad: list[BadLine] = []
        self.deliveries: dict[Delivery, int] = {}

    def feed(self, event: Event, source: str = "-", line: int = 0) -> Step:
        self.steps += 1
        outcome = accept(self.table, event)
        self.deliveries[outcome.delivery] = self.deliveries.get(outcome.delivery, 0) + 1
        return Step(self.steps, source, line, event, outcome)

    def feed_stream(self, stream: TextIO, name: str) -> Iterator[Step]:
        for number, item in read_events(stream, name):
            if isinstance(item, BadLine):
                self.bad.append(item)
                continue
            yield self.feed(item, name, number)

    def feed_files(self, paths: Iterable[str]) -> Iterator[Step]:
        for path in paths:
            with open(path, encoding="utf-8", errors="surrogateescape", newline="\n") as f:
                yield from self.feed_stream(f, path)

    def jobs(self):
        """Job records in order of first appearance."""
        return list(self.table.jobs.values())
