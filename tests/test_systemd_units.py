"""The sample systemd units (etc/systemd/): systemd-analyze accepts them, and their
own ExecStart commands, with the paths and ports of the unit moved into this test's
directory, run real daemons: a server on TLS, a logger whose interlogger delivers
over TLS as the host, then the logger with ``--no-interlogger`` beside the
interlogger's unit. A job registered and logged through them reaches its state;
SIGTERM stops each cleanly (twistd ends by the signal that stopped it, a status
systemd counts as a clean stop)."""

from __future__ import annotations

import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from ca_support import make_ca
from cli_support import command_env, registered, run
from daemon_support import TWISTD, wait_until
from lbtx.testing.ports import connects, free_port_pair

UNITS = Path(__file__).resolve().parent.parent / "etc" / "systemd"
NAMES = ["lbtx-server.service", "lbtx-logger.service", "lbtx-interlogger.service"]


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Key: [values]`` of a unit file (continuation lines joined, comments dropped)."""
    settings: dict[str, list[str]] = {}
    text = path.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def test_the_units_pass_systemd_analyze(tmp_path):
    """With the venv's twistd in place of /opt/lbtx's (it must exist)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for name in NAMES:
        text = (UNITS / name).read_text().replace("/opt/lbtx/.venv/bin/twistd", TWISTD)
        (tmp_path / name).write_text(text)
    proc = subprocess.run([analyze, "verify", *(str(tmp_path / n) for n in NAMES)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_the_units_restart_on_failure_and_run_twistd_in_the_foreground():
    for name in NAMES:
        settings = unit_settings(UNITS / name)
        assert settings["Restart"] == ["on-failure"]
        assert settings["StartLimitBurst"] == ["5"]   # and then it stays down
        argv = shlex.split(settings["ExecStart"][0])
        assert argv[0] == "/opt/lbtx/.venv/bin/twistd" and "--nodaemon" in argv
        assert settings["User"] == ["lbtx"]


class Site:
    """The units' paths and ports mapped into a test directory."""

    def __init__(self, tmp: Path, ca: Path):
        self.tmp = tmp
        self.query = free_port_pair()
        self.store = self.query + 1
        tmp.mkdir()
        creds = tmp / "credentials"
        creds.mkdir()
        for name in ("hostcert.pem", "hostkey.pem"):
            shutil.copy(ca / "hosts" / "localhost" / name, creds / name)
        (tmp / "run").mkdir()
        self.replace = [("%d", str(creds)), ("/var/lib/lbtx", str(tmp / "state")),
                        ("/run/lbtx", str(tmp / "run")),
                        ("/etc/grid-security/certificates", str(ca / "certificates")),
                        ("lbtls:9000", f"lbtls:{self.query}:interface=127.0.0.1"),
                        ("lbtls:9001", f"lbtls:{self.store}:interface=127.0.0.1")]
        self.procs: list[subprocess.Popen] = []

    def argv(self, name: str, *extra: str) -> list[str]:
        command = unit_settings(UNITS / name)["ExecStart"][0]
        for old, new in self.replace:
            command = command.replace(old, new)
        argv = shlex.split(command)
        assert "9000" not in command and "9001" not in command
        return [TWISTD, *argv[1:], *extra]

    def start(self, name: str, ready, *extra: str) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "ab")
        proc = subprocess.Popen(self.argv(name, *extra), cwd=self.tmp, stdout=log,
                                stderr=subprocess.STDOUT)
        self.procs.append(proc)
        wait_until(lambda: proc.poll() is not None or all(connects(a) for a in ready),
                   timeout=60, what=f"{name} listening")
        assert proc.poll() is None, (self.tmp / f"{name}.log").read_text()
        return proc

    def stop(self, proc: subprocess.Popen) -> int:
        """SIGTERM; the exit status (-SIGTERM: twistd re-raises the signal once it
        has shut down in order)."""
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise


@pytest.fixture
def site(tmp_path):
    ca = make_ca(tmp_path / "ca", ["alice"])
    s = Site(tmp_path / "site", ca)
    s.ca = ca
    yield s
    for proc in s.procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _env(site: Site, **extra) -> dict:
    return command_env(GLITE_WMS_QUERY_SERVER=f"localhost:{site.query}",
                       X509_USER_PROXY=str(site.ca / "alice.pem"),
                       X509_CERT_DIR=str(site.ca / "certificates"),
                       LBTX_LOGGER=str(site.tmp / "run" / "logger.sock"), **extra)


def _log_and_see(site: Site, job: str, seqcode: str, event: list[str], state: str) -> str:
    logged = run("glite-lb-logevent", "-j", job, "-c", seqcode, *event, env=_env(site))
    assert logged.returncode == 0, logged.stderr
    wait_until(lambda: f"state : {state}" in run("glite-lb-job_status", job,
                                                 env=_env(site)).stdout,
               timeout=60, what=f"the state {state}")
    return logged.stdout.strip()


def test_the_units_commands_run_the_daemons(site):
    server = site.start("lbtx-server.service", [site.query, site.store])
    sock = str(site.tmp / "run" / "logger.sock")
    logger = site.start("lbtx-logger.service", [sock])
    reg = run("glite-lb-job_reg", "-m", f"localhost:{site.query}", "-s", "UserInterface",
              env=_env(site))
    assert reg.returncode == 0, reg.stderr
    values = registered(reg.stdout)
    job, seqcode = values["EDG_JOBID"], values["EDG_WL_SEQUENCE"]
    seqcode = _log_and_see(site, job, seqcode,
                           ["-s", "NetworkServer", "-e", "Accepted", "--from", "UserInterface",
                            "--from_host", "ui.example.org", "--local_jobid", "1"], "Waiting")
    assert site.stop(logger) == -signal.SIGTERM
    # the interlogger as a service of its own, the logger without one
    control = str(site.tmp / "run" / "interlogger.sock")
    interlogger = site.start("lbtx-interlogger.service", [control])
    logger = site.start("lbtx-logger.service", [sock], "--no-interlogger")
    _log_and_see(site, job, seqcode,
                 ["-s", "WorkloadManager", "-e", "EnQueued", "--queue", "ns.queue",
                  "--job", "x", "--result", "OK", "--reason", "none"], "Ready")
    assert site.stop(logger) == -signal.SIGTERM
    assert site.stop(interlogger) == -signal.SIGTERM
    assert site.stop(server) == -signal.SIGTERM
    for log in site.tmp.glob("*.log"):
        assert "Traceback" not in log.read_text(), log.name
