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


def test_an_xdist_worker_picks_from_its_own_window_below_the_ephemeral_range(monkeypatch):
    """Worker gw1 of 3 hands out ports of its window only, in turn (a port picked
    is not picked again soon), skipping one that is taken; outside xdist the
    kernel picks."""
    from lbtx.testing import ports

    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    first, size = ports._window()
    assert (first, size) == (ports.WINDOWS_LOW + 4000, 4000)
    assert ports.WINDOWS_HIGH <= 32768   # below Linux's ephemeral range
    picked = [free_ports(count) for count in (1, 2, 3) * 20]
    spans = [(p, p + c - 1) for p, c in zip(picked, (1, 2, 3) * 20)]
    assert all(first <= lo and hi < first + size for lo, hi in spans)
    covered = [port for lo, hi in spans for port in range(lo, hi + 1)]
    assert len(covered) == len(set(covered)) == 120   # none handed out twice
    monkeypatch.setattr(ports, "_next_offset", 7)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 7))
        assert free_ports(1) == first + 8
    monkeypatch.delenv("PYTEST_XDIST_WORKER")
    assert ports._window() is None
    assert free_port_pair() >= 1024
