"""Endpoint parser plugins: C{lbtls:} (TLS with X.509 and proxies), C{lbunix:} (peer credentials), C{lbkrb5:} (Kerberos).

See L{lbtx.gss.endpoints} for the syntax.
"""

from lbtx.gss.endpoints import (
    KerberosClientParser,
    KerberosServerParser,
    TLSClientParser,
    TLSServerParser,
    UnixClientParser,
    UnixServerParser,
)

lbtls_server = TLSServerParser()
lbtls_client = TLSClientParser()
lbunix_server = UnixServerParser()
lbunix_client = UnixClientParser()
lbkrb5_server = KerberosServerParser()
lbkrb5_client = KerberosClientParser()
