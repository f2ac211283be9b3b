"""Deciding who a TLS peer is: proxies resolved, the end entity validated, the name checked,
the VOMS FQANs read (L{lbtx.gss.voms})."""

from __future__ import annotations

import datetime
import ipaddress

import service_identity
from cryptography import x509
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)

from lbtx.gss.errors import REASON_NO_CERTIFICATE, REASON_WRONG_NAME, PeerRefusedError
from lbtx.gss.identity import Identity
from lbtx.gss.proxy import describe, dn_text, resolve_proxies
from lbtx.gss.trust import TrustStore
from lbtx.gss.voms import VomsTrust, read_fqans


class PeerVerifier:
    """Turns the certificates a peer sent into its L{Identity}, or refuses them.

    @param voms: the VOMS servers whose attribute certificates are believed; without
        it the FQANs of a valid proxy chain are taken as asserted by the chain.
    """

    def __init__(self, trust: TrustStore, voms: VomsTrust | None = None) -> None:
        self.trust = trust
        self.voms = voms

    def verify(
        self,
        leaf: x509.Certificate | None,
        chain: list[x509.Certificate],
        now: datetime.datetime,
        server_name: str | None = None,
    ) -> Identity:
        """The identity proved by C{leaf} and the other certificates C{chain}.

        The end-entity certificate (proxies stripped) must validate against the
        trust store at C{now}; with C{server_name} it must also be issued for that
        DNS name or IP address. Raises L{PeerRefusedError} saying why not. The
        identity carries the FQANs of the chain's usable VOMS attributes (bad ones
        are logged and left out, they never refuse the peer).
        """
        if leaf is None:
            raise PeerRefusedError(REASON_NO_CERTIFICATE, "the peer sent no certificate")
        resolved = resolve_proxies(leaf, chain, now)
        self.trust.verify(resolved.end_entity, resolved.intermediates, now)
        if server_name is not None:
            check_server_name(resolved.end_entity, server_name)
        fqans = read_fqans(resolved, now, self.voms) if resolved.proxies else ()
        return Identity.x509(dn_text(resolved.end_entity.subject), fqans, limited=resolved.limited)


def check_server_name(cert: x509.Certificate, server_name: str) -> None:
    """Raise L{PeerRefusedError} unless C{cert} is issued for C{server_name} (DNS name or IP)."""
    try:
        try:
            address = ipaddress.ip_address(server_name)
        except ValueError:
            verify_certificate_hostname(cert, server_name)
        else:
            verify_certificate_ip_address(cert, str(address))
    except (service_identity.VerificationError, service_identity.CertificateError) as e:
        raise PeerRefusedError(
            REASON_WRONG_NAME, f"{describe(cert)} is not issued for {server_name}: {e}"
        ) from None
