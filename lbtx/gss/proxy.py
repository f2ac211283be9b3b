"""Proxy certificates (RFC 3820 and the older Globus forms): recognise them and check a chain.

A proxy certificate is signed by the key of the certificate it derives from (an
end-entity certificate or another proxy), its subject is the issuer's subject plus
one CN, and it carries a proxyCertInfo extension (RFC 3820; the pre-RFC "GT3"
object identifier is accepted too) or, in the legacy Globus form, ends in
C{/CN=proxy} or C{/CN=limited proxy}. L{resolve_proxies} walks from the leaf up
to the end-entity certificate, checking every link; the end-entity certificate is
then validated against the CAs by L{lbtx.gss.trust}. Pure code: no I/O, C{now}
passed in.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from lbtx.gss import der
from lbtx.gss.errors import REASON_BAD_PROXY, REASON_EXPIRED, REASON_NOT_YET_VALID, PeerRefusedError

OID_PROXY_CERT_INFO = "1.3.6.1.5.5.7.1.14"
OID_PROXY_CERT_INFO_GT3 = "1.3.6.1.4.1.3536.1.222"
OID_POLICY_INHERIT_ALL = "1.3.6.1.5.5.7.21.1"
OID_POLICY_INDEPENDENT = "1.3.6.1.5.5.7.21.2"
OID_POLICY_LIMITED = "1.3.6.1.4.1.3536.1.1.1.9"

LEGACY_PROXY_CN = "proxy"
LEGACY_LIMITED_CN = "limited proxy"

#: Longest chain of proxies accepted above one end-entity certificate.
MAX_PROXY_DEPTH = 10

_ACCEPTED_POLICIES = {OID_POLICY_INHERIT_ALL, OID_POLICY_LIMITED}


@dataclass(frozen=True)
class ProxyInfo:
    """What a certificate says about itself as a proxy.

    @ivar form: C{"rfc3820"}, C{"gt3"} or C{"legacy"}.
    @ivar policy: the policy language OID (legacy forms map onto inheritAll or limited).
    @ivar path_length: the pCPathLenConstraint, or C{None} for no limit.
    """

    form: str
    policy: str
    path_length: int | None

    @property
    def limited(self) -> bool:
        """Whether this is a limited proxy."""
        return self.policy == OID_POLICY_LIMITED


@dataclass(frozen=True)
class ResolvedChain:
    """A peer's certificates sorted out.

    @ivar end_entity: the certificate that names the peer.
    @ivar intermediates: the other certificates the peer sent (for CA path building).
    @ivar proxies: the proxies from the one the end entity signed down to the leaf.
    """

    end_entity: x509.Certificate
    intermediates: tuple[x509.Certificate, ...]
    proxies: tuple[x509.Certificate, ...]
    limited: bool


def dn_text(name: x509.Name) -> str:
    """A name in the slash form L&B uses (OpenSSL short names, most significant first)."""
    parts = []
    for rdn in name.rdns:
        parts.append("+".join(f"{_short_name(a)}={a.value}" for a in rdn))
    return "".join("/" + p for p in parts)


_SHORT_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.SURNAME: "SN",
    NameOID.GIVEN_NAME: "GN",
    NameOID.TITLE: "title",
    NameOID.STREET_ADDRESS: "street",
    NameOID.POSTAL_CODE: "postalCode",
}


def _short_name(attribute: x509.NameAttribute) -> str:
    return _SHORT_NAMES.get(attribute.oid, attribute.oid.dotted_string)


def describe(cert: x509.Certificate) -> str:
    """The subject of C{cert} in slash form, for messages."""
    return dn_text(cert.subject)


def proxy_info(cert: x509.Certificate) -> ProxyInfo | None:
    """How C{cert} presents itself as a proxy, or C{None} when it does not.

    Raises L{PeerRefusedError} when a proxyCertInfo extension cannot be read.
    """
    for ext in cert.extensions:
        oid = ext.oid.dotted_string
        if oid in (OID_PROXY_CERT_INFO, OID_PROXY_CERT_INFO_GT3):
            form = "rfc3820" if oid == OID_PROXY_CERT_INFO else "gt3"
            try:
                policy, path_length = _parse_proxy_cert_info(ext.value.value)
            except der.DERError as e:
                raise PeerRefusedError(
                    REASON_BAD_PROXY, f"unreadable proxyCertInfo in {describe(cert)}: {e}"
                ) from None
            return ProxyInfo(form, policy, path_length)
    rdns = cert.subject.rdns
    if len(rdns) > 1:
        last = list(rdns[-1])
        if len(last) == 1 and last[0].oid == NameOID.COMMON_NAME:
            if last[0].value == LEGACY_PROXY_CN:
                return ProxyInfo("legacy", OID_POLICY_INHERIT_ALL, None)
            if last[0].value == LEGACY_LIMITED_CN:
                return ProxyInfo("legacy", OID_POLICY_LIMITED, None)
    return None


def _parse_proxy_cert_info(value: bytes) -> tuple[str, int | None]:
    """(policy language OID, path length) from a proxyCertInfo value (RFC 3820 or GT3 order)."""
    policy = None
    path_length = None
    for tag, body in der.read(der.read_one(value, der.TAG_SEQUENCE)):
        if tag == der.TAG_INTEGER:
            path_length = der.decode_integer(body)
        elif tag == 0xA1:  # GT3: [1] EXPLICIT INTEGER
            path_length = der.decode_integer(der.read_one(body, der.TAG_INTEGER))
        elif tag == der.TAG_SEQUENCE:
            elements = list(der.read(body))
            if not elements or elements[0][0] != der.TAG_OID:
                raise der.DERError("proxyPolicy without a policy language")
            policy = der.decode_oid(elements[0][1])
    if policy is None:
        raise der.DERError("no proxyPolicy")
    if path_length is not None and path_length < 0:
        raise der.DERError("negative path length")
    return policy, path_length


def encode_proxy_cert_info(policy: str, path_length: int | None = None) -> bytes:
    """The DER value of an RFC 3820 proxyCertInfo extension."""
    parts = [] if path_length is None else [der.encode_integer(path_length)]
    return der.encode_sequence(*parts, der.encode_sequence(der.encode_oid(policy)))


def resolve_proxies(
    leaf: x509.Certificate, chain: list[x509.Certificate], now: datetime.datetime
) -> ResolvedChain:
    """Walk from C{leaf} through the proxies it derives from up to the end-entity certificate.

    C{chain} holds the other certificates the peer sent, in any order. Every proxy
    must be signed by the key of its issuer, found in C{chain}; its subject must
    be the issuer's plus one CN; it must be valid at C{now}, not a CA, within the
    path length its ancestors allow, limited when its issuer is limited, and use a
    policy language we understand. Raises L{PeerRefusedError} otherwise.
    """
    pool = [c for c in chain if c != leaf]
    proxies: list[tuple[x509.Certificate, ProxyInfo]] = []
    current = leaf
    info = proxy_info(current)
    while info is not None:
        if len(proxies) >= MAX_PROXY_DEPTH:
            raise PeerRefusedError(REASON_BAD_PROXY, f"more than {MAX_PROXY_DEPTH} proxies")
        issuer = _find_issuer(current, pool)
        _check_link(current, info, issuer, now)
        proxies.append((current, info))
        pool.remove(issuer)
        current = issuer
        info = proxy_info(current)
    # proxies run from the leaf upwards; check constraints top-down
    ordered = list(reversed(proxies))
    limited = False
    for index, (cert, info) in enumerate(ordered):
        below = len(ordered) - index - 1
        if info.path_length is not None and below > info.path_length:
            raise PeerRefusedError(
                REASON_BAD_PROXY,
                f"{describe(cert)} allows {info.path_length} further proxies, {below} follow",
            )
        if limited and not info.limited:
            raise PeerRefusedError(
                REASON_BAD_PROXY, f"{describe(cert)} is a full proxy signed by a limited proxy"
            )
        limited = limited or info.limited
    return ResolvedChain(current, tuple(pool), tuple(c for c, _ in ordered), limited)


def _find_issuer(cert: x509.Certificate, pool: list[x509.Certificate]) -> x509.Certificate:
    candidates = [c for c in pool if c.subject == cert.issuer]
    for candidate in candidates:
        try:
            cert.verify_directly_issued_by(candidate)
        except (InvalidSignature, ValueError, TypeError):
            continue
        return candidate
    if candidates:
        raise PeerRefusedError(
            REASON_BAD_PROXY,
            f"{describe(cert)} is not signed by the key of {dn_text(cert.issuer)}",
        )
    raise PeerRefusedError(
        REASON_BAD_PROXY, f"the issuer {dn_text(cert.issuer)} of {describe(cert)} was not sent"
    )


def _check_link(
    cert: x509.Certificate, info: ProxyInfo, issuer: x509.Certificate, now: datetime.datetime
) -> None:
    name = describe(cert)
    rdns = cert.subject.rdns
    last = list(rdns[-1]) if rdns else []
    if (
        len(rdns) != len(issuer.subject.rdns) + 1
        or x509.Name(rdns[:-1]) != issuer.subject
        or len(last) != 1
        or last[0].oid != NameOID.COMMON_NAME
    ):
        raise PeerRefusedError(
            REASON_BAD_PROXY, f"{name} is not its issuer's subject plus one CN"
        )
    if info.policy not in _ACCEPTED_POLICIES:
        raise PeerRefusedError(REASON_BAD_PROXY, f"{name} has proxy policy {info.policy}")
    if now < cert.not_valid_before_utc:
        raise PeerRefusedError(
            REASON_NOT_YET_VALID, f"proxy {name} is valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z"
        )
    if now > cert.not_valid_after_utc:
        raise PeerRefusedError(
            REASON_EXPIRED, f"proxy {name} expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z"
        )
    try:
        constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        constraints = None
    if constraints is not None and constraints.ca:
        raise PeerRefusedError(REASON_BAD_PROXY, f"proxy {name} claims to be a CA")
    try:
        usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        usage = None
    if usage is not None and not usage.digital_signature:
        raise PeerRefusedError(
            REASON_BAD_PROXY, f"{describe(issuer)} may not sign proxies (no digitalSignature)"
        )
