"""Value types shared by the daemons' command-line options (twisted ``usage.Options``)."""

from __future__ import annotations

from typing import Callable

from twisted.python import usage

__all__ = ["non_negative", "non_negative_float", "non_negative_int", "positive",
           "positive_int", "positive_float"]


def positive(kind: type, name: str | None = None) -> Callable[[str], object]:
    """A converter for a positive ``kind`` (int or float); ``name`` is the option,
    for the error message."""
    what = f"--{name}" if name else "the option"

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise usage.UsageError(f"{what} needs a positive number, not {text!r}") from None
        if not value > 0:
            raise usage.UsageError(f"{what} must be positive, not {text!r}")
        return value
    return convert


def non_negative(kind: type, name: str | None = None) -> Callable[[str], object]:
    """A converter for a ``kind`` (int or float) that may be 0 but not negative,
    infinite or not a number."""
    what = f"--{name}" if name else "the option"

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise usage.UsageError(f"{what} needs a number, not {text!r}") from None
        if not value >= 0 or value == float("inf"):
            raise usage.UsageError(f"{what} must be 0 or more, not {text!r}")
        return value
    return convert


def non_negative_float(name: str | None = None) -> Callable[[str], float]:
    return non_negative(float, name)


def non_negative_int(name: str | None = None) -> Callable[[str], int]:
    return non_negative(int, name)


def positive_int(name: str | None = None):
    return positive(int, name)


def positive_float(name: str | None = None):
    return positive(float, name)
