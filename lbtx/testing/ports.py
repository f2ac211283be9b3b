"""Local ports for tests and benchmarks that start real daemons on 127.0.0.1.

A port found free can be taken by someone else before the daemon binds it. In a
pytest-xdist worker (``PYTEST_XDIST_WORKER``) ports come from a window of their own
below the kernel's ephemeral range (32768-60999 on Linux), one window per worker,
each handed out in turn: another worker never picks them, and neither does the
kernel when anyone binds port 0 or connects. (A test run picked its store port
from the kernel while another worker's daemon held it: its readiness check reached
that daemon, and the test failed on a refused connection later.) Elsewhere, the
kernel picks.
"""

from __future__ import annotations

import os
import random
import socket

__all__ = ["connects", "free_port", "free_port_pair", "free_ports"]

#: The ports the workers' windows share: below the ephemeral range.
WINDOWS_LOW, WINDOWS_HIGH = 20000, 32000

_next_offset = random.randrange(WINDOWS_HIGH - WINDOWS_LOW)  # two runs side by side differ


def _window() -> tuple[int, int] | None:
    """``(first port, size)`` of this worker's window, None outside pytest-xdist."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if not (worker.startswith("gw") and worker[2:].isdigit()):
        return None
    try:
        workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    except ValueError:
        workers = 1
    size = (WINDOWS_HIGH - WINDOWS_LOW) // workers
    return WINDOWS_LOW + (int(worker[2:]) % workers) * size, size


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    return free_ports(1)


def free_ports(count: int) -> int:
    """A port P with P .. P+count-1 free on 127.0.0.1 (``lbtx serve --base-port``
    takes three: queries, store, logger)."""
    global _next_offset
    window = _window()
    if window is not None:
        first, size = window
        for _ in range(size // count):
            offset = _next_offset % (size - count + 1)
            _next_offset = offset + count
            port = first + offset
            if all(_bindable(port + i) for i in range(count)):
                return port
    for _ in range(200):   # the kernel's choice
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port + count - 1 <= 65535 and all(_bindable(port + i) for i in range(1, count)):
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
