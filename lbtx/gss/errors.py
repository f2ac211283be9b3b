"""Errors of the secure transports."""

from __future__ import annotations


class CredentialsError(Exception):
    """Our own certificate, key or CA directory cannot be used."""


class PeerRefusedError(Exception):
    """The peer's credentials were refused.

    @ivar reason: one of the C{REASON_*} constants below: what kind of refusal.
    @ivar detail: text saying exactly what was wrong, for the log line.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


REASON_NO_CERTIFICATE = "no certificate"
REASON_UNTRUSTED = "untrusted CA"
REASON_EXPIRED = "expired"
REASON_NOT_YET_VALID = "not yet valid"
REASON_REVOKED = "revoked"
REASON_NO_CRL = "no CRL"
REASON_BAD_CRL = "bad CRL"
REASON_BAD_PROXY = "bad proxy"
REASON_WRONG_NAME = "wrong server name"
REASON_INVALID = "invalid certificate"


class NoPeerIdentityError(Exception):
    """The transport carries no identity proved by the mechanism asked."""
