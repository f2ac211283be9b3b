"""The port helpers the process tests and the benchmarks share (lbtx.testing.ports)."""

from __future__ import annotations

import socket

from lbtx.testing.ports import connects, free_port_pair, free_ports


def test_free_ports_are_consecutive_and_bindable():
    for count in (1, 2, 3):
        port = free_ports(count)
        held = []
        try:
            for offset in range(count):
                s = socket.socket()
                held.append(s)
                s.bind(("127.0.0.1", port + offset))
        finally:
            for s in held:
                s.close()
    port = free_port_pair()
    with socket.socket() as a, socket.socket() as b:
        a.bind(("127.0.0.1", port))
        b.bind(("127.0.0.1", port + 1))


def test_connects_tells_listening_from_closed(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert connects(port)
    assert not connects(port)
    path = tmp_path / "x.sock"
    assert not connects(path)
    with socket.socket(socket.AF_UNIX) as u:
        u.bind(str(path))
        u.listen()
        assert connects(path)
