"""The server's authorization policy file (formats.md §11.6).

A policy file grants server-wide rights (actions) to subjects and VOMS FQANs::

    # super-users and the WMS
    resource "LB" {
        action "ADMIN_ACCESS" {
            rule permit { subject = "/DC=org/DC=example/CN=LB Admin" }
        }
        action "READ_ALL" {
            rule permit { fqan = "/atlas/Role=monitor" }
            rule permit { subject = "/DC=org/DC=example/CN=wms.example.org" }
        }
    }

A rule matches a caller when every attribute of it matches (``subject`` is
compared as subjects are, §0.2, and ``.*`` matches any subject; ``fqan`` exactly,
against any of the caller's FQANs, and ``.*`` matches any FQAN, so a caller
without FQANs has none to match); an action is granted when any of its rules matches;
anything not granted is denied. Only ``permit`` rules exist: a policy that says
``deny`` is refused rather than half-understood. ``#`` starts a comment.

:func:`parse_policy` reads the text, :func:`load_policy` a file; both raise
:class:`PolicyError` naming the line and column of the first mistake.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from lbtx import subject

__all__ = ["Action", "Rule", "ServerPolicy", "PolicyError", "parse_policy", "load_policy",
           "MAX_POLICY_BYTES"]

#: the largest policy file read (a policy is a handful of rules)
MAX_POLICY_BYTES = 1024 * 1024
_ANY = ".*"


class Action(str, enum.Enum):
    ADMIN_ACCESS = "ADMIN_ACCESS"
    STATUS_FOR_MONITORING = "STATUS_FOR_MONITORING"
    LOG_WMS_EVENTS = "LOG_WMS_EVENTS"
    LOG_CE_EVENTS = "LOG_CE_EVENTS"
    LOG_GENERAL_EVENTS = "LOG_GENERAL_EVENTS"
    GET_STATISTICS = "GET_STATISTICS"
    REGISTER_JOBS = "REGISTER_JOBS"
    READ_ALL = "READ_ALL"
    PURGE = "PURGE"
    GRANT_OWNERSHIP = "GRANT_OWNERSHIP"
    READ_ANONYMIZED = "READ_ANONYMIZED"
    REGISTER_FOREIGN = "REGISTER_FOREIGN"


class PolicyError(ValueError):
    def __init__(self, reason: str, source: str = "<policy>", line: int = 0, column: int = 0):
        where = f"{source}:{line}:{column}" if line else source
        super().__init__(f"{where}: {reason}")
        self.reason, self.line, self.column = reason, line, column


@dataclass(frozen=True)
class Rule:
    """``rule permit { subject = "..." fqan = "..." }``: all attributes must match."""

    subjects: tuple[str, ...] = ()
    fqans: tuple[str, ...] = ()

    def matches(self, name: str | None, fqans: Iterable[str]) -> bool:
        for want in self.subjects:
            if want != _ANY and not (name is not None and subject.same(want, name)):
                return False
        have = set(fqans)
        for want in self.fqans:
            if want == _ANY:
                if not have:
                    return False
            elif want not in have:
                return False
        return True


@dataclass(frozen=True)
class ServerPolicy:
    """The rules of each action; an empty policy grants nothing."""

    rules: dict = field(default_factory=dict)

    def allows(self, action: Action, caller) -> bool:
        """Whether ``caller`` (a :class:`~lbtx.server.authz.Caller`, a ``str`` or
        None for anonymous) holds ``action``."""
        if caller is None:
            return False
        fqans = getattr(caller, "fqans", ())
        return any(rule.matches(str(caller), fqans) for rule in self.rules.get(action, ()))

    def granted(self, caller) -> frozenset:
        """Every action ``caller`` holds."""
        return frozenset(a for a in Action if self.allows(a, caller))

    def with_rules(self, action: Action, rules: Iterable[Rule]) -> "ServerPolicy":
        merged = dict(self.rules)
        merged[action] = tuple(merged.get(action, ())) + tuple(rules)
        return ServerPolicy(merged)


# --- the parser -------------------------------------------------------------------------
_TOKEN = re.compile(r'''
    (?P<space>[ \t\r\f\v]+) | (?P<newline>\n) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*") | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}=])
''', re.X)


@dataclass
class _Token:
    kind: str
    text: str
    line: int
    column: int


def _tokens(text: str, source: str) -> list[_Token]:
    out, pos, line, start = [], 0, 1, 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise PolicyError(f"unexpected character {text[pos]!r}", source, line, pos - start + 1)
        kind = m.lastgroup
        if kind == "newline":
            line, start = line + 1, m.end()
        elif kind == "string":
            value = re.sub(r"\\(.)", r"\1", m.group()[1:-1])
            out.append(_Token("string", value, line, pos - start + 1))
        elif kind in ("word", "punct"):
            out.append(_Token(kind, m.group(), line, pos - start + 1))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[_Token], source: str):
        self.tokens, self.i, self.source = tokens, 0, source

    def fail(self, reason: str, tok: _Token | None = None):
        tok = tok or (self.tokens[self.i] if self.i < len(self.tokens) else None)
        if tok is None:
            raise PolicyError(reason + " (at the end of the file)", self.source)
        raise PolicyError(reason, self.source, tok.line, tok.column)

    def next(self, kind: str, text: str | None = None, what: str = "") -> _Token:
        if self.i >= len(self.tokens):
            self.fail(f"expected {what or text or kind}")
        tok = self.tokens[self.i]
        if tok.kind != kind or (text is not None and tok.text != text):
            self.fail(f"expected {what or text or kind}, found {tok.text!r}", tok)
        self.i += 1
        return tok

    def peek(self, text: str) -> bool:
        return self.i < len(self.tokens) and self.tokens[self.i].text == text \
            and self.tokens[self.i].kind in ("word", "punct")

    def policy(self) -> ServerPolicy:
        rules: dict[Action, list[Rule]] = {}
        while self.i < len(self.tokens):
            self.next("word", "resource")
            name = self.next("string", what="a resource name")
            if name.text != "LB":
                self.fail(f'unknown resource {name.text!r} (only "LB")', name)
            self.next("punct", "{")
            while not self.peek("}"):
                self.action(rules)
            self.next("punct", "}")
        return ServerPolicy({a: tuple(r) for a, r in rules.items()})

    def action(self, rules) -> None:
        self.next("word", "action")
        tok = self.next("string", what="an action name")
        try:
            action = Action(tok.text)
        except ValueError:
            self.fail(f"unknown action {tok.text!r}; known: "
                      + ", ".join(a.value for a in Action), tok)
        self.next("punct", "{")
        while not self.peek("}"):
            rules.setdefault(action, []).append(self.rule())
        self.next("punct", "}")

    def rule(self) -> Rule:
        self.next("word", "rule")
        kind = self.next("word", what="permit")
        if kind.text != "permit":
            self.fail(f"only 'permit' rules are supported, not {kind.text!r}", kind)
        self.next("punct", "{")
        subjects, fqans = [], []
        while not self.peek("}"):
            attr = self.next("word", what="subject or fqan")
            if attr.text not in ("subject", "fqan"):
                self.fail(f"unknown rule attribute {attr.text!r} (subject or fqan)", attr)
            self.next("punct", "=")
            value = self.next("string", what="a quoted value")
            if not value.text:
                self.fail("an empty value matches nothing; use \".*\" for anything", value)
            (subjects if attr.text == "subject" else fqans).append(value.text)
        self.next("punct", "}")
        return Rule(tuple(subjects), tuple(fqans))


def parse_policy(text: str, source: str = "<policy>") -> ServerPolicy:
    if len(text.encode("utf-8", "surrogateescape")) > MAX_POLICY_BYTES:
        raise PolicyError(f"longer than {MAX_POLICY_BYTES} bytes", source)
    if "\0" in text:
        raise PolicyError("contains a NUL character", source)
    return _Parser(_tokens(text, source), source).policy()


def load_policy(path: str | Path) -> ServerPolicy:
    p = Path(path)
    try:
        with p.open("rb") as f:
            data = f.read(MAX_POLICY_BYTES + 1)
    except OSError as e:
        raise PolicyError(f"cannot read: {e.strerror}", str(p)) from None
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"longer than {MAX_POLICY_BYTES} bytes", str(p))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PolicyError(f"not UTF-8 (byte {e.start})", str(p)) from None
    return parse_policy(text, str(p))
