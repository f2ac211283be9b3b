"""Purge, dump and load documents (lbtx.protocols.legacy_query.maintenance_xml,
formats.md §7.11): both directions round trip; malformed and hostile documents
raise RequestError only."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from lbtx.protocols.legacy_query import maintenance_xml as mx
from lbtx.protocols.legacy_query.errors import RequestError
from lbtx.schema import JobState

JOB = "https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw"


def test_the_example_of_the_spec():
    doc = (f"<edg_wll_PurgeRequest><jobs><jobId>{JOB}</jobId></jobs>"
           "<timeout><Undefined>-1</Undefined><Submitted>-1</Submitted><Aborted>604800</Aborted>"
           "<Purged>-1</Purged></timeout><target_runtime>3600</target_runtime>"
           "<flags>really_purge+list_jobs+server_dump</flags></edg_wll_PurgeRequest>")
    req = mx.parse_purge(doc.encode())
    assert req.jobs == (JOB,) and req.timeouts[JobState.ABORTED] == 604800
    assert req.target_runtime == 3600
    assert req.flags == (mx.PurgeFlag.REALLY_PURGE | mx.PurgeFlag.LIST_JOBS
                         | mx.PurgeFlag.SERVER_DUMP)
    dump = mx.parse_dump(b"<edg_wll_DumpRequest><from>EDG_WLL_DUMP_LAST_END</from>"
                         b"<to>EDG_WLL_DUMP_NOW</to></edg_wll_DumpRequest>")
    assert (dump.from_, dump.to) == (mx.DUMP_LAST_END, mx.DUMP_NOW)


def test_round_trips():
    req = mx.PurgeRequest((JOB,), {JobState.CLEARED: 10, JobState.DONE: -2}, 5,
                          mx.PurgeFlag.LIST_JOBS | mx.PurgeFlag.BACKGROUND)
    back = mx.parse_purge(mx.write_purge(req).encode())
    assert back.jobs == req.jobs and back.flags == req.flags and back.target_runtime == 5
    assert back.timeouts[JobState.CLEARED] == 10 and back.timeouts[JobState.DONE] == -2
    assert back.timeouts[JobState.RUNNING] == -1
    for d in (mx.DumpRequest(), mx.DumpRequest(100, 200), mx.DumpRequest(mx.DUMP_LAST_START, 7)):
        assert mx.parse_dump(mx.write_dump(d).encode()) == d
    load = mx.LoadRequest("/var/lib/lb/dump/dump_20240301000000.000000 & <x>")
    assert mx.parse_load(mx.write_load(load).encode()) == load
    result = mx.PurgeResult((JOB, JOB + "x"), "/tmp/p & q")
    assert mx.read_purge_result(mx.purge_result(result).encode()) == (None, result)
    assert mx.read_purge_result(mx.purge_result(mx.PurgeResult(), (1, "no")).encode()) == \
        ((1, "no"), mx.PurgeResult())
    dump = mx.DumpResult("/d", 1, 2)
    assert mx.read_dump_result(mx.dump_result(dump).encode()) == (None, dump)
    assert mx.read_dump_result(mx.load_result(mx.DumpResult(None, 3, 4)).encode(),
                               "edg_wll_LoadResult") == (None, mx.DumpResult(None, 3, 4))


@pytest.mark.parametrize("parser, doc", [
    (mx.parse_purge, b"<edg_wll_PurgeRequest><flags>fly</flags></edg_wll_PurgeRequest>"),
    (mx.parse_purge, b"<edg_wll_PurgeRequest><jobs><jobId>nope</jobId></jobs></edg_wll_PurgeRequest>"),
    (mx.parse_purge, b"<edg_wll_PurgeRequest><timeout><Flying>1</Flying></timeout></edg_wll_PurgeRequest>"),
    (mx.parse_purge, b"<edg_wll_PurgeRequest><timeout><Done>x</Done></timeout></edg_wll_PurgeRequest>"),
    (mx.parse_purge, b"<edg_wll_PurgeRequest><timeout><Done>1</Done><Done>2</Done></timeout>"
                     b"</edg_wll_PurgeRequest>"),
    (mx.parse_purge, b"<edg_wll_PurgeRequest><target_runtime>-5</target_runtime></edg_wll_PurgeRequest>"),
    (mx.parse_purge, b"<edg_wll_PurgeRequest><flags/><flags/></edg_wll_PurgeRequest>"),
    (mx.parse_purge, b"<edg_wll_DumpRequest/>"),
    (mx.parse_purge, b"<edg_wll_PurgeRequest a='1'/>"),
    (mx.parse_dump, b"<edg_wll_DumpRequest><from>1</from></edg_wll_DumpRequest>"),
    (mx.parse_dump, b"<edg_wll_DumpRequest><from>-9</from><to>1</to></edg_wll_DumpRequest>"),
    (mx.parse_dump, b"<edg_wll_DumpRequest><from>9" + b"9" * 30 + b"</from><to>1</to></edg_wll_DumpRequest>"),
    (mx.parse_load, b"<edg_wll_LoadRequest><server_file></server_file></edg_wll_LoadRequest>"),
    (mx.parse_load, b"<edg_wll_LoadRequest><server_file><x/></server_file></edg_wll_LoadRequest>"),
    (mx.parse_load, b'<!DOCTYPE x [<!ENTITY e "aaaa">]><edg_wll_LoadRequest><server_file>&e;'
                    b'</server_file></edg_wll_LoadRequest>'),
    (mx.parse_load, b"<edg_wll_LoadRequest><server_file>/tmp/x"),
])
def test_malformed(parser, doc):
    with pytest.raises(RequestError):
        parser(doc)


def test_too_many_jobs():
    doc = ("<edg_wll_PurgeRequest><jobs>" + f"<jobId>{JOB}</jobId>" * (mx.MAX_PURGE_JOBS + 1)
           + "</jobs></edg_wll_PurgeRequest>").encode()
    with pytest.raises(RequestError):
        mx.parse_purge(doc)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300), st.sampled_from([mx.parse_purge, mx.parse_dump, mx.parse_load]))
def test_random_bytes(data, parser):
    try:
        parser(b"<edg_wll_PurgeRequest>" + data)
    except RequestError:
        pass
