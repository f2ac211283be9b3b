"""Who the peer of a server connection is (issue 3 §7, until secure transports
are everywhere).

* a secure transport (``lbtls:``, ``lbkrb5:``, ``lbunix:`` endpoints) proved an
  identity: that one, with its VOMS FQANs;
* a plain UNIX socket: the peer's Unix user, ``unix:NAME`` (SO_PEERCRED);
* plaintext TCP: the identity configured with ``--peer-identity``
  (``anonymous``, the default, proves nothing).

:func:`transport_caller` is the caller of the query port;
:func:`store_identify` the ``identify`` callable of the store (intake) port,
whose peers sign the events that carry no ``DG.USER``.
"""

from __future__ import annotations

from typing import Callable

from lbtx.gss.errors import NoPeerIdentityError
from lbtx.gss.peer import peer_identity
from lbtx.server.authz import Caller

__all__ = ["ANONYMOUS", "transport_caller", "store_identify"]

#: the plaintext identity that means "nobody"
ANONYMOUS = "anonymous"


def transport_caller(transport, plaintext: str | None) -> Caller | None:
    """The caller of a connection: its proven identity, else ``plaintext``
    (None or :data:`ANONYMOUS`: anonymous, None)."""
    try:
        identity = peer_identity(transport)
    except NoPeerIdentityError:
        return Caller(plaintext) if plaintext and plaintext != ANONYMOUS else None
    return Caller.from_identity(identity)


def store_identify(plaintext: str) -> Callable[[object], str]:
    """The store port's ``identify(transport)``: the peer as :func:`transport_caller`
    names it, :data:`ANONYMOUS` for nobody."""
    def identify(transport) -> str:
        caller = transport_caller(transport, plaintext)
        return ANONYMOUS if caller is None else str(caller)
    return identify
