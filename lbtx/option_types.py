"""Value types shared by the daemons' command-line options (twisted ``usage.Options``)."""

from __future__ import annotations

from typing import Callable

from twisted.python import usage

__all__ = ["non_negative", "non_negative_float", "non_negative_int", "positive",
           "positive_int", "positive_float"]


def _checked(kind: type, name: str | None, accept: Callable[[object], bool], needs: str,
             must: str) -> Callable[[str], object]:
    """A converter to ``kind`` that refuses, with a usage error naming the option,
    text that is no ``kind`` ("``--name`` needs ``needs``") or a value that fails
    ``accept`` ("``--name`` must be ``must``")."""
    what = f"--{name}" if name else "the option"

    def convert(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise usage.UsageError(f"{what} needs {needs}, not {text!r}") from None
        if not accept(value):
            raise usage.UsageError(f"{what} must be {must}, not {text!r}")
        return value
    return convert


def positive(kind: type, name: str | None = None) -> Callable[[str], object]:
    """A converter for a positive ``kind`` (int or float); ``name`` is the option,
    for the error message."""
    return _checked(kind, name, lambda v: v > 0, "a positive number", "positive")


def non_negative(kind: type, name: str | None = None) -> Callable[[str], object]:
    """A converter for a ``kind`` (int or float) that may be 0 but not negative,
    infinite or not a number."""
    return _checked(kind, name, lambda v: v >= 0 and v != float("inf"), "a number",
                    "0 or more")


def non_negative_float(name: str | None = None) -> Callable[[str], float]:
    return non_negative(float, name)


def non_negative_int(name: str | None = None) -> Callable[[str], int]:
    return non_negative(int, name)


def positive_int(name: str | None = None):
    return positive(int, name)


def positive_float(name: str | None = None):
    return positive(float, name)
