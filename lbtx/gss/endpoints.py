"""Endpoint descriptions for the secure transports (registered in twisted/plugins/lbtx_endpoints.py).

Servers::

    lbtls:9001:cert=/etc/grid-security/hostcert.pem:key=/etc/grid-security/hostkey.pem:cadir=/etc/grid-security/certificates
    lbtls:9001:interface=127.0.0.1:crl=require:handshake_timeout=10
    lbunix:/run/lbtx/logger.sock:mode=600
    lbkrb5:9002:keytab=/etc/krb5.keytab:service=lbtx

Clients::

    lbtls:host=lb.example.org:port=9000:cert=/tmp/x509up_u1000:cadir=/etc/grid-security/certificates
    lbtls:lb.example.org:9000:servername=lb.example.org:timeout=10
    lbunix:path=/run/lbtx/logger.sock:user=glite
    lbkrb5:host=lb.example.org:port=9002:ccache=/tmp/krb5cc_1000:service=lbtx

TLS keywords: C{cert} (PEM certificate with its chain, or a proxy file), C{key}
(defaults to C{cert}), C{cadir} (grid CA directory), C{crl} (C{optional}: check
the CRLs present, the default; C{require}: refuse a CA without CRL),
C{handshake_timeout} (seconds, default L{HANDSHAKE_TIMEOUT}), C{vomsdir} (VOMS server
certificates whose attribute certificates are believed, default C{X509_VOMS_DIR};
without one the FQANs of a valid proxy chain are taken as asserted). A server takes the
C{tcp:} keywords too (C{interface}, C{backlog}); a client takes C{servername} (the
name the server must prove, default C{host}), C{timeout} (connect timeout in
seconds) and C{bindAddress}. Without C{cert}, C{key} and C{cadir} the grid
defaults apply: C{X509_USER_PROXY}, C{X509_USER_CERT}/C{X509_USER_KEY},
C{/tmp/x509up_u<uid>} for clients, C{/etc/grid-security/host{cert,key}.pem} for
servers, C{X509_CERT_DIR} or C{/etc/grid-security/certificates}.
"""

from __future__ import annotations

import os

from twisted.internet.endpoints import (
    HostnameEndpoint,
    UNIXClientEndpoint,
    UNIXServerEndpoint,
    quoteStringArgument,
    serverFromString,
)
from twisted.internet.interfaces import (
    IStreamClientEndpointStringParserWithReactor,
    IStreamServerEndpointStringParser,
)
from twisted.plugin import IPlugin
from zope.interface import implementer

from lbtx.gss.credentials import load_credentials
from lbtx.gss.tls import HANDSHAKE_TIMEOUT, TLSTransport
from lbtx.gss.trust import TrustStore
from lbtx.gss.unix import UnixTransport
from lbtx.gss.voms import VomsTrust

GRID_SECURITY = "/etc/grid-security"
_CRL_MODES = {"optional": False, "require": True}


def tls_transport(reactor, cert: str, key: str | None, cadir: str, crl: str = "optional",
                  handshake_timeout: float = HANDSHAKE_TIMEOUT, vomsdir: str | None = None) -> TLSTransport:
    """A L{TLSTransport} from file names; raises L{lbtx.gss.errors.CredentialsError} or C{ValueError}."""
    if crl not in _CRL_MODES:
        raise ValueError(f"crl= takes optional or require, not {crl!r}")
    voms = VomsTrust.load(vomsdir) if vomsdir else None
    return TLSTransport(load_credentials(cert, key), TrustStore(cadir, _CRL_MODES[crl]),
                        reactor, float(handshake_timeout), voms)


def default_cadir() -> str:
    """The CA directory: C{$X509_CERT_DIR} or the grid default."""
    return os.environ.get("X509_CERT_DIR") or os.path.join(GRID_SECURITY, "certificates")


def default_client_credentials() -> tuple[str, str | None]:
    """(certificate, key) files of a client: the proxy, else the user certificate."""
    if os.environ.get("X509_USER_PROXY"):
        return os.environ["X509_USER_PROXY"], None
    if os.environ.get("X509_USER_CERT"):
        return os.environ["X509_USER_CERT"], os.environ.get("X509_USER_KEY")
    return f"/tmp/x509up_u{os.getuid()}", None


def _tls_keywords(kwargs: dict, server: bool) -> dict:
    if server:
        default_key = None if "cert" in kwargs else os.path.join(GRID_SECURITY, "hostkey.pem")
        cert = kwargs.pop("cert", os.path.join(GRID_SECURITY, "hostcert.pem"))
        key = kwargs.pop("key", default_key)
    elif "cert" in kwargs:
        cert, key = kwargs.pop("cert"), kwargs.pop("key", None)
    else:
        cert, key = default_client_credentials()
        key = kwargs.pop("key", key)
    return {
        "cert": cert,
        "key": key,
        "cadir": kwargs.pop("cadir", None) or default_cadir(),
        "crl": kwargs.pop("crl", "optional"),
        "handshake_timeout": float(kwargs.pop("handshake_timeout", HANDSHAKE_TIMEOUT)),
        "vomsdir": kwargs.pop("vomsdir", None) or os.environ.get("X509_VOMS_DIR") or None,
    }


@implementer(IPlugin, IStreamServerEndpointStringParser)
class TLSServerParser:
    """C{lbtls:PORT:...}: a TCP server endpoint behind L{TLSTransport}."""

    prefix = "lbtls"

    def parseStreamServer(self, reactor, *args, **kwargs):
        """An authenticating TLS server endpoint; the other arguments go to C{tcp:}."""
        options = _tls_keywords(kwargs, server=True)
        transport = tls_transport(reactor, **options)
        return transport.server_endpoint(serverFromString(reactor, _tcp_description(args, kwargs)))


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class TLSClientParser:
    """C{lbtls:host=HOST:port=PORT:...}: a TCP client endpoint behind L{TLSTransport}."""

    prefix = "lbtls"

    def parseStreamClient(self, reactor, *args, **kwargs):
        """An authenticating TLS client endpoint that checks the server's name."""
        options = _tls_keywords(kwargs, server=False)
        positional = list(args)
        host = kwargs.pop("host", None) or (positional.pop(0) if positional else None)
        port = kwargs.pop("port", None) or (positional.pop(0) if positional else None)
        if host is None or port is None:
            raise ValueError("lbtls client endpoints need host= and port=")
        server_name = kwargs.pop("servername", host)
        timeout = float(kwargs.pop("timeout", 30))
        bind = kwargs.pop("bindAddress", None)
        if positional or kwargs:
            raise ValueError(f"unknown lbtls client arguments: {positional or sorted(kwargs)}")
        inner = HostnameEndpoint(reactor, host, int(port), timeout=timeout,
                                 bindAddress=(bind, 0) if bind else None)
        return tls_transport(reactor, **options).client_endpoint(inner, server_name)


@implementer(IPlugin, IStreamServerEndpointStringParser)
class UnixServerParser:
    """C{lbunix:PATH[:mode=600][:backlog=50][:lockfile=1]}: UNIX socket, peers known by SO_PEERCRED."""

    prefix = "lbunix"

    def parseStreamServer(self, reactor, path, mode="666", backlog="50", lockfile="0"):
        """A UNIX server endpoint whose protocols' transports provide L{IPeerIdentity}."""
        inner = UNIXServerEndpoint(reactor, path, int(backlog), int(mode, 8), bool(int(lockfile)))
        return UnixTransport(reactor).server_endpoint(inner)


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class UnixClientParser:
    """C{lbunix:path=PATH[:user=NAME][:timeout=30]}: a UNIX client that knows the server's user."""

    prefix = "lbunix"

    def parseStreamClient(self, reactor, *args, path=None, user=None, timeout="30", checkPID="0"):
        """A UNIX client endpoint; with C{user} the server must run as that user."""
        path = path or (args[0] if args else None)
        if path is None:
            raise ValueError("lbunix client endpoints need path=")
        inner = UNIXClientEndpoint(reactor, path, float(timeout), bool(int(checkPID)))
        return UnixTransport(reactor).client_endpoint(inner, user)


def _tcp_description(args, kwargs) -> str:
    return ":".join(
        ["tcp"]
        + [quoteStringArgument(str(a)) for a in args]
        + [f"{quoteStringArgument(k)}={quoteStringArgument(str(v))}" for k, v in sorted(kwargs.items())]
    )


@implementer(IPlugin, IStreamServerEndpointStringParser)
class KerberosServerParser:
    """C{lbkrb5:PORT[:keytab=FILE][:service=lbtx][:handshake_timeout=S]}: TCP behind Kerberos (GSS-API)."""

    prefix = "lbkrb5"

    def parseStreamServer(self, reactor, *args, **kwargs):
        """A Kerberos-authenticating server endpoint; the other arguments go to C{tcp:}."""
        from lbtx.gss.kerberos import DEFAULT_SERVICE, KerberosTransport

        transport = KerberosTransport(
            reactor, keytab=kwargs.pop("keytab", None), service=kwargs.pop("service", DEFAULT_SERVICE),
            handshake_timeout=float(kwargs.pop("handshake_timeout", HANDSHAKE_TIMEOUT)))
        return transport.server_endpoint(serverFromString(reactor, _tcp_description(args, kwargs)))


@implementer(IPlugin, IStreamClientEndpointStringParserWithReactor)
class KerberosClientParser:
    """C{lbkrb5:host=HOST:port=PORT[:ccache=FILE][:service=lbtx][:servername=HOST][:timeout=S]}."""

    prefix = "lbkrb5"

    def parseStreamClient(self, reactor, *args, host=None, port=None, ccache=None, service=None,
                          servername=None, timeout="30", handshake_timeout=str(HANDSHAKE_TIMEOUT)):
        """A Kerberos client endpoint for the service principal C{service/servername}."""
        from lbtx.gss.kerberos import DEFAULT_SERVICE, KerberosTransport

        positional = list(args)
        host = host or (positional.pop(0) if positional else None)
        port = port or (positional.pop(0) if positional else None)
        if host is None or port is None or positional:
            raise ValueError("lbkrb5 client endpoints need host= and port=")
        transport = KerberosTransport(reactor, ccache=ccache, service=service or DEFAULT_SERVICE,
                                      handshake_timeout=float(handshake_timeout))
        inner = HostnameEndpoint(reactor, host, int(port), timeout=float(timeout))
        return transport.client_endpoint(inner, servername or host)
