"""The twistd plug-ins (twisted/plugins/lbtx_daemons.py) are found by twistd's own
plug-in search and provide its interfaces; each arms the failure exit status
(lbtx/daemon_exit.py) as it builds its service."""

from __future__ import annotations

import subprocess
import sys

from twisted.application.service import IServiceMaker
from twisted.plugin import IPlugin, getPlugins
from zope.interface.verify import verifyObject

from conftest import REPO

TAPS = {"lb-server", "lb-logger", "lb-interlogger"}


def test_the_daemons_are_twistd_plugins():
    found = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
    assert TAPS <= set(found)
    for name in TAPS:
        maker = found[name]
        assert verifyObject(IServiceMaker, maker) and verifyObject(IPlugin, maker)
        assert maker.description and maker.options is not None


def test_making_a_service_arms_the_failure_status(tmp_path):
    """Built as twistd builds it, in a process of its own: armed afterwards, not before."""
    code = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from lbtx import daemon_exit
maker = {{m.tapname: m for m in getPlugins(IServiceMaker)}}["lb-interlogger"]
options = maker.options()
options.parseOptions(["-d", {str(tmp_path / "data")!r}, "--no-control"])
before = daemon_exit.armed()
maker.makeService(options)
print(before, daemon_exit.armed())
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["False", "True"]
