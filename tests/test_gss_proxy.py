"""Proxy chains resolved to the end entity, and every way a proxy link can be bad (no sockets)."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID, ObjectIdentifier

from gss_support import ALICE, PKI
from lbtx.gss import issuing
from lbtx.gss.errors import PeerRefusedError
from lbtx.gss.issuing import Credentials, parse_dn
from lbtx.gss.proxy import (
    MAX_PROXY_DEPTH,
    OID_POLICY_INDEPENDENT,
    OID_PROXY_CERT_INFO,
    dn_text,
    encode_proxy_cert_info,
    proxy_info,
    resolve_proxies,
)

key = lambda: issuing.new_key("ec")  # noqa: E731


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> PKI:
    return PKI(tmp_path_factory.mktemp("pki"))


def resolve(creds: Credentials, now):
    return resolve_proxies(creds.cert, list(creds.chain), now)


def refusal(creds: Credentials, now, chain=None) -> PeerRefusedError:
    with pytest.raises(PeerRefusedError) as caught:
        resolve_proxies(creds.cert, list(creds.chain if chain is None else chain), now)
    return caught.value


def hand_made(signer: Credentials, now, cn="12345", subject=None, ca=False, policy=None, signed_by=None):
    """A proxy built field by field, to get the things make_proxy never makes."""
    k = key()
    name = subject or x509.Name(list(signer.cert.subject.rdns) + [
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COMMON_NAME, cn)])])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(signer.cert.subject)
               .public_key(k.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=1))
               .not_valid_after(now + datetime.timedelta(hours=1)))
    if policy is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(
            ObjectIdentifier(OID_PROXY_CERT_INFO), encode_proxy_cert_info(policy)), critical=True)
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    cert = builder.sign(signed_by or signer.key, hashes.SHA256())
    return Credentials(cert, k, (signer.cert,) + signer.chain)


def test_end_entity_alone(pki):
    """A plain certificate is its own end entity, with no proxies."""
    resolved = resolve(pki.alice, pki.now)
    assert resolved.end_entity == pki.alice.cert and resolved.proxies == () and not resolved.limited


def test_chain_of_three_resolves_to_alice(pki):
    """RFC 3820 full → RFC limited → legacy limited: Alice, limited, proxies in order."""
    resolved = resolve(pki.alice_proxy_chain, pki.now)
    assert dn_text(resolved.end_entity.subject) == ALICE
    assert len(resolved.proxies) == 3 and resolved.proxies[-1] == pki.alice_proxy_chain.cert
    assert resolved.limited
    assert [proxy_info(c).form for c in resolved.proxies] == ["rfc3820", "rfc3820", "legacy"]


def test_intermediates_are_passed_on(pki):
    """Certificates the proxies did not use stay for CA path building."""
    resolved = resolve_proxies(pki.alice_legacy_proxy.cert,
                               list(pki.alice_legacy_proxy.chain) + [pki.other_ca.cert], pki.now)
    assert resolved.intermediates == (pki.other_ca.cert,)


def test_signed_by_someone_else(pki):
    """A proxy naming Alice as issuer but signed with Mallory's key is refused."""
    error = refusal(pki.forged_proxy, pki.now)
    assert error.reason == "bad proxy" and "not signed by the key of" in error.detail


def test_issuer_missing(pki):
    """A proxy whose issuer was not sent is refused."""
    error = refusal(pki.alice_legacy_proxy, pki.now, chain=[])
    assert error.reason == "bad proxy" and "was not sent" in error.detail


def test_subject_must_extend_issuer(pki):
    """Mallory cannot issue a proxy named after Alice: the subject must be the issuer's plus one CN."""
    fake = hand_made(pki.mallory, pki.now, subject=parse_dn(ALICE + "/CN=proxy"))
    error = refusal(fake, pki.now)
    assert error.reason == "bad proxy" and "plus one CN" in error.detail


def test_proxy_may_not_be_a_ca(pki):
    """A legacy-named proxy with CA:TRUE is refused."""
    error = refusal(hand_made(pki.alice, pki.now, cn="proxy", ca=True), pki.now)
    assert "claims to be a CA" in error.detail


def test_unknown_policy_language(pki):
    """Independent (or unknown) proxy policies are not accepted as the issuer's identity."""
    error = refusal(hand_made(pki.alice, pki.now, policy=OID_POLICY_INDEPENDENT), pki.now)
    assert "proxy policy" in error.detail


def test_expired_and_future_proxies(pki):
    """A proxy outside its validity period is refused as expired / not yet valid."""
    proxy = issuing.make_proxy(pki.alice, pki.now, hours=1, key=key())
    assert refusal(proxy, pki.now + datetime.timedelta(hours=2)).reason == "expired"
    assert refusal(proxy, pki.now - datetime.timedelta(hours=1)).reason == "not yet valid"


def test_path_length_constraint(pki):
    """pCPathLenConstraint 0 allows no proxy below; 1 allows one."""
    zero = issuing.make_proxy(pki.alice, pki.now, path_length=0, key=key())
    assert resolve(zero, pki.now).end_entity == pki.alice.cert
    below = issuing.make_proxy(zero, pki.now, key=key())
    assert "allows 0 further proxies, 1 follow" in refusal(below, pki.now).detail
    one = issuing.make_proxy(pki.alice, pki.now, path_length=1, key=key())
    assert len(resolve(issuing.make_proxy(one, pki.now, key=key()), pki.now).proxies) == 2


def test_full_proxy_below_limited_refused(pki):
    """A limited proxy cannot give rise to a full one."""
    limited = issuing.make_proxy(pki.alice, pki.now, limited=True, key=key())
    full = issuing.make_proxy(limited, pki.now, key=key())
    assert "full proxy signed by a limited proxy" in refusal(full, pki.now).detail


def test_too_many_proxies(pki):
    """Chains deeper than MAX_PROXY_DEPTH are refused."""
    creds = pki.alice
    for _ in range(MAX_PROXY_DEPTH + 1):
        creds = issuing.make_proxy(creds, pki.now, legacy=True, key=key())
    assert "more than" in refusal(creds, pki.now).detail


def test_issuer_without_digital_signature(pki):
    """An issuer whose keyUsage forbids signatures cannot sign proxies."""
    k = key()
    cert = (x509.CertificateBuilder().subject_name(parse_dn("/DC=org/DC=example/CN=No Sign"))
            .issuer_name(pki.ca.cert.subject).public_key(k.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(pki.now - datetime.timedelta(days=1))
            .not_valid_after(pki.now + datetime.timedelta(days=1))
            .add_extension(x509.KeyUsage(False, False, True, False, False, False, False, False, False),
                           critical=True)
            .sign(pki.ca.key, hashes.SHA256()))
    proxy = issuing.make_proxy(Credentials(cert, k), pki.now, legacy=True, key=key())
    assert "may not sign proxies" in refusal(proxy, pki.now).detail


def test_legacy_name_recognition(pki):
    """Only a last single CN of 'proxy' / 'limited proxy' marks a legacy proxy."""
    assert proxy_info(pki.alice.cert) is None
    assert proxy_info(pki.alice_legacy_proxy.cert).form == "legacy"
    assert proxy_info(pki.ca.cert) is None
