"""A Kerberos-authenticated user registers, logs and queries end to end (issue 6).

Real processes on ``lbkrb5:`` endpoints against a real MIT KDC in a temporary
realm: ``twistd lb-server`` (store and query ports) and ``twistd lb-logger`` whose
interlogger delivers to the server as its own principal. Alice registers a job
straight with the server, logs a user tag through the logger (which signs it with
her principal), and reads the job back through the JSON API: she is its owner and
sees the tag; Bob, another principal, is refused the job; a client without a
ticket does not get in at all.
"""

from __future__ import annotations

import uuid

import pytest
import pytest_twisted
from daemon_support import free_port, free_port_pair, spool_empty, start_daemon, stop_daemon, wait_until
from krb5_support import REALM, Realm, missing

if missing():
    pytest.skip(f"no MIT KDC: {', '.join(missing())} not installed (Debian: krb5-kdc krb5-admin-server"
                " krb5-user)", allow_module_level=True)
pytest.importorskip("gssapi", reason="python-gssapi is not installed (pip install gssapi)",
                    exc_type=ImportError)

from endpoint_client_support import api_get, send_box  # noqa: E402
from lbtx.gss import PeerRefusedError  # noqa: E402
from lbtx.producer.records import record_from_text  # noqa: E402
from lbtx.protocols.box.messages import ResultCode  # noqa: E402

ALICE = f"alice@{REALM}"
BOB = f"bob@{REALM}"
SEQ = "UI={:06d}:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


@pytest.fixture(scope="module")
def realm(tmp_path_factory):
    root = tmp_path_factory.mktemp("krb5e2e")
    with pytest.MonkeyPatch.context() as patch:
        realm = Realm(root)
        for name, value in realm.env.items():
            patch.setenv(name, value)  # the daemons inherit the realm's configuration
        try:
            realm.keytab = root / "lbtx.keytab"
            realm.add_service("lbtx", "localhost", realm.keytab)
            realm.cc = {}
            for user in ("alice", "bob", "wms"):
                realm.add_user(user, f"{user}-password")
                realm.cc[user] = root / f"{user}.cc"
                realm.kinit(f"{user}@{REALM}", f"{user}-password", realm.cc[user])
            yield realm
        finally:
            realm.stop()


def krb5_client(port: int, ccache) -> str:
    return f"lbkrb5:host=127.0.0.1:port={port}:servername=localhost:ccache={ccache}:timeout=5"


@pytest_twisted.ensureDeferred
async def test_kerberos_user_registers_logs_and_queries(realm, tmp_path):
    port = free_port_pair()
    logger_port = free_port()
    job = f"https://127.0.0.1:{port}/krb5{uuid.uuid4().hex[:18]}"
    keytab = realm.keytab
    server = start_daemon("lb-server", [
        "--data-dir", str(tmp_path / "server-data"),
        "--listen-store", f"lbkrb5:{port + 1}:interface=127.0.0.1:keytab={keytab}",
        "--listen-query", f"lbkrb5:{port}:interface=127.0.0.1:keytab={keytab}",
        "--server-name", f"127.0.0.1:{port}"], tmp_path, [port + 1, port], tag="server")
    data = tmp_path / "logger-data"
    logger = None
    try:
        logger = start_daemon("lb-logger", [
            "-d", str(data), "--listen", f"lbkrb5:{logger_port}:interface=127.0.0.1:keytab={keytab}",
            "--destination-template",
            f"lbkrb5:host={{host}}:port={{port}}:servername=localhost:ccache={realm.cc['wms']}",
            "--rescan-period", "0.2", "--backoff-max", "0.3"], tmp_path, logger_port, tag="logger")

        # register straight with the server, as Alice (the record names no user: her principal does)
        reg = record_from_text("RegJob", job, "UserInterface", SEQ.format(1),
                               {"jdl": "[]", "ns": "ns.example.org", "jobtype": "SIMPLE"}, priority=16)
        results = await send_box(krb5_client(port + 1, realm.cc["alice"]), [reg])
        assert [r.code for r in results] == [ResultCode.STORED], results

        # log a user tag through the logger, as Alice; its interlogger delivers it as wms
        tag = record_from_text("UserTag", job, "UserInterface", SEQ.format(2),
                               {"name": "colour", "value": "blue"})
        results = await send_box(krb5_client(logger_port, realm.cc["alice"]), [tag])
        assert [r.code for r in results] == [ResultCode.STORED], results
        wait_until(lambda: spool_empty(data / "spool"), what="delivery of the spool")

        status, who = await api_get(krb5_client(port, realm.cc["alice"]), "/api/whoami")
        assert (status, who["identity"]) == (200, ALICE)
        status, answer = await api_get(krb5_client(port, realm.cc["alice"]), f"/api/jobs/{job}")
        assert status == 200, answer
        state = answer["job"]["status"]
        assert state["owner"] == ALICE
        assert state["user_tags"] == {"colour": "blue"}

        status, answer = await api_get(krb5_client(port, realm.cc["bob"]), f"/api/jobs/{job}")
        assert status != 200 and "error" in answer, answer

        with pytest.raises(PeerRefusedError):
            await api_get(krb5_client(port, tmp_path / "no-ticket.cc"), "/api/whoami")
    finally:
        for proc in (logger, server):
            if proc is not None:
                stop_daemon(proc)
