"""The commands over TLS (docs/security.md, lbtx.cli.connection): a real
``twistd lb-server`` on ``lbtls:`` ports, certificates and proxies made by
``lbtx ca``, and the installed commands authenticating with ``X509_USER_PROXY``:
the job belongs to the proxy's end-entity subject, another user is refused, an
untrusted server or a plaintext attempt fails with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from lbtx.cli.connection import tls_wanted

from ca_support import make_ca, start_tls_server
from cli_support import command_env, registered, run
from daemon_support import stop_daemon

ALICE = "/DC=org/DC=example/CN=alice"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    d = make_ca(tmp_path_factory.mktemp("clitls") / "ca", ["alice", "bob"])
    make_ca(d.parent / "other-ca")
    return d


@pytest.fixture(scope="module")
def server(pki, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clitls-server")
    proc, port = start_tls_server(pki, tmp)
    yield port
    stop_daemon(proc)


def _env(pki: Path, port: int, user: str = "alice", **extra) -> dict:
    settings = {"GLITE_WMS_QUERY_SERVER": f"localhost:{port}",
                "X509_USER_PROXY": str(pki / f"{user}.pem"),
                "X509_CERT_DIR": str(pki / "certificates")}
    settings.update(extra)
    return command_env(**settings)


def test_when_tls_is_used():
    assert tls_wanted({"X509_USER_PROXY": "/tmp/p"})
    assert tls_wanted({"X509_USER_CERT": "/c"})
    assert not tls_wanted({})
    assert tls_wanted({"LBTX_TLS": "yes"}) and not tls_wanted({"LBTX_TLS": "0",
                                                                "X509_USER_PROXY": "/p"})
    with pytest.raises(ValueError):
        tls_wanted({"LBTX_TLS": "maybe"})


def test_register_and_query_over_tls(pki, server):
    port = server
    r = run("glite-lb-job_reg", "-m", f"localhost:{port}", "-s", "UserInterface",
            env=_env(pki, port))
    assert r.returncode == 0, r.stderr
    job = registered(r.stdout)["EDG_JOBID"]
    status = run("glite-lb-job_status", job, env=_env(pki, port))
    assert status.returncode == 0, status.stderr
    assert "state : Submitted" in status.stdout and f"owner : {ALICE}" in status.stdout
    mine = run("lbtx", "jobs", "--server", f"localhost:{port}", env=_env(pki, port))
    assert mine.returncode == 0 and job in mine.stdout, mine.stderr
    bob = run("glite-lb-job_status", job, env=_env(pki, port, "bob"))
    assert bob.returncode != 0 and "Operation not permitted" in bob.stderr


def test_untrusted_server_and_plaintext_are_refused(pki, server):
    port = server
    other = pki.parent / "other-ca" / "certificates"
    r = run("glite-lb-job_status", f"https://localhost:{port}/q7Xk2mVb0Lr9T1aZcW3eYg",
            env=_env(pki, port, X509_CERT_DIR=str(other)))
    assert r.returncode != 0 and "refused" in r.stderr, r.stderr
    plain = run("glite-lb-job_status", f"https://localhost:{port}/q7Xk2mVb0Lr9T1aZcW3eYg",
                env=_env(pki, port, LBTX_TLS="0"))
    assert plain.returncode != 0
    missing = run("glite-lb-job_status", f"https://localhost:{port}/q7Xk2mVb0Lr9T1aZcW3eYg",
                  env=_env(pki, port, X509_USER_PROXY=str(pki / "nonexistent.pem")))
    assert missing.returncode != 0 and "TLS credentials" in missing.stderr, missing.stderr
