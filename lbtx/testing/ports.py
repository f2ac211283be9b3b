"""Local ports for tests and benchmarks that start real daemons on 127.0.0.1.

A port found free can be taken by someone else before the daemon binds it; the
callers start daemons right after asking and retry nothing, which is good enough
on a test machine.
"""

from __future__ import annotations

import socket

__all__ = ["connects", "free_port", "free_port_pair", "free_ports"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count: int) -> int:
    """A port P with P .. P+count-1 free on 127.0.0.1 (``lbtx serve --base-port``
    takes three: queries, store, logger)."""
    for _ in range(200):
        port = free_port()
        if port + count - 1 > 65535:
            continue
        try:
            for offset in range(1, count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no {count} consecutive free ports")


def free_port_pair() -> int:
    """A port P with P and P+1 free on 127.0.0.1 (an lb-server's queries and store)."""
    return free_ports(2)


def connects(address) -> bool:
    """Whether a TCP port of 127.0.0.1 (an int) or a Unix socket path accepts now."""
    try:
        if isinstance(address, int):
            socket.create_connection(("127.0.0.1", address), timeout=0.5).close()
        else:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(0.5)
                s.connect(str(address))
        return True
    except OSError:
        return False
