"""Client kind and protocol version negotiation (formats.md §7.2).

The first header line starting with ``Accept:`` (exact case) decides the kind: if it
names ``application/x-dglb`` the request comes from the L&B API (XML answers),
otherwise, or with no such line, it is an HTML request (web pages, not served here).
Every request needs a line containing ``User-Agent``; for API requests the client's
version is the number after the first ``/`` of that line and its list of compatible
versions follows the next separator, comma separated
(``User-Agent: edg_wll_Api/3.0/3.0``).

Numbers are read as C's ``strtod`` reads them: the longest numeric prefix.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = ["ClientKind", "Verdict", "Negotiation", "negotiate", "PROTO_VERSION",
           "COMPATIBLE", "V21_VERSION", "V21_COMPATIBLE", "SERVER_HEADER"]

PROTO_VERSION = "3.0"
COMPATIBLE = ("3.0",)
V21_VERSION = "2.1"
V21_COMPATIBLE = ("2.0", "2.1")
SERVER_HEADER = f"Server: edg_wll_Server/{PROTO_VERSION}/{','.join(COMPATIBLE)}"

_ACCEPT = "Accept:"
_APP = "application/x-dglb"
_AGENT = "User-Agent"
_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")


class ClientKind(enum.Enum):
    API = "api"
    HTML = "html"


class Verdict(enum.Enum):
    OK = "ok"                  # versions compatible
    V21 = "v21"                # an older client the version-2.1 handler accepts
    NO_AGENT = "no_agent"      # no User-Agent line: 400
    BAD_AGENT = "bad_agent"    # no '/' in it: 400
    UNSUPPORTED = "unsupported"  # no compatibility list, or incompatible: 415


@dataclass(frozen=True)
class Negotiation:
    kind: ClientKind
    verdict: Verdict
    client_version: float | None = None


def _strtod(text: str) -> tuple[float | None, str]:
    """``(value, rest)`` like C ``strtod``; value None when there is no number."""
    m = _NUMBER.match(text)
    if not m:
        return None, text
    try:
        return float(m.group(0)), text[m.end():]
    except (ValueError, OverflowError):  # pragma: no cover - the regex admits only numbers
        return None, text


def _compatible(agent: str, mine: float, my_list: tuple[str, ...]) -> Verdict | None:
    slash = agent.find("/")
    if slash < 0:
        return Verdict.BAD_AGENT
    version, rest = _strtod(agent[slash + 1:])
    if version is None:
        version = 0.0
    if rest == "":
        return Verdict.UNSUPPORTED
    if version == mine:
        return Verdict.OK
    if mine > version:
        return Verdict.OK if any(float(v) == version for v in my_list) else None
    theirs = []
    for item in rest[1:].split(","):
        value, _ = _strtod(item)
        if value is not None:
            theirs.append(value)
    return Verdict.OK if mine in theirs else None


def client_kind(headers: tuple[str, ...]) -> ClientKind:
    for line in headers:
        if line.startswith(_ACCEPT):
            return ClientKind.API if _APP in line else ClientKind.HTML
    return ClientKind.HTML


def negotiate(headers: tuple[str, ...]) -> Negotiation:
    """The client's kind and whether this server speaks its protocol version."""
    kind = client_kind(headers)
    agent = next((line for line in headers if _AGENT in line), None)
    if agent is None:
        return Negotiation(kind, Verdict.NO_AGENT)
    if kind == ClientKind.HTML:
        return Negotiation(kind, Verdict.OK)
    verdict = _compatible(agent, float(PROTO_VERSION), COMPATIBLE)
    version, _ = _strtod(agent[agent.find("/") + 1:]) if "/" in agent else (None, "")
    if verdict is None:
        old = _compatible(agent, float(V21_VERSION), V21_COMPATIBLE)
        verdict = Verdict.V21 if old == Verdict.OK else Verdict.UNSUPPORTED
    return Negotiation(kind, verdict, version)
