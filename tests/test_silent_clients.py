"""A client that connects and says nothing is dropped after the timeout, on every
port of the real daemons (issue 6): the server's store and query ports, plain and
TLS (``lbtls:``, dropped by the handshake deadline), and the logger's Unix socket
and TCP port. Each drop comes within the configured timeout plus a margin, and
the daemons keep serving others meanwhile."""

from __future__ import annotations

import socket
import time

import pytest

from ca_support import make_ca, tls_listen
from daemon_support import free_port, free_port_pair, start_daemon, stop_daemon

IDLE = 1.5        # --idle-timeout of the daemons, seconds
MARGIN = 6.0      # scheduling slack on a loaded machine


def _dropped_after(address) -> float:
    """Seconds until the daemon closes a connection on which nothing is sent."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(IDLE + MARGIN + 5)
        s.connect(address)
        start = time.monotonic()
        try:
            while s.recv(4096):
                pass          # whatever it sends (a greeting), it must then close
        except ConnectionResetError:
            pass
        return time.monotonic() - start


@pytest.fixture(scope="module")
def daemons(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("silent")
    pki = make_ca(tmp / "ca")
    port, tls_port, logger_port = free_port_pair(), free_port(), free_port()
    server = start_daemon("lb-server", [
        "--data-dir", str(tmp / "server"), "--idle-timeout", str(IDLE),
        "--listen-query", f"tcp:{port}:interface=127.0.0.1",
        "--listen-store", f"tcp:{port + 1}:interface=127.0.0.1",
        "--listen-store", tls_listen(pki, tls_port, handshake_timeout=IDLE)], tmp,
        [port + 1, port], tag="server")
    sock = tmp / "logger.sock"
    logger = start_daemon("lb-logger", [
        "--data-dir", str(tmp / "logger"), "--socket", str(sock), "--idle-timeout", str(IDLE),
        "--listen", f"tcp:{logger_port}:interface=127.0.0.1", "--no-interlogger"],
        tmp, sock, tag="logger")
    yield {"query": ("127.0.0.1", port), "store": ("127.0.0.1", port + 1),
           "store-tls": ("127.0.0.1", tls_port), "logger-unix": str(sock),
           "logger-tcp": ("127.0.0.1", logger_port)}
    stop_daemon(logger)
    stop_daemon(server)


@pytest.mark.parametrize("port", ["query", "store", "store-tls", "logger-unix", "logger-tcp"])
def test_silent_client_is_dropped(daemons, port):
    took = _dropped_after(daemons[port])
    assert took < IDLE + MARGIN, f"{port}: still open after {took:.1f} s"
    assert took >= IDLE * 0.5, f"{port}: dropped after {took:.1f} s, before any timeout"


def test_others_are_served_while_a_silent_client_waits(daemons):
    host, port = daemons["query"]
    with socket.create_connection(daemons["store"]):        # a silent store client
        with socket.create_connection((host, port), timeout=5) as s:
            s.sendall(b"GET /api/whoami HTTP/1.1\r\nHost: x\r\nUser-Agent: t/1\r\n"
                      b"Accept: application/json\r\n\r\n")
            assert s.recv(4096).startswith(b"HTTP/1.1 ")
