"""The trusted CAs: a CA directory in the grid layout, and validation against it.

The directory holds one file per CA certificate named C{<hash>.0} (the OpenSSL
subject hash; C{.1}, C{.2} ... on collisions) and the CA's CRL as C{<hash>.r0};
other files (C{.signing_policy}, C{.namespaces}, C{.info}, ...) are ignored. The
directory is read again when its modification time changes, as it does when
fetch-crl or a package update renames new files into it.

L{TrustStore.verify} validates an end-entity certificate: path building, expiry
and signatures by OpenSSL, then revocation from the CRLs here (a missing CRL is
accepted unless the store was made with C{require_crl=True}; a CRL that is past
its next update or badly signed refuses the certificate).
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass, field

from cryptography import x509
from OpenSSL import crypto
from twisted.logger import Logger

from lbtx.gss.errors import (
    REASON_BAD_CRL,
    REASON_EXPIRED,
    REASON_INVALID,
    REASON_NO_CRL,
    REASON_NOT_YET_VALID,
    REASON_REVOKED,
    REASON_UNTRUSTED,
    CredentialsError,
    PeerRefusedError,
)
from lbtx.gss.proxy import describe, dn_text

_CERT_FILE = re.compile(r"^[0-9a-f]{8}\.\d+$")
_CRL_FILE = re.compile(r"^[0-9a-f]{8}\.r\d+$")

# OpenSSL X509_V_ERR_* codes, grouped by what we tell the log
_UNTRUSTED = {2, 18, 19, 20, 21}
_EXPIRED = {10}
_NOT_YET_VALID = {9}


def subject_hash(cert: x509.Certificate) -> str:
    """The OpenSSL subject hash that names C{cert}'s files in a CA directory."""
    return f"{crypto.X509.from_cryptography(cert).subject_name_hash() & 0xFFFFFFFF:08x}"


@dataclass
class _Contents:
    mtime_ns: int
    openssl_cas: list[crypto.X509]
    cas: list[x509.Certificate]
    crls: dict[bytes, list[x509.CertificateRevocationList]] = field(default_factory=dict)


class TrustStore:
    """The CAs of one CA directory, and certificate validation against them."""

    log = Logger()

    def __init__(self, cadir: str, require_crl: bool = False) -> None:
        if not os.path.isdir(cadir):
            raise CredentialsError(f"CA directory {cadir} does not exist")
        self.cadir = cadir
        self.require_crl = require_crl
        self._contents = self._load()
        if not self._contents.cas:
            raise CredentialsError(f"no CA certificates (<hash>.0 files) in {cadir}")

    @property
    def authorities(self) -> list[x509.Certificate]:
        """The CA certificates currently trusted."""
        self._refresh()
        return list(self._contents.cas)

    def _refresh(self) -> None:
        try:
            mtime = os.stat(self.cadir).st_mtime_ns
        except OSError:
            return  # keep what we had; the directory may be being replaced
        if mtime != self._contents.mtime_ns:
            self._contents = self._load()
            self.log.info("reloaded CA directory {cadir}: {cas} CAs, {crls} CRLs",
                          cadir=self.cadir, cas=len(self._contents.cas),
                          crls=sum(len(v) for v in self._contents.crls.values()))

    def _load(self) -> _Contents:
        mtime = os.stat(self.cadir).st_mtime_ns
        openssl_cas: list[crypto.X509] = []
        cas: list[x509.Certificate] = []
        crls: dict[bytes, list[x509.CertificateRevocationList]] = {}
        for name in sorted(os.listdir(self.cadir)):
            path = os.path.join(self.cadir, name)
            try:
                if _CERT_FILE.match(name):
                    with open(path, "rb") as f:
                        for cert in x509.load_pem_x509_certificates(f.read()):
                            openssl_cas.append(crypto.X509.from_cryptography(cert))
                            cas.append(cert)
                elif _CRL_FILE.match(name):
                    with open(path, "rb") as f:
                        crl = _load_crl(f.read())
                    crls.setdefault(crl.issuer.public_bytes(), []).append(crl)
            except (OSError, ValueError) as e:
                self.log.warn("skipped unreadable {path} in the CA directory: {error}",
                              path=path, error=str(e))
        return _Contents(mtime, openssl_cas, cas, crls)

    def verify(
        self,
        cert: x509.Certificate,
        intermediates: tuple[x509.Certificate, ...] | list[x509.Certificate],
        now: datetime.datetime,
    ) -> list[x509.Certificate]:
        """The validated path from C{cert} to a trusted CA (C{cert} first).

        Raises L{PeerRefusedError}: untrusted CA, expired, not yet valid, revoked,
        no CRL (only with C{require_crl}), bad CRL, or another invalid certificate.
        """
        self._refresh()
        # A fresh store each time: OpenSSL keeps the first verification time set on a store.
        store = crypto.X509Store()
        for ca in self._contents.openssl_cas:
            store.add_cert(ca)
        store.set_time(now.replace(tzinfo=None))
        context = crypto.X509StoreContext(
            store,
            crypto.X509.from_cryptography(cert),
            [crypto.X509.from_cryptography(c) for c in intermediates],
        )
        try:
            path = [c.to_cryptography() for c in context.get_verified_chain()]
        except crypto.X509StoreContextError as e:
            code, depth, message = (list(e.errors) + [0, 0, str(e)])[:3]
            culprit = describe(e.certificate.to_cryptography()) if e.certificate else describe(cert)
            detail = f"{message} ({culprit}, depth {depth})"
            if code in _UNTRUSTED:
                raise PeerRefusedError(REASON_UNTRUSTED, detail) from None
            if code in _EXPIRED:
                raise PeerRefusedError(REASON_EXPIRED, detail) from None
            if code in _NOT_YET_VALID:
                raise PeerRefusedError(REASON_NOT_YET_VALID, detail) from None
            raise PeerRefusedError(REASON_INVALID, detail) from None
        self._check_revocation(path, now)
        return path

    def _check_revocation(self, path: list[x509.Certificate], now: datetime.datetime) -> None:
        for subject_cert, issuer in zip(path, path[1:]):
            crls = self._contents.crls.get(issuer.subject.public_bytes(), [])
            ca = dn_text(issuer.subject)
            valid = [c for c in crls if c.is_signature_valid(issuer.public_key())]
            if not valid:
                if crls:
                    raise PeerRefusedError(REASON_BAD_CRL, f"the CRL of {ca} is not signed by it")
                if self.require_crl:
                    raise PeerRefusedError(REASON_NO_CRL, f"no CRL for {ca} in {self.cadir}")
                continue
            crl = max(valid, key=lambda c: c.last_update_utc)
            if crl.next_update_utc is not None and crl.next_update_utc < now:
                raise PeerRefusedError(
                    REASON_BAD_CRL,
                    f"the CRL of {ca} expired at {crl.next_update_utc:%Y-%m-%d %H:%M:%S}Z",
                )
            entry = crl.get_revoked_certificate_by_serial_number(subject_cert.serial_number)
            if entry is not None:
                raise PeerRefusedError(
                    REASON_REVOKED,
                    f"{describe(subject_cert)} (serial {subject_cert.serial_number:#x}) was revoked"
                    f" by {ca} at {entry.revocation_date_utc:%Y-%m-%d %H:%M:%S}Z",
                )


def _load_crl(data: bytes) -> x509.CertificateRevocationList:
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)
