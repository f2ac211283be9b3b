"""The store's decoded-status cache (lbtx.server.store.status_cache): bounds, copies,
threads, and, on a real SQLite database fed every scenario in small batches, that
what it hands out is exactly what decoding the stored text gives."""

from __future__ import annotations

import json
import threading

import pytest

from lbtx.schema import JobState
from lbtx.server.store import batch
from lbtx.server.store.sql import SQLITE, run_sync
from lbtx.server.store.status_cache import StatusCache, statuses
from lbtx.status import JobStatus, from_json
from lbtx.timeval import Timeval

from store_support import parse, replayed, workload
from test_store_batch import cur  # noqa: F401 - the in-memory SQLite fixture

NOW = Timeval(1_800_000_000, 0)


def status(**values) -> JobStatus:
    return JobStatus(**values)


def test_a_lookup_hands_out_an_independent_copy():
    cache = StatusCache()
    original = status(possible_destinations=["a"], internal={"rows": [[1, None, None, None]]})
    cache.put("text", original)
    original.possible_destinations.append("changed after put")
    first = cache.get("text")
    first.possible_destinations.append("changed by a reader")
    first.internal["rows"].append([2, None, None, None])
    first.state = JobState.RUNNING
    second = cache.get("text")
    assert second.possible_destinations == ["a"] and second.internal == {
        "rows": [[1, None, None, None]]}
    assert second.state == JobState.UNDEFINED and second is not first
    assert (cache.hits, cache.misses) == (2, 0)
    assert cache.get("other") is None and cache.misses == 1


def test_least_recently_used_texts_go_first_and_large_ones_are_not_kept():
    cache = StatusCache(max_bytes=80)
    for key in ("a" * 10, "b" * 10, "c" * 10):  # the largest kept is 80 // 8 = 10
        cache.put(key, status())
    cache.get("a" * 10)  # now the most recently used
    for key in ("d" * 10, "e" * 10, "f" * 10, "g" * 10, "h" * 10, "i" * 10):
        cache.put(key, status())
    assert cache.size <= 80 and len(cache) == 8
    assert cache.get("b" * 10) is None and cache.get("a" * 10) is not None
    cache.put("x" * 11, status())
    assert cache.get("x" * 11) is None
    cache.put("a" * 10, status(state=JobState.RUNNING))  # present already: kept as it was
    assert cache.get("a" * 10).state == JobState.UNDEFINED and len(cache) == 8
    cache.clear()
    assert len(cache) == 0 and cache.size == 0


def test_resizing_drops_what_no_longer_fits():
    cache = StatusCache(max_bytes=800)
    for i in range(10):
        cache.put(f"{i:02d}".ljust(80, "."), status())
    assert len(cache) == 10
    cache.resize(240)
    assert len(cache) == 3 and cache.size == 240
    assert cache.get("09".ljust(80, ".")) is not None and cache.get("06".ljust(80, ".")) is None
    cache.resize(0)
    assert len(cache) == 0
    cache.put("t", status())
    assert len(cache) == 0


def test_what_a_read_puts_never_pushes_anything_out():
    cache = StatusCache(max_bytes=40)
    cache.put("a" * 5, status(), evict=False)  # room: kept
    for key in ("b" * 5, "c" * 5, "d" * 5, "e" * 5, "f" * 5, "g" * 5, "h" * 5):
        cache.put(key, status())
    assert cache.size == 40 and cache.get("a" * 5) is not None
    cache.put("x" * 5, status(), evict=False)  # full: not kept, nothing dropped
    assert cache.get("x" * 5) is None and len(cache) == 8
    cache.put("y" * 5, status())  # a writer makes room
    assert cache.get("y" * 5) is not None and cache.get("b" * 5) is None


def test_off_when_the_bound_is_zero():
    cache = StatusCache(max_bytes=0)
    cache.put("", status())
    cache.put("t", status())
    assert len(cache) == 0 and cache.get("t") is None


def test_threads_keep_the_bound():
    cache = StatusCache(max_bytes=4000)
    errors = []

    def work(n):
        try:
            for i in range(2000):
                key = f"{n}-{i % 300:04d}".ljust(40, ".")
                cache.put(key, status())
                got = cache.get(key)
                assert got is None or got.state == JobState.UNDEFINED
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and cache.size <= 4000
    assert cache.size == sum(len(k) for k in cache._entries)


def test_the_store_reads_back_what_it_wrote_without_decoding_and_agrees_with_replay(cur):  # noqa: F811
    """Every scenario, interleaved and in batches of 3, through the real batch work on
    SQLite: later batches find their jobs' statuses in the cache, every cached entry
    equals a fresh decode of the stored text, and the statuses equal lbtx replay."""
    families = workload(1)
    lines = [line for group in zip(*[iter(f) for f in families]) for line in group]
    lines += [line for f in families for line in f[min(map(len, families)):]]
    statuses.clear()
    hits = statuses.hits
    for start in range(0, len(lines), 3):
        run_sync(cur, batch.accept_batch(SQLITE, [parse(x) for x in lines[start:start + 3]],
                                         None, NOW))
    assert statuses.hits - hits > len(lines) // 3
    cur.execute("SELECT jobid, status FROM jobs")
    stored = cur.fetchall()
    assert stored
    cached = 0
    for jobid, text in stored:
        fresh = from_json(json.loads(text))
        hit = statuses.get(text)
        if hit is not None:
            assert hit == fresh, jobid
            cached += 1
    assert cached == len(stored)
    want = {str(r.job_id): r.status for r in replayed(lines).jobs()}
    got = {jobid: from_json(json.loads(text)) for jobid, text in stored}
    assert got.keys() == want.keys()
    for jobid, st in got.items():
        assert st == want[jobid], jobid
