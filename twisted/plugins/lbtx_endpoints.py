"""Endpoint parser plugins: C{lbtls:} (TLS with X.509 and proxies) and C{lbunix:} (peer credentials).

See L{lbtx.gss.endpoints} for the syntax.
"""

from lbtx.gss.endpoints import TLSClientParser, TLSServerParser, UnixClientParser, UnixServerParser

lbtls_server = TLSServerParser()
lbtls_client = TLSClientParser()
lbunix_server = UnixServerParser()
lbunix_client = UnixClientParser()
