"""``lbtx ca`` as a real subprocess: its CA directory, certificates and proxies work with TLSTransport."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from lbtx.gss.credentials import load_credentials
from lbtx.gss.errors import PeerRefusedError
from lbtx.gss.proxy import dn_text, proxy_info
from lbtx.gss.trust import TrustStore, subject_hash
from lbtx.gss.verify import PeerVerifier


def lbtx(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "lbtx.cli.main", *args], capture_output=True,
                            text=True, timeout=60)
    if check and result.returncode != 0:
        raise AssertionError(f"lbtx {' '.join(args)} failed: {result.stderr}")
    return result


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("ca") / "ca"
    out = lbtx("ca", "init", str(directory), "--subject", "/DC=org/DC=example/CN=CLI CA", "--key-type", "ec")
    assert str(directory / "ca-cert.pem") in out.stdout
    return directory


def now():
    import datetime

    return datetime.datetime.now(datetime.timezone.utc)


def identify(ca: Path, cert: str, key: str | None = None, server_name=None) -> str:
    creds = load_credentials(cert, key)
    identity = PeerVerifier(TrustStore(str(ca / "certificates"))).verify(
        creds.cert, list(creds.chain), now(), server_name)
    return identity.name


def test_init_lays_out_a_grid_ca_directory(ca):
    """init writes the CA, a private key of mode 600, and <hash>.0 / <hash>.r0 copies."""
    cert = x509.load_pem_x509_certificate((ca / "ca-cert.pem").read_bytes())
    digest = subject_hash(cert)
    assert sorted(p.name for p in (ca / "certificates").iterdir()) == [f"{digest}.0", f"{digest}.r0"]
    assert stat.S_IMODE((ca / "ca-key.pem").stat().st_mode) == 0o600
    crl = x509.load_pem_x509_crl((ca / "certificates" / f"{digest}.r0").read_bytes())
    assert crl.is_signature_valid(cert.public_key()) and len(crl) == 0
    again = lbtx("ca", "init", str(ca), check=False)
    assert again.returncode == 1 and "already holds a CA" in again.stderr


def test_host_certificate_with_dns_names(ca):
    """host issues a server certificate whose subjectAltName carries every name asked for."""
    out = lbtx("ca", "host", str(ca), "lb.example.org", "--dns", "localhost")  # RSA, the default
    cert_path, key_path = out.stdout.split()
    assert cert_path.endswith("hosts/lb.example.org/hostcert.pem")
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["lb.example.org", "localhost"]
    assert identify(ca, cert_path, key_path, "localhost") == "/DC=org/DC=example/CN=lb.example.org"
    with pytest.raises(PeerRefusedError):
        identify(ca, cert_path, key_path, "elsewhere.example.org")


def test_user_proxy_chain_and_revocation(ca, tmp_path):
    """user → proxy → limited proxy → legacy proxy all name the user, until the user is revoked."""
    cert_path, key_path = lbtx("ca", "user", str(ca), "Alice", "--key-type", "ec").stdout.split()
    alice = "/DC=org/DC=example/CN=Alice"
    assert identify(ca, cert_path, key_path) == alice

    first = tmp_path / "x509up_1"
    lbtx("ca", "proxy", "--cert", cert_path, "--key", key_path, "--out", str(first), "--path-length", "2",
         "--key-type", "ec")
    second = tmp_path / "x509up_2"
    lbtx("ca", "proxy", "--cert", str(first), "--out", str(second), "--limited", "--hours", "1",
         "--key-type", "ec")
    third = tmp_path / "x509up_3"
    result = lbtx("ca", "proxy", "--cert", str(second), "--out", str(third), "--legacy", "--limited",
                  "--key-type", "ec")
    assert "valid until" in result.stderr
    assert stat.S_IMODE(third.stat().st_mode) == 0o600
    proxy = load_credentials(str(third))
    assert dn_text(proxy.cert.subject).endswith("/CN=limited proxy")
    assert proxy_info(proxy.cert).limited and len(proxy.chain) == 3
    assert identify(ca, str(third)) == alice

    lbtx("ca", "revoke", str(ca), cert_path)
    with pytest.raises(PeerRefusedError) as caught:
        identify(ca, str(third))
    assert caught.value.reason == "revoked"


def test_user_with_full_subject_and_crl_refresh(ca):
    """--subject sets the whole DN; crl writes the CRL again and keeps the revocations."""
    cert_path, key_path = lbtx("ca", "user", str(ca), "bob", "--subject", "/DC=org/DC=example/OU=People/CN=Bob",
                               "--key-type", "ec").stdout.split()
    assert identify(ca, cert_path, key_path) == "/DC=org/DC=example/OU=People/CN=Bob"
    lbtx("ca", "revoke", str(ca), cert_path)
    (crl_path,) = lbtx("ca", "crl", str(ca), "--days", "7").stdout.split()
    crl = x509.load_pem_x509_crl(Path(crl_path).read_bytes())
    cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert (crl.next_update_utc - crl.last_update_utc).days == 7


def test_errors(ca, tmp_path):
    """A missing CA, a certificate of another CA, or a bad subject: exit 1 with a message."""
    missing = lbtx("ca", "user", str(tmp_path / "none"), "x", check=False)
    assert missing.returncode == 1 and "no usable CA" in missing.stderr
    other = tmp_path / "other"
    lbtx("ca", "init", str(other), "--key-type", "ec")
    cert_path, _ = lbtx("ca", "user", str(other), "Eve", "--key-type", "ec").stdout.split()
    foreign = lbtx("ca", "revoke", str(ca), cert_path, check=False)
    assert foreign.returncode == 1 and "not issued by this CA" in foreign.stderr
    bad = lbtx("ca", "user", str(ca), "x", "--subject", "CN=no slash", check=False)
    assert bad.returncode == 1 and "starts with '/'" in bad.stderr


def test_verify_prints_identity_or_refusal(ca, tmp_path):
    """verify prints the end-entity subject a proxy proves, and the reason when refused."""
    cert_path, key_path = lbtx("ca", "user", str(ca), "Carol", "--key-type", "ec").stdout.split()
    proxy = tmp_path / "x509up_carol"
    lbtx("ca", "proxy", "--cert", cert_path, "--key", key_path, "--out", str(proxy), "--limited",
         "--key-type", "ec")
    grid = str(ca / "certificates")
    assert lbtx("ca", "verify", "--cadir", grid, str(proxy)).stdout == \
        "/DC=org/DC=example/CN=Carol (limited proxy)\n"
    lbtx("ca", "revoke", str(ca), cert_path)
    refused = lbtx("ca", "verify", "--cadir", grid, str(proxy), check=False)
    assert refused.returncode == 1 and "refused: revoked" in refused.stderr
    host_cert, _ = lbtx("ca", "host", str(ca), "lb2.example.org", "--key-type", "ec").stdout.split()
    wrong = lbtx("ca", "verify", "--cadir", grid, host_cert, "--server-name", "localhost", check=False)
    assert wrong.returncode == 1 and "refused: wrong server name" in wrong.stderr
