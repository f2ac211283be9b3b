"""The L&B proxy options of the commands (``-x``, ``-X sock``, ``-P``, ``-p sock``):
the same requests over Unix sockets, here a server's extra Unix listeners."""

from __future__ import annotations

import pytest

from cli_support import SERVER_KINDS, command_env, registered, run, start_server


@pytest.fixture(scope="module", params=SERVER_KINDS)
def proxy(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"proxy-{request.param}")
    prefix = str(tmp / "lb_proxy_")
    server = start_server(request.param, tmp, unix_prefix=prefix)
    yield server, prefix
    server.stop()


def test_register_and_read_through_the_proxy_sockets(proxy):
    """job_reg -X registers on the store socket; the readers ask the serve socket."""
    server, prefix = proxy
    env = command_env(GLITE_WMS_LBPROXY_SERVE_SOCK=prefix + "serve.sock",
                      GLITE_WMS_LBPROXY_STORE_SOCK=prefix + "store.sock")
    r = run("glite-lb-job_reg", "-m", server.address, "-s", "UserInterface",
            "-X", prefix + "store.sock", env=env)
    assert r.returncode == 0, r.stderr
    job = registered(r.stdout)["EDG_JOBID"]
    r = run("glite-lb-job_reg", "-j", job, "-s", "UserInterface", "-x", env=env)
    assert r.returncode == 0, r.stderr
    r = run("glite-lb-job_status", "-x", prefix + "serve.sock", job, env=env)
    assert r.returncode == 0, r.stderr
    assert "\nstate : Submitted\n" in r.stdout
    r = run("glite-lb-job_log", "-X", prefix + "serve.sock", job, env=env)
    assert r.stdout.endswith("\nFound 2 events\n"), r.stderr
    r = run("glite-lb-job_log", "-x", job, env=env)
    assert r.stdout.endswith("\nFound 2 events\n"), r.stderr
    r = run("glite-lb-user_jobs", "-x", env=env)
    assert r.returncode == 0 and f"      {job} .... Submitted \n" in r.stdout
    r = run("glite-lb-query_ext", "-P", input=f"jobid={job}\n", env=env)
    assert r.stdout == f"jobId: {job}\n", r.stderr
    r = run("glite-lb-query_ext", "-p", prefix + "serve.sock", input=f"jobid={job}\n", env=env)
    assert r.stdout == f"jobId: {job}\n", r.stderr


def test_missing_proxy_socket(tmp_path):
    """No proxy listening: the Proxy variant of the message, exit 1."""
    job = "https://127.0.0.1:9000/q7Xk2mVb0Lr9T1aZcW3eYg"
    r = run("glite-lb-job_status", "-x", str(tmp_path / "nope.sock"), job)
    assert r.returncode == 1
    assert "edg_wll_JobStatusProxy: No such file or directory" in r.stderr
    r = run("glite-lb-job_reg", "-j", job, "-s", "UserInterface", "-X", str(tmp_path / "n.sock"))
    assert r.returncode == 1
    assert r.stderr.startswith(f"edg_wll_RegisterJobProxy({job}): No such file or directory")
