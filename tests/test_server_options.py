"""``twistd lb-server`` options: defaults, repeatable listeners, validation."""

from __future__ import annotations

import os

import pytest
from twisted.python import usage

from lbtx.server.options import ServerOptions


def parse(*args):
    o = ServerOptions()
    o.parseOptions(list(args))
    return o


def test_defaults_follow_the_original():
    """Queries on 9000, intake on 9001, SQLite under ./lbtx-data."""
    o = parse()
    assert o["listen-query"] == ["tcp:9000"]
    assert o["listen-store"] == ["tcp:9001"]
    assert o["db"] == "sqlite:///" + os.path.abspath("lbtx-data/lbtx.sqlite")
    assert not o["noauth"] and o["superuser"] == []
    assert o["lock-slots"] == 1024 and o["max-frame"] == 16 * 1024 * 1024
    assert o["status-cache"] == 8


def test_repeatable_listeners_and_superusers():
    o = parse("--listen-query", "tcp:0:interface=127.0.0.1", "--listen-query", "unix:/tmp/q.sock",
              "--listen-store", "tcp:0", "--superuser", "/CN=a", "-R", "/CN=b", "--noauth")
    assert o["listen-query"] == ["tcp:0:interface=127.0.0.1", "unix:/tmp/q.sock"]
    assert o["listen-store"] == ["tcp:0"]
    assert o["superuser"] == ["/CN=a", "/CN=b"] and o["noauth"]


def test_status_cache_sizes_the_store_cache(tmp_path):
    from lbtx.server import tap
    from lbtx.server.store.status_cache import DEFAULT_MAX_BYTES, statuses
    try:
        for mib in (0, 3):
            o = parse("--data-dir", str(tmp_path), "--status-cache", str(mib))
            tap.makeService(o)
            assert statuses.max_bytes == mib * 1024 * 1024
    finally:
        statuses.resize(DEFAULT_MAX_BYTES)


def test_data_dir_moves_the_default_database(tmp_path):
    o = parse("--data-dir", str(tmp_path))
    assert o["db"] == f"sqlite:///{tmp_path}/lbtx.sqlite"


def test_postgres_url_accepted():
    assert parse("--db", "postgresql://u@localhost/lb")["db"] == "postgresql://u@localhost/lb"


@pytest.mark.parametrize("args", [
    ["--db", "mysql://x"],
    ["--lock-slots", "0"],
    ["--lock-slots", "many"],
    ["--status-cache", "-1"],
    ["--status-cache", "1.5"],
    ["--status-cache", "lots"],
    ["--max-frame", "-1"],
    ["--idle-timeout", "0"],
    ["--request-timeout", "soon"],
    ["--superuser", " "],
    ["--listen-query", "tcp:9000", "--listen-store", "tcp:9000"],
    ["--no-such-option"],
])
def test_bad_options_are_usage_errors(args):
    with pytest.raises(usage.UsageError):
        parse(*args)
