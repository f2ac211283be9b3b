"""Reading our own credentials: certificate, chain and key from PEM files.

A grid proxy file holds the proxy certificate, its key and the chain in one file;
host and user credentials usually come as a certificate file and a key file. Both
layouts are read the same way: every certificate block in order (the first is
ours, the rest its chain), and the first private key block.
"""

from __future__ import annotations

import re

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from lbtx.gss.errors import CredentialsError
from lbtx.gss.issuing import Credentials

_KEY_BLOCK = re.compile(
    rb"-----BEGIN ((?:RSA |EC |ENCRYPTED )?PRIVATE KEY)-----.+?-----END \1-----", re.S
)


def load_credentials(cert_path: str, key_path: str | None = None) -> Credentials:
    """Our certificate, key and chain; C{key_path} defaults to C{cert_path} (a proxy file).

    Raises L{CredentialsError} when a file is missing or unreadable, holds no
    certificate or no unencrypted key, or the key does not match the certificate.
    """
    key_path = key_path or cert_path
    try:
        with open(cert_path, "rb") as f:
            cert_data = f.read()
        with open(key_path, "rb") as f:
            key_data = f.read()
    except OSError as e:
        raise CredentialsError(f"cannot read credentials: {e}") from None
    try:
        certs = x509.load_pem_x509_certificates(cert_data)
    except ValueError as e:
        raise CredentialsError(f"no certificate in {cert_path}: {e}") from None
    match = _KEY_BLOCK.search(key_data)
    if match is None:
        raise CredentialsError(f"no private key in {key_path}")
    try:
        key = serialization.load_pem_private_key(match.group(0), password=None)
    except (ValueError, TypeError) as e:
        raise CredentialsError(f"cannot use the private key in {key_path}: {e}") from None
    if key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ) != certs[0].public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise CredentialsError(f"the key in {key_path} does not belong to the certificate in {cert_path}")
    return Credentials(certs[0], key, tuple(certs[1:]))
