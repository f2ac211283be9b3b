"""Credentials for the secure-transport tests, made by lbtx's own issuing code.

L{PKI} lays out a grid CA directory (hash-named CA certificate and CRL) and PEM
files for a server, users, proxies, and the bad cases the tests refuse. EC keys
keep it fast; the CLI tests use RSA like the real grid.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from lbtx.gss import issuing
from lbtx.gss.issuing import Credentials, parse_dn
from lbtx.gss.trust import subject_hash

ALICE = "/DC=org/DC=example/CN=Alice Example"
BOB = "/DC=org/DC=example/CN=Bob Revoked"
CAROL = "/DC=org/DC=example/CN=Carol Expired"
MALLORY = "/DC=org/DC=example/CN=Mallory"
EVE = "/DC=org/DC=elsewhere/CN=Eve"
SERVER = "/DC=org/DC=example/CN=localhost"


def key():
    return issuing.new_key("ec")


class PKI:
    """One trusted CA with its directory, an untrusted CA, and credentials in files."""

    def __init__(self, root: Path) -> None:
        self.root = root
        now = datetime.datetime.now(datetime.timezone.utc)
        self.now = now
        self.ca = issuing.make_ca(parse_dn("/DC=org/DC=example/CN=Test CA"), now, key=key())
        self.other_ca = issuing.make_ca(parse_dn("/DC=org/DC=elsewhere/CN=Other CA"), now, key=key())
        self.cadir = root / "certificates"
        self.cadir.mkdir()
        digest = subject_hash(self.ca.cert)
        (self.cadir / f"{digest}.0").write_bytes(issuing.cert_pem(self.ca.cert))
        (self.cadir / f"{digest}.signing_policy").write_text("# ignored\n")

        self.server = issuing.make_end_entity(
            self.ca, parse_dn(SERVER), now, server=True, dns_names=["localhost"], key=key())
        self.alice = issuing.make_end_entity(self.ca, parse_dn(ALICE), now, key=key())
        self.bob = issuing.make_end_entity(self.ca, parse_dn(BOB), now, key=key())
        self.carol = issuing.make_end_entity(
            self.ca, parse_dn(CAROL), now, days=-1,
            not_before=now - datetime.timedelta(days=30), key=key())
        self.mallory = issuing.make_end_entity(self.ca, parse_dn(MALLORY), now, key=key())
        self.eve = issuing.make_end_entity(self.other_ca, parse_dn(EVE), now, key=key())
        self.rogue_server = issuing.make_end_entity(
            self.other_ca, parse_dn("/DC=org/DC=elsewhere/CN=localhost"), now, server=True,
            dns_names=["localhost"], key=key())
        self.misnamed_server = issuing.make_end_entity(
            self.ca, parse_dn("/DC=org/DC=example/CN=other.example.org"), now, server=True,
            dns_names=["other.example.org"], key=key())

        proxy = issuing.make_proxy(self.alice, now, key=key())
        limited = issuing.make_proxy(proxy, now, limited=True, key=key())
        self.alice_proxy_chain = issuing.make_proxy(limited, now, legacy=True, limited=True, key=key())
        self.alice_legacy_proxy = issuing.make_proxy(self.alice, now, legacy=True, key=key())
        # claims to derive from Alice, signed by Mallory's key
        self.forged_proxy = issuing.make_proxy(self.alice, now, signing_key=self.mallory.key, key=key())

        crl = issuing.make_crl(self.ca, [(self.bob.cert.serial_number, now)], now)
        (self.cadir / f"{digest}.r0").write_bytes(crl.public_bytes(serialization.Encoding.PEM))

    def write(self, name: str, credentials: Credentials) -> Path:
        """C{credentials} as one PEM file (certificate, key, chain), like a proxy file."""
        path = self.root / f"{name}.pem"
        if not path.exists():
            path.write_bytes(credentials.pem())
            path.chmod(0o600)
        return path
