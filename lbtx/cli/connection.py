"""Blocking client connections of the commands: Unix socket, TCP, or TLS.

Every command that talks to a server (queries, intake, notifications) opens its
connection here, so that secure transport is one decision for all of them:

* a Unix socket address (``unix:PATH``) is used as it is (the server learns the
  Unix user from the socket);
* a TCP address gets TLS with mutual X.509 authentication (docs/security.md)
  when ``LBTX_TLS`` says ``1``/``yes``/``on``, or, with ``LBTX_TLS`` unset, when
  ``X509_USER_PROXY`` or ``X509_USER_CERT`` names the caller's credentials;
  ``LBTX_TLS=0`` forces plain TCP (a local ``lbtx serve``). Credentials are
  ``$X509_USER_PROXY``, else ``$X509_USER_CERT``/``$X509_USER_KEY``, else
  ``/tmp/x509up_u<uid>``; the CAs those of ``$X509_CERT_DIR`` (else
  ``/etc/grid-security/certificates``), with their CRLs. The server must prove
  a certificate for the host name the command connects to (proxy chains and
  the checks of :mod:`lbtx.gss` apply as for the daemons).

:func:`connect` returns a socket-like object (``settimeout``, ``send``, ``recv``,
``sendall``, ``close``); failures are ``OSError``: ``TimeoutError`` past the
deadline, ``ConnectionError`` for a refused TLS peer, with the reason.
"""

from __future__ import annotations

import errno
import io
import os
import select
import socket
import time

from lbtx.cli.environment import Address

__all__ = ["connect", "tls_wanted", "TLSSocket"]

_TRUE = {"1", "yes", "on", "true"}
_FALSE = {"0", "no", "off", "false"}


def tls_wanted(env=None) -> bool:
    """Whether TCP connections of the commands use TLS (see the module docstring)."""
    env = os.environ if env is None else env
    choice = (env.get("LBTX_TLS") or "").strip().lower()
    if choice in _TRUE:
        return True
    if choice in _FALSE:
        return False
    if choice:
        raise ValueError(f"LBTX_TLS takes 1 or 0, not {choice!r}")
    return bool(env.get("X509_USER_PROXY") or env.get("X509_USER_CERT"))


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    return left


def connect(address: Address, deadline: float, *, tls: bool | None = None):
    """A connected socket to ``address`` (see the module docstring)."""
    if address.path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(address.path)
        except BaseException:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((address.host, address.port), timeout=_remaining(deadline))
    if not (tls_wanted() if tls is None else tls):
        return sock
    try:
        return TLSSocket.handshake(sock, address.host, deadline)
    except BaseException:
        sock.close()
        raise


class _Clock:
    @staticmethod
    def seconds() -> float:
        return time.time()


class TLSSocket:
    """A finished, verified TLS client connection over a blocking-looking socket."""

    def __init__(self, sock: socket.socket, connection, identity):
        self._sock = sock
        self._conn = connection
        self.peer_identity = identity
        self._timeout: float | None = None

    @classmethod
    def handshake(cls, sock: socket.socket, host: str, deadline: float) -> "TLSSocket":
        from OpenSSL import SSL

        from lbtx.gss.endpoints import default_cadir, default_client_credentials, tls_transport
        from lbtx.gss.errors import CredentialsError, PeerRefusedError
        cert, key = default_client_credentials()
        try:
            transport = tls_transport(_Clock(), cert, key, default_cadir())
        except (CredentialsError, ValueError, OSError) as e:
            raise ConnectionError(errno.EACCES, f"TLS credentials: {e}") from None
        conn = SSL.Connection(transport._context(server=False), sock)
        conn.set_tlsext_host_name(host.encode("idna"))
        conn.set_connect_state()
        sock.setblocking(False)
        out = cls(sock, conn, None)
        try:
            out._retry(conn.do_handshake, deadline)
        except SSL.Error as e:
            raise ConnectionError(errno.ECONNREFUSED, f"TLS handshake with {host} failed: "
                                                      f"{_ssl_reason(e)}") from None
        try:
            out.peer_identity = transport.verify_connection(conn, host)
        except PeerRefusedError as e:
            raise ConnectionError(errno.ECONNREFUSED, f"server {host} refused: {e}") from None
        return out

    def _retry(self, operation, deadline: float | None, *args):
        from OpenSSL import SSL
        while True:
            try:
                return operation(*args)
            except SSL.WantReadError:
                self._wait(True, deadline)
            except SSL.WantWriteError:
                self._wait(False, deadline)

    def _wait(self, reading: bool, deadline: float | None) -> None:
        if deadline is not None:
            timeout = _remaining(deadline)
        else:
            timeout = self._timeout
        fd = self._sock.fileno()
        ready = select.select([fd] if reading else [], [] if reading else [fd], [], timeout)
        if not any(ready):
            raise TimeoutError("timed out")

    # --- the socket-like surface ---------------------------------------------------------
    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def send(self, data) -> int:
        from OpenSSL import SSL
        try:
            return self._retry(self._conn.send, None, bytes(data[:16384]))
        except SSL.Error as e:
            raise ConnectionError(errno.EPIPE, f"TLS: {_ssl_reason(e)}") from None

    def sendall(self, data) -> None:
        view = memoryview(data)
        while view:
            view = view[self.send(view):]

    def recv(self, size: int) -> bytes:
        from OpenSSL import SSL
        try:
            return self._retry(self._conn.recv, None, size)
        except SSL.ZeroReturnError:
            return b""
        except SSL.SysCallError as e:
            if e.args and e.args[0] == -1:  # the peer closed without close_notify
                return b""
            raise ConnectionError(errno.ECONNRESET, f"TLS: {e}") from None
        except SSL.Error as e:
            raise ConnectionError(errno.ECONNRESET, f"TLS: {_ssl_reason(e)}") from None

    def fileno(self) -> int:
        return self._sock.fileno()

    def makefile(self, mode: str = "rb", buffering: int = -1):
        """A buffered reader of the connection (for ``http.client``)."""
        if "w" in mode:
            raise ValueError("a TLS connection's file is read only")
        return io.BufferedReader(_Reader(self), buffer_size=64 * 1024)

    def close(self) -> None:
        try:
            self._conn.shutdown()
        except Exception:
            pass
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Reader(io.RawIOBase):
    def __init__(self, tls: TLSSocket):
        self._tls = tls

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._tls.recv(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _ssl_reason(error) -> str:
    parts = [str(p[2]) for p in (error.args[0] if error.args and isinstance(error.args[0], list)
                                 else ()) if len(p) > 2]
    return "; ".join(parts) or str(error) or type(error).__name__
