"""lbtx/daemon_exit.py: a failure that stops the reactor records its reason, and
only an armed process (a twistd plug-in's) exits with status 1 for it, after
its own end: real Python processes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO

SCRIPT = """
import atexit, sys
sys.path.insert(0, {repo!r})
from lbtx import daemon_exit

class Reactor:
    running = True
    def stop(self):
        self.running = False
        print("reactor stopped")

atexit.register(lambda: print("earlier hook ran"))
if {armed_before}:
    daemon_exit.exit_nonzero_on_failure()
reactor = Reactor()
if {fail}:
    daemon_exit.stop_for_failure(reactor, "cannot listen: port taken")
    daemon_exit.stop_for_failure(reactor, "a second reason")
if {armed_after}:
    daemon_exit.exit_nonzero_on_failure()
print("reason:", daemon_exit.failure())
sys.stdout.write("unflushed tail")
"""


def _run(*, fail: bool, armed_before: bool = False, armed_after: bool = False):
    code = SCRIPT.format(repo=str(REPO), fail=fail, armed_before=armed_before,
                         armed_after=armed_after)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("when", ["before", "after"])
def test_an_armed_process_stopped_by_a_failure_exits_1(when):
    """Armed before or after the failure: status 1, the first reason kept, the
    reactor stopped once, standard output flushed to its last byte."""
    proc = _run(fail=True, armed_before=when == "before", armed_after=when == "after")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.count("reactor stopped") == 1
    assert "reason: cannot listen: port taken\n" in proc.stdout
    assert proc.stdout.endswith("unflushed tail")
    assert "earlier hook ran" not in proc.stdout   # the exit comes first
    assert proc.stderr == ""


def test_a_failure_without_arming_only_stops_the_reactor():
    """A test or another program hosting the services keeps its own exit status."""
    proc = _run(fail=True)
    assert proc.returncode == 0, proc.stderr
    assert "reactor stopped" in proc.stdout and "reason: cannot listen" in proc.stdout
    assert "earlier hook ran" in proc.stdout


def test_an_armed_process_without_a_failure_exits_0():
    proc = _run(fail=False, armed_before=True)
    assert proc.returncode == 0, proc.stderr
    assert "reason: None" in proc.stdout and "earlier hook ran" in proc.stdout
