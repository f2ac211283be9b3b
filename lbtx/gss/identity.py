"""The authenticated identity of a peer, whatever transport proved it.

An L{Identity} is what every later check (ownership, ACLs, policy) compares: an
X.509 subject normalised per formats.md §0.2 (proxy components stripped), a
Kerberos principal, a local Unix user, or nobody (anonymous). Two identities are
equal when they name the same principal of the same kind; VOMS FQANs travel with
the identity but do not take part in equality (the same person with other VOMS
attributes is still the same owner).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from lbtx import subject


class IdentityKind(enum.Enum):
    """How the peer was authenticated."""

    X509 = "x509"
    KERBEROS = "kerberos"
    UNIX = "unix"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True, eq=False)
class Identity:
    """One authenticated principal.

    @ivar kind: how it was authenticated.
    @ivar name: the canonical text: the normalised subject DN (X.509), the
        principal C{user@REALM} (Kerberos), the user name (Unix), C{""} (anonymous).
    @ivar fqans: VOMS FQANs from the peer's proxy certificate, in their order.
    @ivar uid: the numeric user id (Unix peers only).
    @ivar limited: the peer authenticated with a limited proxy (X.509 only).
    """

    kind: IdentityKind
    name: str
    fqans: tuple[str, ...] = field(default=())
    uid: int | None = None
    limited: bool = False

    @classmethod
    def x509(cls, dn: str, fqans: tuple[str, ...] = (), limited: bool = False) -> Identity:
        """The identity of a certificate subject C{dn} (slash form), normalised per §0.2."""
        return cls(IdentityKind.X509, subject.normalise(dn), tuple(fqans), None, limited)

    @classmethod
    def kerberos(cls, principal: str) -> Identity:
        """The identity of a Kerberos principal (C{user@REALM}, compared exactly)."""
        return cls(IdentityKind.KERBEROS, principal)

    @classmethod
    def unix(cls, user: str, uid: int) -> Identity:
        """The identity of a local Unix user."""
        return cls(IdentityKind.UNIX, user, (), uid)

    @classmethod
    def anonymous(cls) -> Identity:
        """The identity of a peer that proved nothing."""
        return cls(IdentityKind.ANONYMOUS, "")

    @property
    def key(self) -> str:
        """The comparison key: C{kind:name}, case-folded for X.509 subjects."""
        if self.kind is IdentityKind.X509:
            return "x509:" + subject.key(self.name)
        return f"{self.kind.value}:{self.name}"

    @property
    def display(self) -> str:
        """Text for people and log lines."""
        if self.kind is IdentityKind.UNIX:
            return f"unix:{self.name}"
        if self.kind is IdentityKind.ANONYMOUS:
            return "anonymous"
        return self.name

    @property
    def is_anonymous(self) -> bool:
        """Whether the peer proved no identity."""
        return self.kind is IdentityKind.ANONYMOUS

    def matches(self, text: str | None) -> bool:
        """Whether C{text} (a C{DG.USER} value, an owner, an ACL entry) names this identity.

        Subjects compare per §0.2; principals and Unix user names exactly.
        """
        if text is None or self.is_anonymous:
            return False
        if self.kind is IdentityKind.X509:
            return subject.same(self.name, text)
        return self.name == text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        return self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return self.display
