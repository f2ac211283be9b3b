"""Pluggable secure transports: TLS with X.509 and proxy certificates, Kerberos, Unix peer credentials.

Every listener and client authenticates through an L{ISecureTransport}; the
application protocol behind it asks L{peer_identity} who its peer is and gets an
L{Identity}, compared alike whichever mechanism proved it. Endpoint descriptions
C{lbtls:}, C{lbkrb5:} and C{lbunix:} come from L{lbtx.gss.endpoints}.
"""

from lbtx.gss.errors import CredentialsError, NoPeerIdentityError, PeerRefusedError
from lbtx.gss.identity import Identity, IdentityKind
from lbtx.gss.interfaces import IPeerIdentity, ISecureTransport
from lbtx.gss.peer import peer_identity

__all__ = [
    "CredentialsError",
    "IPeerIdentity",
    "ISecureTransport",
    "Identity",
    "IdentityKind",
    "NoPeerIdentityError",
    "PeerRefusedError",
    "peer_identity",
]
