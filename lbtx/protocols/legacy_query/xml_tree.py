"""Safe, bounded parsing of L&B XML documents into a small element tree.

Documents from the network are parsed with :mod:`defusedxml` over expat as
ISO-8859-1 (§0.4): a DOCTYPE, any entity declaration and any external reference
are refused before anything is expanded, and the size of the document, the depth
of nesting and the number of elements are capped while parsing, so that no input
costs more than its length. Every failure is a :class:`~.errors.RequestError`
with ``EDG_WLL_ERROR_XML_PARSE`` (or ``E2BIG`` for a document over the limit).

:class:`Node` keeps what the request parsers need: the tag, the attributes, the
children and the text (whitespace-only text is dropped, as upstream readers do).
Values are returned unescaped (:func:`~.escaping.unescape`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree.ElementTree import ParseError

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden
from defusedxml import ExternalReferenceForbidden
from defusedxml.ElementTree import DefusedXMLParser

from lbtx.protocols.legacy_query.errors import ErrorCode, RequestError
from lbtx.protocols.legacy_query.escaping import WIRE_ENCODING, unescape

__all__ = ["XMLLimits", "Node", "parse_document", "DEFAULT_LIMITS"]


@dataclass(frozen=True)
class XMLLimits:
    """Caps on one request document.

    The deepest legitimate request is five elements deep; conditions are counted
    over the whole document (job and event conditions together).
    """

    max_bytes: int = 1024 * 1024
    max_depth: int = 16
    max_elements: int = 20_000
    max_conditions: int = 1000
    max_disjunctions: int = 256


DEFAULT_LIMITS = XMLLimits()


@dataclass
class Node:
    """One element: ``tag`` as written, ``attrs`` and ``text`` unescaped."""

    tag: str
    attrs: dict[str, str]
    children: list["Node"] = field(default_factory=list)
    text: str = ""
    line: int = 0

    @property
    def name(self) -> str:
        """The tag folded for the case-insensitive matching of request elements."""
        return self.tag.lower()

    def value(self) -> str:
        """The element's text, unescaped ("" when empty)."""
        return unescape(self.text) if self.text else ""

    def attr(self, name: str) -> str | None:
        raw = self.attrs.get(name)
        return unescape(raw) if raw is not None else None

    def describe(self) -> str:
        return f"<{self.tag[:40]}> at line {self.line}"


class _Builder:
    """Parser target building :class:`Node` trees within the limits."""

    def __init__(self, limits: XMLLimits, parser_ref):
        self._limits = limits
        self._stack: list[Node] = []
        self._texts: list[list[str]] = []
        self._count = 0
        self._parser_ref = parser_ref
        self.root: Node | None = None

    def _line(self) -> int:
        parser = self._parser_ref()
        try:
            return parser.parser.CurrentLineNumber
        except AttributeError:  # pragma: no cover - expat always has it
            return 0

    def start(self, tag, attrs):
        self._count += 1
        if self._count > self._limits.max_elements:
            raise RequestError(ErrorCode.E2BIG, f"more than {self._limits.max_elements} elements")
        if len(self._stack) >= self._limits.max_depth:
            raise RequestError(ErrorCode.XML_PARSE,
                               f"elements nested deeper than {self._limits.max_depth} levels")
        node = Node(tag, dict(attrs), line=self._line())
        if self._stack:
            self._stack[-1].children.append(node)
        elif self.root is None:
            self.root = node
        self._stack.append(node)
        self._texts.append([])

    def data(self, text):
        if self._texts:
            self._texts[-1].append(text)

    def end(self, tag):
        node = self._stack.pop()
        text = "".join(self._texts.pop())
        node.text = "" if text.isspace() else text

    def close(self):
        return self.root


def _fail(desc: str) -> RequestError:
    return RequestError(ErrorCode.XML_PARSE, desc)


def parse_document(data: bytes, limits: XMLLimits = DEFAULT_LIMITS) -> Node:
    """Parse one request document; raise :class:`RequestError` for anything unsafe or broken."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise _fail("a document is bytes")
    if len(data) > limits.max_bytes:
        raise RequestError(ErrorCode.E2BIG, f"document longer than {limits.max_bytes} bytes")
    if not bytes(data).strip():
        raise _fail("empty document")
    parser = None
    builder = _Builder(limits, lambda: parser)
    parser = DefusedXMLParser(target=builder, encoding=WIRE_ENCODING, forbid_dtd=True,
                              forbid_entities=True, forbid_external=True)
    try:
        parser.feed(bytes(data))
        root = parser.close()
    except DTDForbidden:
        raise _fail("document type declarations (DTDs) are not accepted") from None
    except EntitiesForbidden:
        raise _fail("entity declarations are not accepted") from None
    except ExternalReferenceForbidden:
        raise _fail("external references are not accepted") from None
    except DefusedXmlException as e:  # pragma: no cover - other defusedxml refusals
        raise _fail(f"unsafe XML: {type(e).__name__}") from None
    except ParseError as e:
        raise _fail(f"Parse error: {e}") from None
    except RequestError:
        raise
    except (ValueError, TypeError, LookupError, RecursionError) as e:
        raise _fail(f"Parse error: {type(e).__name__}") from None
    if root is None:  # pragma: no cover - expat requires a root element
        raise _fail("no root element")
    return root
