"""``lbtx ca``: a small CA for tests and first steps (CA, host, user and proxy certificates, CRL).

Subcommands::

    lbtx ca init DIR [--subject DN] [--days N]        a new CA; DIR/certificates is the CA directory
    lbtx ca host DIR HOSTNAME [--dns NAME]...         DIR/hosts/HOSTNAME/host{cert,key}.pem
    lbtx ca user DIR NAME [--subject DN]              DIR/users/NAME/user{cert,key}.pem
    lbtx ca voms DIR NAME                             a VOMS server: DIR/voms/NAME/voms{cert,key}.pem,
                                                      its certificate in DIR/vomsdir/NAME.pem
    lbtx ca proxy --cert FILE [--key FILE] --out FILE [--hours H] [--limited] [--legacy] [--path-length N]
                  [--voms-fqan FQAN]... [--voms-cert FILE] [--voms-key FILE] [--voms-hours H] [--vo VO]
    lbtx ca revoke DIR CERTFILE                       revoke, and write a new CRL
    lbtx ca crl DIR [--days N]                        write the CRL again (a fresh next update)
    lbtx ca verify --cadir CADIR FILE [--server-name NAME] [--require-crl]
                                                      who FILE authenticates as, or why it is refused

Every command prints the files it wrote, one per line. Proxy files hold the
proxy certificate, its key and the chain (like grid-proxy-init's); make a chain
of proxies by passing a proxy file as ``--cert``. With ``--voms-fqan`` the proxy
carries a VOMS attribute certificate of those FQANs for the signer's
certificate, signed by the VOMS server of ``--voms-cert``/``--voms-key`` (made by
``lbtx ca voms``), like voms-proxy-init's.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path

from cryptography import x509

from lbtx.gss import issuing
from lbtx.gss.authority import DEFAULT_CA_SUBJECT, AuthorityError, CertificateAuthority, write_private, write_public
from lbtx.gss.credentials import load_credentials
from lbtx.gss.errors import CredentialsError, PeerRefusedError
from lbtx.gss.proxy import dn_text
from lbtx.gss.trust import TrustStore, subject_hash
from lbtx.gss.verify import PeerVerifier
from lbtx.gss.voms import VomsTrust


def add_parser(sub) -> None:
    p = sub.add_parser("ca", help="a small CA: CA, host, user and proxy certificates, CRLs",
                       description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=__doc__.split("\n\n", 1)[1])
    commands = p.add_subparsers(dest="ca_command", metavar="SUBCOMMAND")
    commands.required = True

    init = commands.add_parser("init", help="create a CA in DIR")
    init.add_argument("dir", type=Path)
    init.add_argument("--subject", default=DEFAULT_CA_SUBJECT, help=f"CA subject (default {DEFAULT_CA_SUBJECT})")
    init.add_argument("--days", type=float, default=3650)
    _key_type(init)
    init.set_defaults(run=run_init)

    host = commands.add_parser("host", help="issue a host certificate (subjectAltName DNS names)")
    host.add_argument("dir", type=Path)
    host.add_argument("hostname")
    host.add_argument("--dns", action="append", default=[], metavar="NAME",
                      help="another DNS name for subjectAltName (repeatable; HOSTNAME is always there)")
    _issued_options(host)
    host.set_defaults(run=run_host)

    user = commands.add_parser("user", help="issue a user certificate")
    user.add_argument("dir", type=Path)
    user.add_argument("name", help="the CN (and the directory name under DIR/users)")
    _issued_options(user)
    user.set_defaults(run=run_user)

    proxy = commands.add_parser("proxy", help="make a proxy certificate (RFC 3820 unless --legacy)")
    proxy.add_argument("--cert", required=True, help="the signer's certificate, or a proxy file")
    proxy.add_argument("--key", help="the signer's key (default: in --cert)")
    proxy.add_argument("--out", required=True, type=Path, help="the proxy file to write (mode 600)")
    proxy.add_argument("--hours", type=float, default=12)
    proxy.add_argument("--limited", action="store_true", help="a limited proxy")
    proxy.add_argument("--legacy", action="store_true", help="Globus legacy form: /CN=proxy, no extension")
    proxy.add_argument("--path-length", type=int, help="how many proxies may follow (RFC 3820 only)")
    proxy.add_argument("--voms-fqan", action="append", default=[], metavar="FQAN",
                       help="a VOMS FQAN to carry, /vo/group/Role=x (repeatable, in order)")
    proxy.add_argument("--voms-cert", help="the VOMS server's certificate (lbtx ca voms)")
    proxy.add_argument("--voms-key", help="the VOMS server's key (default: next to --voms-cert)")
    proxy.add_argument("--voms-hours", type=float, help="hours the attributes are valid (default --hours)")
    proxy.add_argument("--vo", help="the VO of the attributes (default: the first FQAN's)")
    _key_type(proxy)
    proxy.set_defaults(run=run_proxy)

    voms = commands.add_parser("voms", help="issue a VOMS server certificate (it signs attributes)")
    voms.add_argument("dir", type=Path)
    voms.add_argument("name", help="the server's host name (the CN and the directory names)")
    _issued_options(voms)
    voms.set_defaults(run=run_voms)

    revoke = commands.add_parser("revoke", help="revoke a certificate and write a new CRL")
    revoke.add_argument("dir", type=Path)
    revoke.add_argument("cert", type=Path)
    revoke.set_defaults(run=run_revoke)

    crl = commands.add_parser("crl", help="write the CRL again")
    crl.add_argument("dir", type=Path)
    crl.add_argument("--days", type=float, default=30)
    crl.set_defaults(run=run_crl)

    verify = commands.add_parser("verify", help="show the identity a certificate or proxy file proves")
    verify.add_argument("--cadir", required=True, help="the grid CA directory to trust")
    verify.add_argument("file", help="certificate (with chain) or proxy file")
    verify.add_argument("--server-name", help="also check the certificate is issued for this name")
    verify.add_argument("--require-crl", action="store_true", help="refuse a CA without CRL")
    verify.add_argument("--vomsdir", help="VOMS server certificates to check attributes against")
    verify.set_defaults(run=run_verify)


def _key_type(p) -> None:
    p.add_argument("--key-type", choices=["rsa", "ec"], default="rsa", help="rsa (2048 bits, default) or ec")


def _issued_options(p) -> None:
    p.add_argument("--subject", help="full subject (default: the CA's prefix plus /CN=NAME)")
    p.add_argument("--days", type=float, default=365)
    p.add_argument("--out-cert", type=Path)
    p.add_argument("--out-key", type=Path)
    _key_type(p)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _done(*paths: Path) -> int:
    for path in paths:
        sys.stdout.write(f"{path}\n")
    return 0


def _fail(message: str) -> int:
    sys.stderr.write(f"lbtx ca: {message}\n")
    return 1


def run_init(args) -> int:
    try:
        ca = CertificateAuthority.create(args.dir, args.subject, _now(), args.days, args.key_type)
    except (AuthorityError, ValueError) as e:
        return _fail(str(e))
    return _done(ca.directory / "ca-cert.pem", ca.directory / "ca-key.pem", *sorted(ca.grid_dir.iterdir()))


def _issue(args, name: str, kind: str, server: bool, dns_names=(), folder: str | None = None) -> int:
    try:
        ca = CertificateAuthority.open(args.dir)
        subject = args.subject or f"{ca.base_subject()}/CN={name}"
        credentials = ca.issue(subject, _now(), args.days, dns_names, server, args.key_type)
    except (AuthorityError, ValueError) as e:
        return _fail(str(e))
    folder = args.dir / (folder or f"{kind}s") / name
    cert_path = args.out_cert or folder / f"{kind}cert.pem"
    key_path = args.out_key or folder / f"{kind}key.pem"
    write_private(key_path, issuing.key_pem(credentials.key))
    write_public(cert_path, issuing.cert_pem(credentials.cert))
    return _done(cert_path, key_path)


def run_host(args) -> int:
    names = [args.hostname] + [n for n in args.dns if n != args.hostname]
    return _issue(args, args.hostname, "host", True, names)


def run_user(args) -> int:
    return _issue(args, args.name, "user", False)


def run_voms(args) -> int:
    code = _issue(args, args.name, "voms", True, [args.name], folder="voms")
    if code != 0:
        return code
    cert_path = args.out_cert or args.dir / "voms" / args.name / "vomscert.pem"
    trusted = args.dir / "vomsdir" / f"{args.name}.pem"
    write_public(trusted, cert_path.read_bytes())
    return _done(trusted)


def run_proxy(args) -> int:
    if args.legacy and args.path_length is not None:
        return _fail("--path-length needs an RFC 3820 proxy (not --legacy)")
    if not args.voms_fqan and (args.voms_cert or args.voms_key or args.vo or args.voms_hours is not None):
        return _fail("--voms-cert, --voms-key, --vo and --voms-hours need --voms-fqan")
    now = _now()
    try:
        signer = load_credentials(args.cert, args.key)
        acseq = None
        if args.voms_fqan:
            if not args.voms_cert:
                return _fail("--voms-fqan needs --voms-cert (a VOMS server from lbtx ca voms)")
            voms_key = args.voms_key or str(Path(args.voms_cert).with_name("vomskey.pem"))
            voms = load_credentials(args.voms_cert, voms_key)
            hours = args.hours if args.voms_hours is None else args.voms_hours
            acseq = issuing.make_voms_acseq(voms, signer.cert, args.voms_fqan, now, hours, args.vo)
    except (CredentialsError, ValueError) as e:
        return _fail(str(e))
    proxy = issuing.make_proxy(signer, now, args.hours, args.limited, args.legacy, args.path_length,
                               issuing.new_key(args.key_type), voms_acseq=acseq)
    write_private(args.out, proxy.pem())
    sys.stderr.write(f"proxy {dn_text(proxy.cert.subject)} valid until "
                     f"{proxy.cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z\n")
    return _done(args.out)


def run_revoke(args) -> int:
    try:
        ca = CertificateAuthority.open(args.dir)
        subject = ca.revoke(args.cert, _now())
    except (AuthorityError, OSError, ValueError, IndexError) as e:
        return _fail(str(e))
    sys.stderr.write(f"revoked {subject}\n")
    return _done(ca.grid_dir / f"{subject_hash(ca.credentials.cert)}.r0")


def run_crl(args) -> int:
    try:
        ca = CertificateAuthority.open(args.dir)
    except AuthorityError as e:
        return _fail(str(e))
    return _done(ca.write_crl(_now(), args.days))



def run_verify(args) -> int:
    try:
        cert = x509.load_pem_x509_certificates(Path(args.file).read_bytes())
        voms = VomsTrust.load(args.vomsdir) if args.vomsdir else None
        verifier = PeerVerifier(TrustStore(args.cadir, args.require_crl), voms)
    except (OSError, ValueError, CredentialsError) as e:
        return _fail(str(e))
    try:
        identity = verifier.verify(cert[0], cert[1:], _now(), args.server_name)
    except PeerRefusedError as e:
        return _fail(f"refused: {e.reason}: {e.detail}")
    sys.stdout.write(identity.display + (" (limited proxy)" if identity.limited else "") + "\n")
    for fqan in identity.fqans:
        sys.stdout.write(f"fqan {fqan}\n")
    return 0
