"""Text in L&B XML documents (formats.md §0.4).

Documents travel as bytes and are read as ISO-8859-1, so every byte stands for
itself: lbtx texts are written as their UTF-8 bytes (undecodable bytes kept through
``surrogateescape``) and read back the same way, byte for byte.

:func:`escape` writes the five XML entities and ``%xx`` (lower-case hex) for every
byte whose low seven bits are below 0x20 and for ``%``; the result is a ``str`` of
code points below 256, one per byte, ready for :func:`to_wire`. :func:`unescape`
reverses the ``%xx`` part on text an XML parser has already decoded: only escapes of
control bytes and ``%`` are decoded, any other ``%xx`` is kept literally.
:func:`unescape_entities` is the upstream decoder's entity step, for text that did
not pass through an XML parser.
"""

from __future__ import annotations

import re

__all__ = ["escape", "unescape", "unescape_entities", "to_wire", "WIRE_ENCODING"]

#: the encoding in which documents are written and parsed
WIRE_ENCODING = "iso-8859-1"

_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;"}


def _byte_escape(b: int) -> str:
    ch = chr(b)
    ent = _ENTITIES.get(ch)
    if ent is not None:
        return ent
    if (b & 0x7F) < 0x20 or b == 0x25:
        return "%%%02x" % b
    return ch


_BYTE_MAP = [_byte_escape(b) for b in range(256)]
_NEEDS = re.compile(r"[<>&\"'%\x00-\x1f\x7f-\uffff\U00010000-\U0010ffff]")


def escape(text: str) -> str:
    """Escape ``text`` for an element or attribute value (one code point per byte)."""
    if not _NEEDS.search(text):
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that no decoder of ours produced
        data = text.encode("utf-8", "surrogatepass")
    return "".join([_BYTE_MAP[b] for b in data])


_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


def _percent(m: re.Match) -> str:
    b = int(m.group(1), 16)
    return chr(b) if (b & 0x7F) < 0x20 or b == 0x25 else m.group(0)


def unescape(wire_text: str) -> str:
    """Turn a parsed value (ISO-8859-1 code points) back into lbtx text."""
    if "%" in wire_text:
        wire_text = _PERCENT.sub(_percent, wire_text)
    try:
        data = wire_text.encode(WIRE_ENCODING)
    except UnicodeEncodeError:
        # only possible for text that did not come from an ISO-8859-1 parse
        return wire_text
    if data.isascii():
        return wire_text
    return data.decode("utf-8", "surrogateescape")


_ENTITY = re.compile(r"&(lt|gt|amp|quot|apos);", re.IGNORECASE)
_ENTITY_CHARS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"', "apos": "'"}


def unescape_entities(text: str) -> str:
    """Decode the five entities (case-insensitively) and the ``%xx`` escapes."""
    return unescape(_ENTITY.sub(lambda m: _ENTITY_CHARS[m.group(1).lower()], text))


def to_wire(document: str) -> bytes:
    """The bytes of a document built from :func:`escape` output and ASCII markup."""
    return document.encode(WIRE_ENCODING)
