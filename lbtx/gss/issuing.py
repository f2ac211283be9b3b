"""Building certificates: CAs, host and user certificates, proxy certificates and CRLs.

The functions here make credentials for tests and first steps (C{lbtx ca} is
their command line); they use the C{cryptography} library and return its
objects. Times come in as C{now}; nothing here reads the clock or the disk.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from lbtx.gss.proxy import (
    LEGACY_LIMITED_CN,
    LEGACY_PROXY_CN,
    OID_POLICY_INHERIT_ALL,
    OID_POLICY_LIMITED,
    OID_PROXY_CERT_INFO,
    encode_proxy_cert_info,
)
from lbtx.gss.voms import OID_VOMS_ACSEQ, encode_acseq

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

DAY = datetime.timedelta(days=1)
HOUR = datetime.timedelta(hours=1)
#: Certificates start this much before "now", for peers whose clocks lag.
CLOCK_SKEW = datetime.timedelta(minutes=5)

_NAME_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "C": NameOID.COUNTRY_NAME,
    "L": NameOID.LOCALITY_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "UID": NameOID.USER_ID,
    "emailAddress": NameOID.EMAIL_ADDRESS,
    "Email": NameOID.EMAIL_ADDRESS,
}
# a new component starts at a slash followed by a known attribute name and "="
_COMPONENT_START = re.compile(r"/(?=(?:%s)=)" % "|".join(map(re.escape, _NAME_OIDS)))


@dataclass(frozen=True)
class Credentials:
    """A certificate, its private key and the certificates above it (not the CA root)."""

    cert: x509.Certificate
    key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()

    def pem(self) -> bytes:
        """Certificate, key and chain in one PEM file (the grid proxy file layout)."""
        return cert_pem(self.cert) + key_pem(self.key) + b"".join(cert_pem(c) for c in self.chain)


def parse_dn(text: str) -> x509.Name:
    """An X.509 name from the slash form (C{/DC=org/DC=example/CN=Alice Example}).

    A slash followed by anything but a known attribute name stays in the value
    (C{/CN=host/lb.example.org}).
    """
    if not text.startswith("/"):
        raise ValueError(f"a subject starts with '/': {text!r}")
    rdns = []
    for part in _COMPONENT_START.split(text[1:] if text.startswith("/") else text):
        key, sep, value = part.partition("=")
        if not sep or key not in _NAME_OIDS or not value:
            raise ValueError(f"bad subject component {part!r} in {text!r}")
        rdns.append(x509.RelativeDistinguishedName([x509.NameAttribute(_NAME_OIDS[key], value)]))
    return x509.Name(rdns)


def new_key(kind: str = "rsa") -> PrivateKey:
    """A fresh private key: C{"rsa"} (2048 bits, what grid software expects) or C{"ec"} (P-256)."""
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    raise ValueError(f"unknown key type {kind!r}")


def make_ca(
    subject: x509.Name, now: datetime.datetime, days: float = 3650, key: PrivateKey | None = None
) -> Credentials:
    """A self-signed CA certificate."""
    key = key or new_key()
    public = key.public_key()
    builder = (
        _base(subject, subject, public, now - CLOCK_SKEW, now + days * DAY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    return Credentials(builder.sign(key, hashes.SHA256()), key)


def make_end_entity(
    ca: Credentials,
    subject: x509.Name,
    now: datetime.datetime,
    days: float = 365,
    dns_names: Sequence[str] = (),
    server: bool = False,
    key: PrivateKey | None = None,
    not_before: datetime.datetime | None = None,
) -> Credentials:
    """A user certificate, or with C{server} a host certificate (C{dns_names} as subjectAltName)."""
    key = key or new_key()
    public = key.public_key()
    start = not_before if not_before is not None else now - CLOCK_SKEW
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    builder = (
        _base(subject, ca.cert.subject, public, start, now + days * DAY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.cert.public_key()), critical=False
        )
    )
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    return Credentials(builder.sign(ca.key, hashes.SHA256()), key, ca.chain)


def make_proxy(
    signer: Credentials,
    now: datetime.datetime,
    hours: float = 12,
    limited: bool = False,
    legacy: bool = False,
    path_length: int | None = None,
    key: PrivateKey | None = None,
    signing_key: PrivateKey | None = None,
    voms_acseq: bytes | None = None,
) -> Credentials:
    """A proxy certificate derived from C{signer} (an end-entity certificate or a proxy).

    RFC 3820 by default (subject = signer + C{CN=<serial>}, a critical
    proxyCertInfo extension); with C{legacy} the Globus form (subject = signer +
    C{CN=proxy} or C{CN=limited proxy}, no extension). The proxy ends when the
    signer does, if that is sooner than C{hours}. C{signing_key} signs with another
    key than the signer's (to build forgeries in tests). C{voms_acseq} is the
    value of a VOMS attribute certificate extension to carry (L{make_voms_acseq}).
    The chain of the result is the signer's certificate followed by the signer's chain.
    """
    key = key or new_key()
    public = key.public_key()
    serial = x509.random_serial_number()
    if legacy:
        cn = LEGACY_LIMITED_CN if limited else LEGACY_PROXY_CN
    else:
        cn = str(serial & 0x7FFFFFFF)
    subject = x509.Name(list(signer.cert.subject.rdns) + [
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    ])
    end = min(now + hours * HOUR, signer.cert.not_valid_after_utc)
    builder = _base(subject, signer.cert.subject, public, now - CLOCK_SKEW, end, serial).add_extension(
        _key_usage(), critical=True
    )
    if not legacy:
        policy = OID_POLICY_LIMITED if limited else OID_POLICY_INHERIT_ALL
        builder = builder.add_extension(
            x509.UnrecognizedExtension(
                ObjectIdentifier(OID_PROXY_CERT_INFO), encode_proxy_cert_info(policy, path_length)
            ),
            critical=True,
        )
    if voms_acseq is not None:
        builder = builder.add_extension(
            x509.UnrecognizedExtension(ObjectIdentifier(OID_VOMS_ACSEQ), voms_acseq), critical=False
        )
    cert = builder.sign(signing_key or signer.key, hashes.SHA256())
    return Credentials(cert, key, (signer.cert,) + signer.chain)


def make_voms_acseq(
    voms: Credentials,
    holder: x509.Certificate,
    fqans: Sequence[str],
    now: datetime.datetime,
    hours: float = 12,
    vo: str | None = None,
    not_before: datetime.datetime | None = None,
) -> bytes:
    """A VOMS extension value: one attribute certificate of C{fqans} for C{holder}, signed by C{voms}.

    C{vo} defaults to the first FQAN's VO. Valid from C{not_before} (default
    C{now} less the clock skew) for C{hours} after C{now}.
    """
    if vo is None:
        vo = (fqans[0].strip("/").split("/") or [""])[0] if fqans else ""
    start = not_before if not_before is not None else now - CLOCK_SKEW
    return encode_acseq(voms.cert, voms.key, holder, fqans, start, now + hours * HOUR, vo)


def make_crl(
    ca: Credentials,
    revoked: Iterable[tuple[int, datetime.datetime]],
    now: datetime.datetime,
    days: float = 30,
) -> x509.CertificateRevocationList:
    """A CRL of C{ca} listing C{(serial, revocation time)} pairs, valid for C{days}."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.cert.subject)
        .last_update(now - CLOCK_SKEW)
        .next_update(now + days * DAY)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(ca.key, hashes.SHA256())


def cert_pem(cert: x509.Certificate) -> bytes:
    """A certificate in PEM."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """An unencrypted private key in PEM (PKCS#8)."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _base(subject, issuer, public, start, end, serial=None) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public)
        .serial_number(serial if serial is not None else x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
    )


def _key_usage(cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
