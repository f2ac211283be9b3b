"""Exponential back-off with jitter, per destination.

After the ``n``-th failure in a row a queue waits ``delay(n)`` seconds: the base
``initial * factor ** (n - 1)``, capped at ``maximum``, shortened by a random part
of at most ``jitter`` of it, so queues that failed together (a server restart)
do not come back in step. Always ``maximum * (1 - jitter) <= delay <= maximum``
once capped, and never more than ``maximum``.
"""

from __future__ import annotations

import random as _random
from dataclasses import dataclass
from typing import Callable

__all__ = ["Backoff"]


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.5

    def __post_init__(self):
        if not (self.initial > 0 and self.factor >= 1 and self.maximum >= self.initial
                and 0 <= self.jitter < 1):
            raise ValueError(f"bad back-off parameters {self!r}")

    def base(self, attempt: int) -> float:
        """The delay before jitter after ``attempt`` (>= 1) failures in a row."""
        exponent = min(max(attempt, 1) - 1, 1000)
        try:
            return min(self.maximum, self.initial * self.factor ** exponent)
        except OverflowError:
            return self.maximum

    def delay(self, attempt: int, random: Callable[[], float] = _random.random) -> float:
        """Seconds to wait after ``attempt`` failures in a row; ``random()`` in [0, 1)."""
        base = self.base(attempt)
        return base * (1.0 - self.jitter * random())
