"""Identities as L&B compares them (formats.md §0.2).

Certificate subjects are normalised before comparison: ``/emailAddress=`` becomes
``/Email=``, trailing ``/CN=proxy`` components are dropped, and the comparison
ignores case.
"""

from __future__ import annotations

import hashlib

_PROXY_SUFFIX = "/cn=proxy"


def normalise(subject: str) -> str:
    """The canonical form of a subject (case preserved; see :func:`same`)."""
    s = subject.replace("/emailAddress=", "/Email=")
    while s.lower().endswith(_PROXY_SUFFIX):
        s = s[: -len(_PROXY_SUFFIX)]
    return s


def key(subject: str) -> str:
    """The comparison key: normalised and case-folded."""
    return normalise(subject).casefold()


def same(a: str | None, b: str | None) -> bool:
    """Whether two subjects denote the same identity."""
    if a is None or b is None:
        return a is b
    return key(a) == key(b)


def user_id(subject: str) -> str:
    """The server's id for a user: hex MD5 of the normalised subject."""
    return hashlib.md5(normalise(subject).encode("utf-8", "surrogateescape")).hexdigest()
