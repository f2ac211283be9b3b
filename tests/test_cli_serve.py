"""``lbtx serve`` as a process: a newcomer's minute. It prints the addresses and
the exports; with them a job is registered, an event logged, and its state read
back with ``lbtx status``; Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from daemon_support import as_on_a_terminal, wait_until
from lbtx.testing.ports import free_ports

LBTX = os.path.join(os.path.dirname(sys.executable), "lbtx")


def test_lbtx_serve_register_log_and_query(tmp_path):
    port = free_ports(3)
    data = tmp_path / "lbtx-data"
    proc = subprocess.Popen([LBTX, "serve", "--data-dir", str(data), "--base-port", str(port)],
                            cwd=tmp_path, stdout=subprocess.PIPE, text=True,
                            preexec_fn=as_on_a_terminal)
    try:
        banner = [proc.stdout.readline() for _ in range(8)]
        exports = dict(line.split("export ", 1)[1].strip().split("=", 1)
                       for line in banner if "export " in line and "=" in line)
        assert exports == {"GLITE_WMS_QUERY_SERVER": f"localhost:{port}",
                           "GLITE_WMS_LOG_DESTINATION": f"localhost:{port + 2}",
                           "LBTX_LOGGER": str(data / "logger.sock")}
        wait_until(lambda: (data / "logger.sock").exists(), what="the logger socket")
        env = dict(os.environ, **exports)
        job = f"https://localhost:{port}/newcomerJobAAAAAAAAAAA"

        def lbtx(*args):
            return subprocess.run([LBTX, *args], capture_output=True, text=True, env=env,
                                  timeout=60)
        deadline = time.monotonic() + 30
        while True:   # the server may still be opening its store
            reg = lbtx("log", "-j", job, "-s", "UserInterface", "-e", "RegJob", "ns=wms",
                       "jobtype=SIMPLE")
            if reg.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert reg.returncode == 0, reg.stderr
        logged = lbtx("log", "-j", job, "-s", "NetworkServer", "-e", "Accepted",
                      "-c", reg.stdout.strip(), "from=UserInterface", "from_host=ui",
                      "local_jobid=1")
        assert logged.returncode == 0, logged.stderr
        wait_until(lambda: "Waiting" in lbtx("status", job).stdout, what="the state Waiting")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(60)  # generous: a loaded machine stops the three services slowly
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
