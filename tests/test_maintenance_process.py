"""Purge, dump and load end to end (formats.md §6.8-6.10, cli.md §3.13-3.15): a
real ``twistd lb-server``, the installed ``glite-lb-purge``/``-dump``/``-load``,
``glite-lb-job_status`` for the zombies; rights: the super-user may, another
user may not; a dump loaded back restores the purged jobs' states; malformed
requests and files get clear errors."""

from __future__ import annotations

import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest

from lbtx.cli.environment import Address
from lbtx.cli.store_client import send_events
from lbtx.protocols.box.messages import ResultCode

from cli_support import command_env, run
from test_server_query_process import _start, _stop
from test_server_web import _get

ALICE = "/DC=org/DC=example/CN=Alice Admin"
BOB = "/DC=org/DC=example/CN=Bob User"
SEQ = ("UI={ui:06d}:NS=0000000001:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:"
       "APP=000000:LBS=000000")


def _reg(job, date="20200101120000", jobtype="SIMPLE", nsub=0):
    return (f'DATE={date}.000000 HOST="ui" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="RegJob" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ui=1)}" DG.USER="{ALICE}" DG.REGJOB.JDL="[]" '
            f'DG.REGJOB.NS="ns" DG.REGJOB.PARENT="" DG.REGJOB.JOBTYPE="{jobtype}" '
            f'DG.REGJOB.NSUBJOBS="{nsub}" DG.REGJOB.SEED="seed"')


def _tag(job, date="20200101120100", value="1"):
    return (f'DATE={date}.000000 HOST="ui" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="UserTag" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ui=2)}" DG.USER="{ALICE}" DG.USERTAG.NAME="phase" '
            f'DG.USERTAG.VALUE="{value}"')


def _clear(job, date="20200101130000"):
    return (f'DATE={date}.000000 HOST="ui" PROG=edg-wms LVL=SYSTEM DG.PRIORITY=0 '
            f'DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="Clear" DG.JOBID="{job}" '
            f'DG.SEQCODE="{SEQ.format(ui=3)}" DG.USER="{ALICE}" DG.CLEAR.REASON="USER"')


@pytest.fixture
def servers(tmp_path):
    alice = _start(tmp_path, "alice", tmp_path / "data", ALICE, "--superuser", ALICE,
                   "--server-name", "lb.example.org:9000")
    bob = _start(tmp_path, "bob", tmp_path / "data", BOB, "--server-name", "lb.example.org:9000")
    yield alice, bob, tmp_path
    _stop(alice[0])
    _stop(bob[0])


def _job(n: int) -> str:
    return f"https://lb.example.org:9000/maintenanceJob{n:011d}"


def _store(port: int, lines) -> None:
    results = send_events(Address("127.0.0.1", port), [ln.encode() for ln in lines], timeout=30)
    assert all(r.code in (ResultCode.STORED, ResultCode.DUPLICATE) for r in results), results


def _status(port: int, job: str):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/jobs/{job.rsplit('/', 1)[1]}",
                                    timeout=10) as r:
            return json.load(r)["job"]["status"]
    except urllib.error.HTTPError as e:
        return json.load(e)


def _env(port: int) -> dict:
    return command_env(GLITE_WMS_QUERY_SERVER=f"127.0.0.1:{port}",
                       GLITE_WMS_QUERY_SERVER_OVERRIDE="yes")


def test_purge_dump_load_round_trip(servers):
    (alice, a_query, a_store), (_, b_query, _), tmp = servers
    old = [_job(i) for i in range(6)]
    lines = []
    for job in old:
        lines += [_reg(job), _tag(job), _clear(job)]
    recent = _job(99)
    now = time.strftime("%Y%m%d%H%M%S", time.gmtime())
    lines += [_reg(recent, date=now), _clear(recent, date=now)]
    _store(a_store, lines)
    before = {job: _status(a_query, job) for job in old}
    assert all(s["state"] == "Cleared" for s in before.values())

    # a dump of everything, kept for the load at the end
    r = run("glite-lb-dump", "-m", f"127.0.0.1:{a_query}", "-f", "20000101000000", "-t", "now",
            env=_env(a_query))
    assert r.returncode == 0 and r.stdout.startswith("Dump result:\n"), r.stderr
    dump_file = re.search(r"dumped to the file '(.*)' at the server", r.stdout).group(1)
    assert re.search(r"^- from: 946684800 \(i\.e\. 20000101000000\.000000\)\.$", r.stdout, re.M)
    dumped = [ln for ln in open(dump_file).read().splitlines() if ln]
    assert len(dumped) == len(lines)
    assert sorted(ln[ln.index("DATE="):] for ln in dumped) == sorted(lines)
    assert os.stat(dump_file).st_mode & 0o077 == 0

    # dry run, with the list and a server dump
    r = run("glite-lb-purge", "-m", f"127.0.0.1:{a_query}", "-r", "-l", "-s", env=_env(a_query))
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0].startswith("Server dump: ") and out[1] == "The following jobs would be purged:"
    assert sorted(out[2:]) == sorted(old)                  # Cleared > 3 days; the recent job not
    assert _status(a_query, old[0])["state"] == "Cleared"

    # Bob may not purge, dump or load
    r = run("glite-lb-purge", "-m", f"127.0.0.1:{b_query}", "-l", env=_env(b_query))
    assert r.returncode == 1 and "Error running the edg_wll_Purge()." in r.stderr
    assert "Operation not permitted" in r.stderr
    r = run("glite-lb-dump", "-m", f"127.0.0.1:{b_query}", env=_env(b_query))
    assert "Error running the edg_wll_DumpEvents()." in r.stderr and "Dump result" not in r.stdout
    r = run("glite-lb-load", "-m", f"127.0.0.1:{b_query}", "-f", dump_file, env=_env(b_query))
    assert "Error running the edg_wll_LoadEvents()." in r.stderr and "Load result" not in r.stdout

    # the purge itself
    r = run("glite-lb-purge", "-m", f"127.0.0.1:{a_query}", "-l", "-s", env=_env(a_query))
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[1] == "The following jobs were purged:" and sorted(out[2:]) == sorted(old)
    purge_file = out[0].removeprefix("Server dump: ")
    purged_lines = [ln[ln.index("DATE="):] for ln in open(purge_file).read().splitlines() if ln]
    assert sorted(purged_lines) == sorted(ln for ln in lines if "Job99" not in ln
                                          and "00099" not in ln)
    status = run("glite-lb-job_status", old[0], env=_env(a_query))
    assert status.returncode != 0 and "Identifier removed" in status.stderr
    assert _status(a_query, recent)["state"] == "Cleared"
    r = run("glite-lb-purge", "-m", f"127.0.0.1:{a_query}", "-l", env=_env(a_query))
    assert r.stdout.splitlines()[1:] == ["The following jobs were purged:", "None."]

    # load the dump: the purged jobs are back as they were
    r = run("glite-lb-load", "-m", f"127.0.0.1:{a_query}", "-f", dump_file, env=_env(a_query))
    assert r.returncode == 0 and r.stdout.startswith("Load result:\n- from: "), r.stderr + r.stdout
    for job in old:
        again = _status(a_query, job)
        assert again["state"] == "Cleared" and again.get("user_tags") == {"phase": "1"}
        assert again == before[job]


def test_named_jobs_and_subjobs(servers):
    (_, a_query, a_store), _, tmp = servers
    coll, simple = _job(200), _job(201)
    _store(a_store, [_reg(coll, jobtype="COLLECTION", nsub=2), _reg(simple)])
    listing = tmp / "jobs.txt"
    listing.write_text(f"{coll}\n\n")
    r = run("glite-lb-purge", "-m", f"127.0.0.1:{a_query}", "-l", "-j", str(listing),
            env=_env(a_query))
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert out[0] == "The jobs were not dumped." and len(out[2:]) == 3 and coll in out[2:]
    assert "Identifier removed" in run("glite-lb-job_status", coll, env=_env(a_query)).stderr
    assert _status(a_query, simple)["state"] == "Submitted"
    empty = tmp / "empty.txt"
    empty.write_text("")
    r = run("glite-lb-purge", "-m", f"127.0.0.1:{a_query}", "-j", str(empty), env=_env(a_query))
    assert r.returncode == 1 and r.stdout == r.stderr == ""
    r = run("glite-lb-purge", "-j", str(tmp / "missing"), env=_env(a_query))
    assert r.returncode == 1 and f"Unable to read jobIds from file '{tmp / 'missing'}'" in r.stderr


def test_bad_requests_and_files(servers):
    (_, a_query, _), _, tmp = servers
    r = run("glite-lb-dump", "-f", "2020-01-01", env=_env(a_query))
    assert r.returncode == 0 and r.stdout == "Invalid 'from' date\n"
    r = run("glite-lb-purge", "-a", "12x", env=_env(a_query))
    assert r.returncode == 1 and "NNN[smhd]" in r.stderr
    assert run("glite-lb-purge", "-h", env=_env(a_query)).returncode == 1
    r = run("glite-lb-load", "-m", f"127.0.0.1:{a_query}", "-f", str(tmp / "nothing.dump"),
            env=_env(a_query))
    assert "Error running the edg_wll_LoadEvents()." in r.stderr and "No such file" in r.stderr
    bad = tmp / "bad.dump"
    good = _reg(_job(300))
    bad.write_text(f"garbage line\n\nDG.ARRIVED=20200101000000.000000 {good}\n"
                   f"DG.ARRIVED=2020 {good}\nDG.ARRIVED=20200101000001.000000 DATE=x\n"
                   f"DG.ARRIVED=20200101000002.000000 {_reg(_job(301))}")   # no final LF
    r = run("glite-lb-load", "-m", f"127.0.0.1:{a_query}", "-f", str(bad), env=_env(a_query))
    assert r.returncode == 0, r.stderr
    rejects = re.search(r"stored into the server file '(.*)'", r.stdout).group(1)
    assert open(rejects).read().splitlines() == [
        "garbage line", f"DG.ARRIVED=2020 {good}", "DG.ARRIVED=20200101000001.000000 DATE=x"]
    assert _status(a_query, _job(300))["state"] == "Submitted"
    assert "error" in _status(a_query, _job(301))            # the line without LF is ignored
    for body in (b"<edg_wll_PurgeRequest><flags>fly</flags></edg_wll_PurgeRequest>",
                 b"<edg_wll_DumpRequest><from>yesterday</from><to>1</to></edg_wll_DumpRequest>",
                 b"<edg_wll_LoadRequest></edg_wll_LoadRequest>", b"<notxml"):
        for path in ("/purgeRequest", "/dumpRequest", "/loadRequest"):
            from lbtx.protocols.legacy_query.http import ResponseDecoder, format_request
            import socket
            request = format_request(f"POST {path} HTTP/1.1",
                                     ("User-Agent: edg_wll_Api/3.0/3.0",
                                      "Accept: application/x-dglb"), body)
            with socket.create_connection(("127.0.0.1", a_query), timeout=10) as s:
                s.sendall(request)
                decoder, got = ResponseDecoder(), []
                while not got:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    got = decoder.feed(chunk)
            assert got and got[0].status in (400, 579), (path, body, got)
