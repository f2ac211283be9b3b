"""Python enumeration classes built from the enumeration entries of the schema.

Every enumeration becomes an :class:`LBEnum` (an ``IntEnum``). Event enumerations
include their ``UNDEFINED`` member, whose value is the attribute's sentinel. Each
member carries its wire ``text``; :meth:`LBEnum.from_text` looks a member up by
name or text, case-insensitively, as the ULM parser does.
"""

from __future__ import annotations

from enum import IntEnum

from lbtx.schema._model import EnumSpec


class LBEnum(IntEnum):
    """Base of every schema enumeration."""

    @classmethod
    def from_text(cls, text: str):
        """Return the member whose name or text is ``text`` (case-insensitive), or ``None``."""
        return cls._lookup.get(text.casefold())  # type: ignore[attr-defined]

    @property
    def text(self) -> str:
        return self._texts[self]  # type: ignore[attr-defined]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}.{self.name}"


def build_enum(spec: EnumSpec) -> type[LBEnum]:
    """Create the enumeration class described by ``spec``."""
    members: list[tuple[str, int]] = []
    texts: dict[str, str] = {}
    if spec.undefined:
        name, text, value = spec.undefined
        members.append((name, value))
        texts[name] = text
    for name, text, value in spec.members:
        members.append((name, value))
        texts[name] = text if text is not None else name
    cls = LBEnum(spec.name, members)  # type: ignore[call-overload]
    lookup: dict[str, LBEnum] = {}
    # Texts first, then names, so that a name always wins over a clashing text.
    for m in cls:
        lookup.setdefault(texts[m.name].casefold(), m)
    for m in cls:
        lookup[m.name.casefold()] = m
    for alias, target in spec.aliases.items():
        lookup[alias.casefold()] = cls[target]
    cls._lookup = lookup
    cls._texts = {m: texts[m.name] for m in cls}
    cls.spec = spec
    cls.undefined = cls[spec.undefined[0]] if spec.undefined else None
    return cls
