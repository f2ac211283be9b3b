"""Reading one attribute of a JDL (a ClassAd), as ``jdl:Attr`` fields do.

``glite-lb-state_history -f jdl:VirtualOrganisation`` prints one attribute of the
job description. A JDL is a ClassAd record::

    [ Executable = "/bin/echo"; VirtualOrganisation = "voce"; Arguments = "a b"; ]

:func:`jdl_attribute` finds a top-level attribute by name (case-insensitively,
as ClassAds compare names) and returns a string literal's text (escapes undone)
or, for any other expression, its source text trimmed. It is deliberately small:
nested records, lists and quoted strings are skipped over, nothing is evaluated.
Unparsable text gives None.
"""

from __future__ import annotations

__all__ = ["jdl_attribute", "jdl_attributes"]

_OPEN = {"[": "]", "{": "}", "(": ")"}


def _split_top(body: str) -> list[str] | None:
    """``body`` split at top-level ``;``, honouring strings and brackets."""
    parts, depth, start, i, n = [], [], 0, 0, len(body)
    while i < n:
        c = body[i]
        if c == '"':
            i += 1
            while i < n and body[i] != '"':
                i += 2 if body[i] == "\\" else 1
            if i >= n:
                return None
        elif c in _OPEN:
            depth.append(_OPEN[c])
        elif c in "]})":
            if not depth or depth.pop() != c:
                return None
        elif c == ";" and not depth:
            parts.append(body[start:i])
            start = i + 1
        i += 1
    if depth:
        return None
    parts.append(body[start:])
    return parts


def _literal(expr: str) -> str:
    e = expr.strip()
    if len(e) >= 2 and e[0] == '"' and e[-1] == '"':
        out, i = [], 1
        while i < len(e) - 1:
            if e[i] == "\\" and i + 1 < len(e) - 1:
                nxt = e[i + 1]
                out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
            else:
                out.append(e[i])
                i += 1
        return "".join(out)
    return e


def jdl_attributes(jdl: str) -> dict[str, str] | None:
    """Every top-level attribute: folded name -> value (see :func:`jdl_attribute`)."""
    text = jdl.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    parts = _split_top(text)
    if parts is None:
        return None
    out = {}
    for part in parts:
        name, eq, expr = part.partition("=")
        if not eq or not name.strip():
            continue
        out.setdefault(name.strip().casefold(), _literal(expr))
    return out


def jdl_attribute(jdl: str | None, name: str) -> str | None:
    """The value of attribute ``name`` of ``jdl``, or None if absent or unreadable."""
    if not jdl:
        return None
    attrs = jdl_attributes(jdl)
    if attrs is None:
        return None
    return attrs.get(name.strip().casefold())
