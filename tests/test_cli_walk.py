"""The job-state walk of cli.md end to end, with the installed commands as processes.

One ``lbtx serve`` (server, logger and interlogger) runs for the module. Jobs are
registered with ``glite-lb-job_reg -m``, events logged with ``glite-lb-logevent``
through the logger named by ``GLITE_WMS_LOG_DESTINATION``, each call taking the
sequence code the previous one printed, and after each event
``glite-lb-job_status`` must show the state of the table in cli.md §3.2. Delivery
is asynchronous: the test polls (bounded) until the job's ``lastUpdateTime``
moved on (each event sets it), then asserts the state exactly. The helper
scripts of §3.19 (``glite-lb-<state>.sh``) are run the same way, and so is the
rule that a re-run with identical sequence codes changes nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from daemon_support import as_on_a_terminal
from lbtx.testing.ports import free_ports

BIN = os.path.dirname(sys.executable)

#: cli.md §0.2: the component of the code each source increments
COMPONENT = {"UserInterface": "UI", "NetworkServer": "NS", "WorkloadManager": "WM",
             "JobController": "JSS", "LogMonitor": "LM"}
TRANSFER = ["--destination=LRMS", "--dest_host=ce.example.org", "--dest_instance=ce1",
            "--job=job", "--result=OK", "--reason=sent", "--dest_jobid=lrms-7"]
#: cli.md §3.2, "State transitions the suite expects": (logevent arguments, state after)
WALK = [
    (["-s", "NetworkServer", "-e", "Accepted", "--from=UserInterface",
      "--from_host=ui.example.org", "--from_instance=ui1", "--local_jobid=ns-42"], "Waiting"),
    (["-s", "NetworkServer", "-e", "EnQueued", "--queue=wm", "--job=j", "--result=OK",
      "--reason=queued"], "Waiting"),
    (["-s", "WorkloadManager", "-e", "DeQueued", "--queue=wm", "--local_jobid=wm-1"], "Waiting"),
    (["-s", "WorkloadManager", "-e", "HelperCall", "--helper_name=mm", "--helper_params=p",
      "--src_role=CALLING"], "Waiting"),
    (["-s", "WorkloadManager", "-e", "Match", "--dest_id=ce.example.org:2119/jobmanager-pbs"],
     "Waiting"),
    (["-s", "WorkloadManager", "-e", "HelperReturn", "--helper_name=mm", "--retval=ok",
      "--src_role=CALLING"], "Waiting"),
    (["-s", "WorkloadManager", "-e", "EnQueued", "--queue=jc", "--job=j", "--result=OK",
      "--reason=queued"], "Ready"),
    (["-s", "JobController", "-e", "DeQueued", "--queue=jc", "--local_jobid=jc-1"], "Ready"),
    (["-s", "JobController", "-e", "Transfer", *TRANSFER], "Ready"),
    (["-s", "LogMonitor", "-e", "Accepted", "--from=JobController", "--from_host=jc",
      "--from_instance=jc1", "--local_jobid=lrms-7"], "Ready"),
    (["-s", "LogMonitor", "-e", "Transfer", *TRANSFER], "Scheduled"),
    (["-s", "LogMonitor", "-e", "Running", "--node=wn01.example.org"], "Running"),
    (["-s", "LogMonitor", "-e", "Done", "--status_code=OK", "--reason=fine", "--exit_code=0"],
     "Done"),
    (["-s", "LogMonitor", "-e", "Clear", "--reason=USER"], "Cleared"),
]
ABORT = ["-s", "JobController", "-e", "Abort", "--reason", "no CE left"]
CANCEL = ["-s", "LogMonitor", "-e", "Done", "--status_code=CANCELLED",
          "--reason=cancelled by user", "--exit_code=0"]
READY = 7      # WALK[:READY] ends in Ready
RUNNING = 12   # WALK[:RUNNING] ends in Running
#: the helper scripts and the number of events each logs (cli.md §3.19)
SCRIPTS = {"waiting": (1, "Waiting"), "ready": (7, "Ready"), "scheduled": (11, "Scheduled"),
           "running": (12, "Running"), "done": (13, "Done"), "cleared": (14, "Cleared"),
           "aborted": (8, "Aborted"), "cancelled": (13, "Cancelled")}
FIRST = ("UI=000003:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:"
         "APP=000000:LBS=000000")


class LB:
    """The commands, run against the module's ``lbtx serve``."""

    def __init__(self, port: int):
        self.server = f"localhost:{port}"
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("GLITE_", "EDG_WL_", "LBTX_"))}
        self.env.update(GLITE_WMS_QUERY_SERVER=self.server,
                        GLITE_WMS_LOG_DESTINATION=f"localhost:{port + 2}")

    def run(self, command: str, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([os.path.join(BIN, command), *args], capture_output=True,
                              text=True, env=dict(self.env, **env), timeout=60)

    def register(self) -> tuple[str, str]:
        out = self.run("glite-lb-job_reg", "-m", self.server, "-s", "UserInterface")
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].startswith("new jobid: ") and lines[1] == ""
        job = lines[0].split()[2]
        assert lines[2:] == [f'EDG_JOBID="{job}"', f'EDG_WL_SEQUENCE="{lines[3][17:-1]}"']
        return job, lines[3][17:-1]

    def start(self, command: str, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen([os.path.join(BIN, command), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=dict(self.env, **env))

    def start_log(self, job: str, code: str, args: list[str]) -> subprocess.Popen:
        return self.start("glite-lb-logevent", "-j", job, "-c", code, *args)

    @staticmethod
    def finish_log(proc: subprocess.Popen, code: str, args: list[str]) -> str:
        """The code logevent printed: the one it was given, plus 2 in its source's part."""
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        [new] = out.splitlines()
        expected = _fields(code)
        expected[COMPONENT[args[1]]] += 2
        assert _fields(new) == expected, (code, new)
        return new

    def events(self, job: str) -> list[str]:
        out = self.run("glite-lb-job_log", job)
        assert out.returncode == 0, out.stderr
        return [line for line in out.stdout.splitlines() if line.startswith("DATE=")]

    def wait_updated(self, previous: dict[str, str], timeout: float = 30.0) -> list[dict]:
        """The statuses once each job's ``lastUpdateTime`` moved on from ``previous``
        (every event sets it to its own timestamp)."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.status(*previous)
            if all(s["lastUpdateTime"] != previous[s["jobId"]] for s in statuses):
                return statuses
            assert time.monotonic() < deadline, f"no update within {timeout} s: {statuses}"
            time.sleep(0.1)

    def wait_states(self, jobs: list[str], states: list[str], timeout: float = 30.0) -> list:
        """The statuses once the jobs show ``states`` (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while True:
            statuses = self.status(*jobs)
            if [s["state"] for s in statuses] == states or time.monotonic() > deadline:
                return statuses
            time.sleep(0.1)

    def status(self, *jobs: str) -> list[dict[str, str]]:
        """One ``name : value`` dict per job block of job_status (exit 0 asserted)."""
        out = self.run("glite-lb-job_status", *jobs)
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("\n"), out.stdout   # the first line is empty
        blocks = out.stdout[1:].split("\n\n")           # each block ends in an empty line
        assert blocks[-1] == "", out.stdout
        result = []
        for block in blocks[:-1]:
            lines = block.splitlines()
            assert sum("state :" in line for line in lines) == 1, block
            result.append(dict(line.split(" : ", 1) for line in lines if " : " in line))
        assert len(result) == len(jobs), out.stdout
        return result


def _fields(code: str) -> dict[str, int]:
    return {k: int(v) for k, v in (part.split("=") for part in code.split(":"))}


@pytest.fixture(scope="module")
def lb(tmp_path_factory):
    port = free_ports(3)
    data = tmp_path_factory.mktemp("walk") / "lbtx-data"
    proc = subprocess.Popen([os.path.join(BIN, "lbtx"), "serve", "--data-dir", str(data),
                             "--base-port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=as_on_a_terminal)
    try:
        lb = LB(port)
        deadline = time.monotonic() + 30
        while lb.run("glite-lb-job_reg", "-m", lb.server, "-s", "UserInterface").returncode:
            assert proc.poll() is None and time.monotonic() < deadline, "lbtx serve did not start"
            time.sleep(0.2)
        yield lb
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow  # a command process for every event of every branch
def test_the_wms_walk_and_its_branches(lb):
    """Three jobs step through the table side by side: the whole walk, the walk up
    to Ready and then Abort, and up to Running and then Done CANCELLED."""
    branches = {"walk": WALK, "aborted": WALK[:READY] + [(ABORT, "Aborted")],
                "cancelled": WALK[:RUNNING] + [(CANCEL, "Cancelled")]}
    jobs, codes = {}, {}
    for name in branches:
        jobs[name], codes[name] = lb.register()
        assert codes[name] == FIRST.replace("UI=000003", "UI=000002")
    statuses = dict(zip(branches, lb.status(*jobs.values())))
    for name, status in statuses.items():
        assert status["state"] == "Submitted" and status["jobId"] == jobs[name]
    for step in range(len(WALK)):
        active = [name for name, steps in branches.items() if step < len(steps)]
        logged = {name: lb.start_log(jobs[name], codes[name], branches[name][step][0])
                  for name in active}
        for name, proc in logged.items():
            codes[name] = lb.finish_log(proc, codes[name], branches[name][step][0])
        updated = lb.wait_updated({jobs[n]: statuses[n]["lastUpdateTime"] for n in active})
        for name, status in zip(active, updated):
            statuses[name] = status
            args, state = branches[name][step]
            assert status["state"] == state, (name, args, status["state"])
    walk, aborted, cancelled = (statuses[n] for n in branches)
    assert walk["ce_node"] == "wn01.example.org" and walk["done_code"] == "DONE_CODE_OK"
    assert walk["destination"] == "ce.example.org:2119/jobmanager-pbs"
    assert walk["exit_code"] == "0" and walk["reason"] != "(null)"
    assert aborted["reason"] == "no CE left" and aborted["done_code"] == "(null)"
    assert cancelled["done_code"] == "DONE_CODE_CANCELLED"
    assert cancelled["reason"] == "cancelled by user"


def test_the_helper_scripts(lb):
    runs = {state: lb.start(f"glite-lb-{state}.sh", "-m", lb.server) for state in SCRIPTS}
    jobs = {}
    for state, proc in runs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        [line] = out.splitlines()
        assert line.startswith("EDG_JOBID=https://" + lb.server + "/")
        echoed = err.splitlines()
        assert len(echoed) == SCRIPTS[state][0], err
        assert all(e.startswith("glite-lb-logevent -j ") for e in echoed), err
        jobs[state] = line.split("=", 1)[1]
    expected = [state for _, state in SCRIPTS.values()]
    statuses = lb.wait_states(list(jobs.values()), expected)
    assert [s["state"] for s in statuses] == expected


#: status lines that differ between two jobs driven the same way
_OWN = ("jobId", "stateEnterTime", "lastUpdateTime")


def test_a_rerun_with_identical_codes_changes_nothing(lb):
    """cleared.sh on a job that ready.sh already drove re-sends 7 events with the
    codes they had; the job ends exactly like one that cleared.sh drove once."""
    twice, _ = lb.register()
    once, code = lb.register()
    out = lb.run("glite-lb-ready.sh", "-j", twice)
    assert out.returncode == 0 and out.stdout == "", out.stderr
    assert f"-c {FIRST} -s NetworkServer -e Accepted" in out.stderr
    lb.wait_states([twice], ["Ready"])
    reruns = [lb.start("glite-lb-cleared.sh", "-j", twice),
              lb.start("glite-lb-cleared.sh", "-j", once, EDG_WL_SEQUENCE=code)]
    for proc in reruns:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and out == "", err
    assert f"-c {code} -s NetworkServer -e Accepted" in err   # from EDG_WL_SEQUENCE
    a, b = lb.wait_states([twice, once], ["Cleared", "Cleared"])
    assert a["state"] == b["state"] == "Cleared"
    assert {k: v for k, v in a.items() if k not in _OWN} == \
        {k: v for k, v in b.items() if k not in _OWN}
    # the re-sent events have new timestamps, so formats.md §6.6 stores them again
    events = lb.events(twice)
    assert len(events) == 1 + 7 + 14
    codes = [e.split('DG.SEQCODE="')[1].split('"')[0] for e in events]
    assert len(set(codes)) == 1 + 14
