"""The CA directory: hash names, CRLs (revoked, missing, expired, forged), intermediates, reloading."""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from gss_support import PKI
from lbtx.gss import issuing
from lbtx.gss.errors import CredentialsError, PeerRefusedError
from lbtx.gss.issuing import parse_dn
from lbtx.gss.trust import TrustStore, subject_hash

key = lambda: issuing.new_key("ec")  # noqa: E731


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def cadir(tmp_path, pki):
    target = tmp_path / "certificates"
    shutil.copytree(pki.cadir, target)
    return target


def refusal(store: TrustStore, creds, now, intermediates=()) -> PeerRefusedError:
    with pytest.raises(PeerRefusedError) as caught:
        store.verify(creds.cert, list(intermediates), now)
    return caught.value


def write_crl(cadir, ca, revoked, now, days=30, signer=None):
    crl = issuing.make_crl(issuing.Credentials(ca.cert, signer or ca.key), revoked, now, days)
    (cadir / f"{subject_hash(ca.cert)}.r0").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    bump(cadir)


def bump(cadir):
    stat = os.stat(cadir)
    os.utime(cadir, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


@pytest.mark.skipif(shutil.which("openssl") is None, reason="no openssl command to compare with")
def test_subject_hash_is_openssl_s(pki):
    """The hash naming CA files is the one `openssl x509 -hash` prints."""
    out = subprocess.run(["openssl", "x509", "-noout", "-hash"], input=issuing.cert_pem(pki.ca.cert),
                         capture_output=True, check=True).stdout.decode().strip()
    assert subject_hash(pki.ca.cert) == out


def test_trusted_and_untrusted(pki):
    """A certificate of the directory's CA validates; one of another CA does not."""
    store = TrustStore(str(pki.cadir))
    assert store.verify(pki.alice.cert, [], pki.now) == [pki.alice.cert, pki.ca.cert]
    assert refusal(store, pki.eve, pki.now).reason == "untrusted CA"


def test_revoked(pki):
    """A serial on the CA's CRL is refused as revoked, naming the certificate and the CA."""
    error = refusal(TrustStore(str(pki.cadir)), pki.bob, pki.now)
    assert error.reason == "revoked" and "Bob Revoked" in error.detail and "Test CA" in error.detail


def test_expiry_follows_the_time_given(pki):
    """Validity is judged at the time passed in, not the machine's clock."""
    store = TrustStore(str(pki.cadir))
    assert refusal(store, pki.alice, pki.now + datetime.timedelta(days=400)).reason == "expired"
    assert refusal(store, pki.alice, pki.now - datetime.timedelta(days=1)).reason == "not yet valid"


def test_missing_crl_optional_or_required(cadir, pki):
    """Without a CRL the certificate passes, unless CRLs are required."""
    (cadir / f"{subject_hash(pki.ca.cert)}.r0").unlink()
    TrustStore(str(cadir)).verify(pki.bob.cert, [], pki.now)
    assert refusal(TrustStore(str(cadir), require_crl=True), pki.bob, pki.now).reason == "no CRL"


def test_expired_crl_refuses(cadir, pki):
    """A CRL past its next update refuses every certificate of its CA."""
    write_crl(cadir, pki.ca, [], pki.now - datetime.timedelta(days=60), days=30)
    error = refusal(TrustStore(str(cadir)), pki.alice, pki.now)
    assert error.reason == "bad CRL" and "expired" in error.detail


def test_crl_signed_by_another_key_refuses(cadir, pki):
    """A CRL not signed by its CA is not believed (and not ignored)."""
    write_crl(cadir, pki.ca, [], pki.now, signer=pki.other_ca.key)
    assert refusal(TrustStore(str(cadir)), pki.alice, pki.now).reason == "bad CRL"


def test_reload_on_directory_change(cadir, pki):
    """A CRL renamed into the directory later is used without restarting."""
    store = TrustStore(str(cadir))
    store.verify(pki.alice.cert, [], pki.now)
    write_crl(cadir, pki.ca, [(pki.alice.cert.serial_number, pki.now)], pki.now)
    assert refusal(store, pki.alice, pki.now).reason == "revoked"


def test_intermediate_ca(cadir, pki):
    """A user of an intermediate CA validates when the intermediate is sent; its CRL is checked."""
    inter_key = key()
    inter = issuing.make_end_entity(pki.ca, parse_dn("/DC=org/DC=example/CN=Sub CA"), pki.now, key=inter_key)
    # make it a CA: reissue with CA constraints
    inter = issuing.make_ca(parse_dn("/DC=org/DC=example/CN=Sub CA"), pki.now, key=inter_key)
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    builder = (x509.CertificateBuilder().subject_name(inter.cert.subject).issuer_name(pki.ca.cert.subject)
               .public_key(inter_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(pki.now - datetime.timedelta(days=1))
               .not_valid_after(pki.now + datetime.timedelta(days=30)))
    for ext in inter.cert.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    inter = issuing.Credentials(builder.sign(pki.ca.key, hashes.SHA256()), inter_key)
    dave = issuing.make_end_entity(inter, parse_dn("/DC=org/DC=example/CN=Dave"), pki.now, key=key())
    store = TrustStore(str(cadir))
    assert refusal(store, dave, pki.now).reason == "untrusted CA"
    assert store.verify(dave.cert, [inter.cert], pki.now)[1] == inter.cert
    (cadir / f"{subject_hash(inter.cert)}.0").write_bytes(issuing.cert_pem(inter.cert))
    write_crl(cadir, inter, [(dave.cert.serial_number, pki.now)], pki.now)
    assert refusal(store, dave, pki.now).reason == "revoked"


def test_end_entity_cannot_act_as_ca(pki):
    """A certificate signed by a user certificate (not marked as a proxy) is refused."""
    fake = issuing.make_end_entity(pki.alice, parse_dn("/DC=org/DC=example/CN=Fake"), pki.now, key=key())
    error = refusal(TrustStore(str(pki.cadir)), fake, pki.now, [pki.alice.cert])
    assert error.reason in ("invalid certificate", "untrusted CA")


def test_bad_directories(tmp_path):
    """A missing directory or one without CA files is a CredentialsError."""
    with pytest.raises(CredentialsError):
        TrustStore(str(tmp_path / "missing"))
    (tmp_path / "README").write_text("nothing here")
    with pytest.raises(CredentialsError):
        TrustStore(str(tmp_path))


def test_unreadable_files_are_skipped(cadir, pki):
    """A corrupt <hash>.1 next to good files is skipped; the rest still works."""
    (cadir / "deadbeef.1").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    TrustStore(str(cadir)).verify(pki.alice.cert, [], pki.now)
