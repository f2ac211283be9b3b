"""VOMS attributes: the FQANs a proxy certificate carries in its VOMS attribute certificate.

A VOMS server signs an RFC 5755 attribute certificate (AC) for a user; the user's
proxy carries it in the extension L{OID_VOMS_ACSEQ} (a SEQUENCE OF
AttributeCertificate), and the AC carries the FQANs in the attribute
L{OID_VOMS_FQANS} (IetfAttrSyntax: the VO's C{vo://host:port} as policy
authority, then one OCTET STRING per FQAN, C{/vo/group/Role=x/Capability=NULL}).

L{read_fqans} takes the FQANs of a resolved proxy chain: from the first proxy
(leaf upwards) that has the extension, the ACs that are within their validity
period and whose holder is a certificate of the chain. With a VOMS directory
(L{VomsTrust}) the AC must also be signed by one of its certificates; without
one the FQANs are taken as asserted by the proxy chain (which the user signed).
Anything wrong (malformed, expired, not yet valid, another holder, a bad
signature) is logged and those attributes are ignored: the peer keeps its
identity, without those FQANs. Pure code but for the log and
L{VomsTrust.load} reading the directory; C{now} is passed in.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from twisted.logger import Logger

from lbtx.gss import der
from lbtx.gss.proxy import ResolvedChain, describe

OID_VOMS_ACSEQ = "1.3.6.1.4.1.8005.100.100.5"
OID_VOMS_FQANS = "1.3.6.1.4.1.8005.100.100.4"

#: Most ACs read from one extension, and FQANs from one AC.
MAX_ACS = 16
MAX_FQANS = 256
MAX_FQAN_LENGTH = 1024

_SIGNATURE_HASHES = {
    "1.2.840.113549.1.1.5": hashes.SHA1,    # sha1WithRSAEncryption (old VOMS servers)
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
    "1.2.840.10045.4.3.2": hashes.SHA256,   # ecdsa-with-SHA256
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}
_RSA_SHA = {hashes.SHA1: "1.2.840.113549.1.1.5", hashes.SHA256: "1.2.840.113549.1.1.11",
            hashes.SHA384: "1.2.840.113549.1.1.12", hashes.SHA512: "1.2.840.113549.1.1.13"}
_EC_SHA = {hashes.SHA256: "1.2.840.10045.4.3.2", hashes.SHA384: "1.2.840.10045.4.3.3",
           hashes.SHA512: "1.2.840.10045.4.3.4"}
_TAG_CONTEXT_0 = 0xA0
_TAG_DIRECTORY_NAME = 0xA4  # GeneralName [4] directoryName (EXPLICIT: a Name inside)
_TAG_URI = 0x86             # GeneralName [6] uniformResourceIdentifier

log = Logger()


class VOMSError(ValueError):
    """A VOMS attribute certificate that is malformed or not acceptable."""


@dataclass(frozen=True)
class AttributeCertificate:
    """What lbtx reads from one VOMS AC.

    @ivar tbs: the DER of the signed part (AttributeCertificateInfo).
    @ivar holder: C{(issuer Name DER, serial)} of the holder's certificate, or C{None}.
    @ivar issuer: the DER of the VOMS server's Name.
    @ivar authority: the policy authority of the FQANs (C{vo://host:port}), or C{None}.
    """

    tbs: bytes
    holder: tuple[bytes, int] | None
    issuer: bytes
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime
    fqans: tuple[str, ...]
    authority: str | None
    signature_algorithm: str
    signature: bytes


def voms_extension(cert: x509.Certificate) -> bytes | None:
    """The value of C{cert}'s VOMS AC extension, or C{None}."""
    for ext in cert.extensions:
        if ext.oid.dotted_string == OID_VOMS_ACSEQ:
            return ext.value.value
    return None


def parse_acseq(value: bytes) -> list[AttributeCertificate]:
    """The ACs of a VOMS extension value; raises L{VOMSError} for anything malformed."""
    try:
        acs = list(der.elements(der.read_one(value, der.TAG_SEQUENCE)))
        if not acs:
            raise VOMSError("no attribute certificate in the extension")
        if len(acs) > MAX_ACS:
            raise VOMSError(f"{len(acs)} attribute certificates (at most {MAX_ACS})")
        out = []
        for tag, body, _ in acs:
            if tag != der.TAG_SEQUENCE:
                raise VOMSError("an attribute certificate that is not a SEQUENCE")
            out.append(_parse_ac(body))
        return out
    except der.DERError as e:
        raise VOMSError(f"malformed attribute certificate: {e}") from None


def _parse_ac(body: bytes) -> AttributeCertificate:
    parts = list(der.elements(body))
    if len(parts) != 3 or [p[0] for p in parts] != [der.TAG_SEQUENCE, der.TAG_SEQUENCE, der.TAG_BIT_STRING]:
        raise VOMSError("an attribute certificate is acinfo, algorithm and signature")
    (_, info, tbs), (_, algorithm, _), (_, bits, _) = parts
    signature_algorithm = _algorithm(algorithm)
    if not bits or bits[0] != 0:
        raise VOMSError("a signature with unused bits")
    fields = list(der.read(info))
    if len(fields) < 7:
        raise VOMSError("acinfo has fewer than 7 fields")
    (t_version, version), (t_holder, holder), (t_issuer, issuer), (t_alg, inner_alg), \
        (t_serial, serial), (t_validity, validity), (t_attrs, attributes) = fields[:7]
    if t_version != der.TAG_INTEGER or der.decode_integer(version) != 1:
        raise VOMSError("not a version 2 attribute certificate")
    if t_holder != der.TAG_SEQUENCE or t_issuer != _TAG_CONTEXT_0 or t_alg != der.TAG_SEQUENCE \
            or t_serial != der.TAG_INTEGER or t_validity != der.TAG_SEQUENCE \
            or t_attrs != der.TAG_SEQUENCE:
        raise VOMSError("acinfo fields out of order or of the wrong type")
    if _algorithm(inner_alg) != signature_algorithm:
        raise VOMSError("the signature algorithm inside and outside acinfo differ")
    times = list(der.read(validity))
    if len(times) != 2:
        raise VOMSError("a validity period is two times")
    not_before, not_after = (der.decode_time(tag, value) for tag, value in times)
    fqans, authority = _fqans(attributes)
    return AttributeCertificate(
        tbs=tbs, holder=_holder(holder), issuer=_issuer(issuer), serial=der.decode_integer(serial),
        not_before=not_before, not_after=not_after, fqans=fqans, authority=authority,
        signature_algorithm=signature_algorithm, signature=bits[1:])


def _algorithm(value: bytes) -> str:
    parts = list(der.read(value))
    if not parts or parts[0][0] != der.TAG_OID:
        raise VOMSError("an algorithm identifier without an OID")
    return der.decode_oid(parts[0][1])


def _directory_name(general_names: bytes) -> bytes:
    """The first directoryName (the DER of its Name) of a GeneralNames value."""
    for tag, value in der.read(general_names):
        if tag == _TAG_DIRECTORY_NAME:
            der.read_one(value, der.TAG_SEQUENCE)
            return value
    raise VOMSError("no directory name")


def _holder(value: bytes) -> tuple[bytes, int] | None:
    for tag, body in der.read(value):
        if tag == _TAG_CONTEXT_0:  # baseCertificateID [0] IssuerSerial
            parts = list(der.read(body))
            if len(parts) < 2 or parts[0][0] != der.TAG_SEQUENCE or parts[1][0] != der.TAG_INTEGER:
                raise VOMSError("a holder's IssuerSerial is issuer and serial")
            return _directory_name(parts[0][1]), der.decode_integer(parts[1][1])
    return None


def _issuer(value: bytes) -> bytes:
    # v2Form [0] { issuerName GeneralNames, ... }
    parts = list(der.read(value))
    if not parts or parts[0][0] != der.TAG_SEQUENCE:
        raise VOMSError("an AC issuer without a name")
    return _directory_name(parts[0][1])


def _fqans(attributes: bytes) -> tuple[tuple[str, ...], str | None]:
    for tag, attribute in der.read(attributes):
        if tag != der.TAG_SEQUENCE:
            raise VOMSError("an attribute that is not a SEQUENCE")
        parts = list(der.read(attribute))
        if len(parts) != 2 or parts[0][0] != der.TAG_OID or parts[1][0] != der.TAG_SET:
            raise VOMSError("an attribute is a type and a SET of values")
        if der.decode_oid(parts[0][1]) != OID_VOMS_FQANS:
            continue
        fqans: list[str] = []
        authority = None
        for vtag, syntax in der.read(parts[1][1]):
            if vtag != der.TAG_SEQUENCE:
                raise VOMSError("FQANs that are not an IetfAttrSyntax")
            for itag, item in der.read(syntax):
                if itag == _TAG_CONTEXT_0:
                    for ntag, name in der.read(item):
                        if ntag == _TAG_URI:
                            authority = _text(name, "policy authority")
                elif itag == der.TAG_SEQUENCE:
                    for ftag, fqan in der.read(item):
                        if ftag not in (der.TAG_OCTET_STRING, der.TAG_UTF8_STRING):
                            raise VOMSError(f"an FQAN of tag {ftag:#x}")
                        fqans.append(_fqan(fqan))
                        if len(fqans) > MAX_FQANS:
                            raise VOMSError(f"more than {MAX_FQANS} FQANs")
                else:
                    raise VOMSError(f"an IetfAttrSyntax part of tag {itag:#x}")
        if not fqans:
            raise VOMSError("an FQAN attribute without FQANs")
        return tuple(fqans), authority
    raise VOMSError("no FQAN attribute")


def _text(value: bytes, what: str) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise VOMSError(f"a {what} that is not UTF-8") from None
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise VOMSError(f"a {what} with control characters")
    return text


def _fqan(value: bytes) -> str:
    if len(value) > MAX_FQAN_LENGTH:
        raise VOMSError(f"an FQAN of {len(value)} bytes")
    fqan = _text(value, "FQAN")
    if not fqan.startswith("/") or len(fqan) < 2 or " " in fqan:
        raise VOMSError(f"malformed FQAN {fqan!r}")
    return fqan


class VomsTrust:
    """The VOMS servers whose ACs are believed: their certificates (PEM files under C{directory}).

    The grid layout C{vomsdir/VO/HOST.pem} is read recursively; every C{*.pem}
    certificate counts, for any VO. (C{.lsc} files, which name a server by its
    DN and CA instead, are not read: put the server's certificate there.)
    The certificates themselves are taken as configured, not checked against CAs.
    """

    def __init__(self, certificates: list[x509.Certificate], directory: str | None = None) -> None:
        self.certificates = list(certificates)
        self.directory = directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> VomsTrust:
        """Every certificate in the PEM files under C{directory}; C{ValueError} if none."""
        root = Path(directory)
        if not root.is_dir():
            raise ValueError(f"no VOMS directory {directory}")
        certs: list[x509.Certificate] = []
        for path in sorted(root.rglob("*.pem")):
            try:
                certs.extend(x509.load_pem_x509_certificates(path.read_bytes()))
            except (OSError, ValueError) as e:
                log.warn("ignored {path} in the VOMS directory: {error}", path=str(path), error=str(e))
        if not certs:
            raise ValueError(f"no VOMS server certificate under {directory}")
        return cls(certs, str(directory))

    def check_signature(self, ac: AttributeCertificate) -> None:
        """Raise L{VOMSError} unless a known VOMS server signed C{ac}."""
        signers = [c for c in self.certificates if c.subject.public_bytes() == ac.issuer]
        if not signers:
            raise VOMSError("issued by a VOMS server that is not in the VOMS directory")
        algorithm = _SIGNATURE_HASHES.get(ac.signature_algorithm)
        if algorithm is None:
            raise VOMSError(f"signature algorithm {ac.signature_algorithm} not supported")
        for cert in signers:
            public = cert.public_key()
            try:
                if isinstance(public, rsa.RSAPublicKey):
                    public.verify(ac.signature, ac.tbs, padding.PKCS1v15(), algorithm())
                elif isinstance(public, ec.EllipticCurvePublicKey):
                    public.verify(ac.signature, ac.tbs, ec.ECDSA(algorithm()))
                else:
                    continue
            except (InvalidSignature, UnsupportedAlgorithm, ValueError):
                continue
            return
        raise VOMSError("the signature does not verify with the VOMS server's key")


def check(ac: AttributeCertificate, chain_certs: list[x509.Certificate], now: datetime.datetime,
          trust: VomsTrust | None) -> None:
    """Raise L{VOMSError} unless C{ac} is valid at C{now}, held by one of C{chain_certs}
    and, with C{trust}, signed by a known VOMS server."""
    if now < ac.not_before:
        raise VOMSError(f"not valid before {ac.not_before:%Y-%m-%d %H:%M:%S}Z")
    if now > ac.not_after:
        raise VOMSError(f"expired at {ac.not_after:%Y-%m-%d %H:%M:%S}Z")
    if ac.holder is not None:
        holders = {(c.issuer.public_bytes(), c.serial_number) for c in chain_certs}
        if ac.holder not in holders:
            raise VOMSError("issued for another certificate (holder)")
    if trust is not None:
        trust.check_signature(ac)


def read_fqans(resolved: ResolvedChain, now: datetime.datetime,
               trust: VomsTrust | None = None) -> tuple[str, ...]:
    """The VOMS FQANs of a resolved chain, in their order; C{()} when there are none usable.

    Never raises for bad attributes: they are logged and ignored.
    """
    ordered = [resolved.end_entity, *resolved.proxies]
    for index in range(len(ordered) - 1, 0, -1):  # the leaf first
        cert = ordered[index]
        value = voms_extension(cert)
        if value is None:
            continue
        fqans: list[str] = []
        try:
            acs = parse_acseq(value)
        except VOMSError as e:
            _ignored(cert, str(e))
            return ()
        for ac in acs:
            try:
                check(ac, ordered[:index], now, trust)
            except VOMSError as e:
                _ignored(cert, str(e))
                continue
            fqans.extend(f for f in ac.fqans if f not in fqans)
        return tuple(fqans)
    return ()


def _ignored(cert: x509.Certificate, why: str) -> None:
    log.warn("ignored VOMS attributes of {subject}: {why}", subject=describe(cert), why=why)


# --- issuing (tests and lbtx ca) ------------------------------------------------------------


def _general_names_dn(name: x509.Name) -> bytes:
    return der.encode_sequence(der.encode(_TAG_DIRECTORY_NAME, name.public_bytes()))


def encode_acseq(voms_cert: x509.Certificate, voms_key, holder: x509.Certificate, fqans,
                 not_before: datetime.datetime, not_after: datetime.datetime, vo: str,
                 serial: int | None = None) -> bytes:
    """The value of a VOMS extension with one AC for C{holder}, signed by C{voms_key}.

    C{vo} names the policy authority (C{vo://VO}); RSA keys sign with SHA-256 and
    PKCS#1 v1.5, EC keys with ECDSA and SHA-256.
    """
    fqans = [str(f) for f in fqans]
    if not fqans:
        raise ValueError("an attribute certificate needs at least one FQAN")
    for fqan in fqans:
        _fqan(fqan.encode("utf-8"))
    if isinstance(voms_key, rsa.RSAPrivateKey):
        algorithm_oid = _RSA_SHA[hashes.SHA256]
        algorithm = der.encode_sequence(der.encode_oid(algorithm_oid), der.encode(der.TAG_NULL, b""))
    elif isinstance(voms_key, ec.EllipticCurvePrivateKey):
        algorithm = der.encode_sequence(der.encode_oid(_EC_SHA[hashes.SHA256]))
    else:
        raise ValueError("a VOMS key is RSA or EC")
    holder_field = der.encode_sequence(der.encode(_TAG_CONTEXT_0, _general_names_dn(holder.issuer)
                                                  + der.encode_integer(holder.serial_number)))
    issuer_field = der.encode(_TAG_CONTEXT_0, _general_names_dn(voms_cert.subject))
    ietf = der.encode_sequence(
        der.encode(_TAG_CONTEXT_0, der.encode(_TAG_URI, f"vo://{vo}".encode("utf-8"))),
        der.encode_sequence(*(der.encode(der.TAG_OCTET_STRING, f.encode("utf-8")) for f in fqans)))
    attribute = der.encode_sequence(der.encode_oid(OID_VOMS_FQANS), der.encode(der.TAG_SET, ietf))
    info = der.encode_sequence(
        der.encode_integer(1), holder_field, issuer_field, algorithm,
        der.encode_integer(serial if serial is not None else x509.random_serial_number()),
        der.encode_sequence(der.encode_generalized_time(not_before), der.encode_generalized_time(not_after)),
        der.encode_sequence(attribute))
    if isinstance(voms_key, rsa.RSAPrivateKey):
        signature = voms_key.sign(info, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = voms_key.sign(info, ec.ECDSA(hashes.SHA256()))
    ac = der.encode_sequence(info, algorithm, der.encode(der.TAG_BIT_STRING, b"\0" + signature))
    return der.encode_sequence(ac)
