"""A small certificate authority kept in a directory, for tests and first steps.

Layout of the CA directory::

    ca-cert.pem, ca-key.pem        the CA (the key readable by its owner only)
    issued.json                    every certificate issued: serial, subject, revocation time
    certificates/<hash>.0          the CA certificate, hash-named: a grid CA directory
    certificates/<hash>.r0         its current CRL

Point servers and clients at C{certificates/} (C{cadir=} of C{lbtls:}
endpoints, C{X509_CERT_DIR}). C{lbtx ca} is the command line of this module.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lbtx.gss import issuing
from lbtx.gss.credentials import load_credentials
from lbtx.gss.issuing import Credentials
from lbtx.gss.proxy import dn_text
from lbtx.gss.trust import subject_hash

DEFAULT_CA_SUBJECT = "/DC=org/DC=example/CN=lbtx example CA"
CRL_DAYS = 30


class AuthorityError(Exception):
    """The CA directory is missing, already exists, or a request cannot be met."""


def write_private(path: Path, data: bytes) -> None:
    """Write C{data} to C{path}, readable by the owner only (made so before any byte lands)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def write_public(path: Path, data: bytes) -> None:
    """Write C{data} to C{path} (through a temporary name, so readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class CertificateAuthority:
    """The CA kept in C{directory}."""

    def __init__(self, directory: Path, credentials: Credentials) -> None:
        self.directory = Path(directory)
        self.credentials = credentials

    @property
    def grid_dir(self) -> Path:
        """The grid-layout CA directory to trust."""
        return self.directory / "certificates"

    @classmethod
    def create(cls, directory: Path, subject: str, now: datetime.datetime, days: float = 3650,
               key_type: str = "rsa") -> CertificateAuthority:
        """A new CA in C{directory} (which must not hold one yet), with its hashed copy and CRL."""
        directory = Path(directory)
        if (directory / "ca-cert.pem").exists():
            raise AuthorityError(f"{directory} already holds a CA")
        credentials = issuing.make_ca(issuing.parse_dn(subject), now, days, issuing.new_key(key_type))
        write_private(directory / "ca-key.pem", issuing.key_pem(credentials.key))
        write_public(directory / "ca-cert.pem", issuing.cert_pem(credentials.cert))
        ca = cls(directory, credentials)
        ca._save_index({})
        write_public(ca.grid_dir / f"{subject_hash(credentials.cert)}.0", issuing.cert_pem(credentials.cert))
        ca.write_crl(now)
        return ca

    @classmethod
    def open(cls, directory: Path) -> CertificateAuthority:
        """The CA already in C{directory}."""
        directory = Path(directory)
        try:
            credentials = load_credentials(str(directory / "ca-cert.pem"), str(directory / "ca-key.pem"))
        except Exception as e:
            raise AuthorityError(f"no usable CA in {directory}: {e}") from None
        return cls(directory, credentials)

    def base_subject(self) -> str:
        """The CA's subject without its last component: the prefix of issued subjects."""
        return dn_text(x509.Name(self.credentials.cert.subject.rdns[:-1]))

    def issue(self, subject: str, now: datetime.datetime, days: float = 365, dns_names=(),
              server: bool = False, key_type: str = "rsa") -> Credentials:
        """A new user (or with C{server}, host) certificate, recorded in the index."""
        credentials = issuing.make_end_entity(
            self.credentials, issuing.parse_dn(subject), now, days, list(dns_names), server,
            issuing.new_key(key_type))
        index = self._index()
        index[f"{credentials.cert.serial_number:x}"] = {"subject": subject, "revoked": None}
        self._save_index(index)
        return credentials

    def revoke(self, cert_path: Path, now: datetime.datetime) -> str:
        """Revoke the certificate in C{cert_path} and write a new CRL; its subject is returned."""
        cert = x509.load_pem_x509_certificates(Path(cert_path).read_bytes())[0]
        if cert.issuer != self.credentials.cert.subject:
            raise AuthorityError(f"{cert_path} was not issued by this CA")
        index = self._index()
        entry = index.setdefault(f"{cert.serial_number:x}", {"subject": None, "revoked": None})
        entry["revoked"] = entry["revoked"] or now.isoformat()
        self._save_index(index)
        self.write_crl(now)
        return dn_text(cert.subject)

    def write_crl(self, now: datetime.datetime, days: float = CRL_DAYS) -> Path:
        """Write the CRL of every revoked certificate, valid for C{days}; its path is returned."""
        revoked = [
            (int(serial, 16), datetime.datetime.fromisoformat(entry["revoked"]))
            for serial, entry in sorted(self._index().items()) if entry["revoked"]
        ]
        crl = issuing.make_crl(self.credentials, revoked, now, days)
        path = self.grid_dir / f"{subject_hash(self.credentials.cert)}.r0"
        write_public(path, crl.public_bytes(serialization.Encoding.PEM))
        return path

    def _index(self) -> dict:
        try:
            return json.loads((self.directory / "issued.json").read_text())
        except FileNotFoundError:
            return {}

    def _save_index(self, index: dict) -> None:
        write_public(self.directory / "issued.json", (json.dumps(index, indent=1, sort_keys=True) + "\n").encode())

