"""``glite-lb-logevent`` (cli.md §3.2) as a process, against a real ``twistd lb-logger``:
the printed sequence code, what reaches the spool, and the argument errors."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lbtx.cli.glite.logevent import reason_filler

from daemon_support import start_daemon, stop_daemon
from spool_support import event_files, read_lines, records_of

J = "https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg"
CODE = "UI=000003:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"
ACCEPTED = ["-s", "NetworkServer", "-e", "Accepted", "--from=UserInterface",
            "--from_host=ui.example.org", "--from_instance=ui1", "--local_jobid=ns-42"]


@pytest.fixture
def logger(tmp_path):
    data = tmp_path / "data"
    proc = start_daemon("lb-logger", ["-d", str(data), "--no-interlogger"], tmp_path,
                        data / "logger.sock", tag="logger")
    yield data
    stop_daemon(proc)


def logevent(data, *args):
    env = dict(os.environ, LBTX_LOGGER=str(data / "logger.sock"))
    return subprocess.run([sys.executable, "-m", "lbtx.cli.glite.logevent", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def spooled(data) -> list[str]:
    spool = data / "spool"
    return [r.decode() for name in event_files(spool) for r in records_of(read_lines(spool / name))]


def test_the_example_of_cli_md(logger):
    out = logevent(logger, "-j", J, "-c", CODE, *ACCEPTED)
    assert out.returncode == 0, out.stderr
    assert out.stdout == CODE.replace("NS=0000000000", "NS=0000000002") + "\n"
    [line] = spooled(logger)
    assert f'DG.SEQCODE="{CODE.replace("NS=0000000000", "NS=0000000001")}"' in line
    assert "DG.PRIORITY=4 " in line and "LVL=SYSTEM" in line
    assert 'DG.ACCEPTED.LOCAL_JOBID="ns-42"' in line


def test_dont_increment_debug_and_glued_short_options(logger):
    out = logevent(logger, "-j=" + J, "-c", CODE, "-I", "-d", "on", *ACCEPTED, "--unknown", "x")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == CODE.replace("NS=0000000000", "NS=0000000001")
    [line] = spooled(logger)
    assert f'DG.SEQCODE="{CODE}"' in line and "LVL=DEBUG" in line


@pytest.mark.parametrize("args, message", [
    (["-s", "NetworkServer", "-e", "Nonsense"], "unknown event: Nonsense"),
    (["-s", "Nowhere", "-e", "Accepted"], "unknown source: Nowhere"),
    (["-s", "LRMS", "-e", "Running", "--node", "wn", "--destination", "Mars"], "unknown source: Mars"),
    (["-s", "LRMS"], "unknown or unspecified event"),
    (["-l", "many", "-s", "LRMS", "-e", "Abort", "--reason", "r"], "can't parse many"),
    (["-x", "-s", "LRMS", "-e", "Abort", "--reason", "r"], "L&B proxy"),
])
def test_argument_errors(logger, args, message):
    out = logevent(logger, "-j", J, "-c", CODE, *args)
    assert out.returncode == 1 and message in out.stderr and out.stdout == ""
    assert not (logger / "spool").exists() or spooled(logger) == []


def test_a_malformed_code_prints_nothing(logger):
    out = logevent(logger, "-j", J, "-c", "garbage", *ACCEPTED)
    assert out.returncode == 1 and out.stdout == "" and "SetLoggingJob" in out.stderr


def test_the_code_is_printed_even_when_logging_fails(tmp_path):
    out = logevent(tmp_path, "-j", J, "-c", CODE, *ACCEPTED)   # no logger there
    assert out.returncode != 0 and "edg_wll_LogEvent" in out.stderr
    assert out.stdout.strip() == CODE.replace("NS=0000000000", "NS=0000000002")


@pytest.mark.parametrize("flag", ["-h", "--help"])
def test_help_prints_the_usage_and_every_option(tmp_path, flag):
    out = logevent(tmp_path, flag)
    assert out.returncode == 0 and out.stderr == ""
    assert out.stdout.startswith("Usage: ")
    for option in ("-e, --event", "-s, --source", "-j, --jobid", "-c, --sequence",
                   "-i, --source-instance", "-m, --machine", "-p, --priority",
                   "-I, --dont-increment", "-d ", "-l, --reason-length", "--<field>"):
        assert option in out.stdout


def test_source_help_lists_the_canonical_names(tmp_path):
    out = logevent(tmp_path, "-s", "help", "-e", "Accepted")
    assert out.returncode == 1
    names = out.stdout.split()
    assert names[:9] == ["UserInterface", "NetworkServer", "WorkloadManager", "BigHelper",
                         "JobController", "LogMonitor", "LRMS", "Application", "LBServer"]
    assert "CREAMExecutor" in names and "Undefined" not in names


# the filler of -l 60 as upstream's generator writes it, with the one more dot that
# cli.md's "exactly N characters" asks for
FILLER_60 = "0...................20..................40............end=60"


def test_reason_length_replaces_the_reason(logger):
    out = logevent(logger, "-j", J, "-c", CODE, "-s", "LRMS", "-e", "Done", "-l", "60",
                   "--status_code=OK", "--reason", "given", "--exit_code", "0")
    assert out.returncode == 0, out.stderr
    [line] = spooled(logger)
    assert f'DG.DONE.REASON="{FILLER_60}"' in line and "given" not in line


def test_reason_length_leaves_events_without_a_reason_alone(logger):
    out = logevent(logger, "-j", J, "-c", CODE, "-s", "LRMS", "-e", "Running", "-l", "60",
                   "--node", "wn01")
    assert out.returncode == 0, out.stderr
    [line] = spooled(logger)
    assert 'DG.RUNNING.NODE="wn01"' in line and "end=60" not in line


@pytest.mark.parametrize("length", ["300000000", "0", "-5"])
def test_reason_length_out_of_range_is_ignored(logger, length):
    out = logevent(logger, "-j", J, "-c", CODE, "-s", "LRMS", "-e", "Abort", "-l", length,
                   "--reason", "given")
    assert out.returncode == 0, out.stderr
    assert ("unsupported reason message length: 300000000" in out.stderr) == (length[0] == "3")
    [line] = spooled(logger)
    assert 'DG.ABORT.REASON="given"' in line


@pytest.mark.parametrize("length", [*range(0, 130), 999, 1000, 1001, 20_000, 123_457])
def test_reason_filler_pattern(length):
    text = reason_filler(length)
    assert len(text) == length and set(text) <= set("0123456789.end=")
    end = f"end={length}"
    body = length - len(end) if length > len(end) else length
    if body < length:
        assert text.endswith(end)
    expected = ["."] * body
    for k in range(0, length, 20):
        if k + 14 < length:   # an offset is written where it leaves room for 14 more
            for j, digit in enumerate(str(k)):
                if k + j < body:
                    expected[k + j] = digit
    assert text[:body] == "".join(expected)
