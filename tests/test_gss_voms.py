"""VOMS attributes in proxy certificates (lbtx/gss/voms.py).

Proxies with VOMS attribute certificates made by ``lbtx ca`` (a real subprocess)
give their FQANs to the peer identity over a real TLS connection; expired
attributes, attributes of another holder or signer, and malformed, truncated,
oversized or random extensions are logged and ignored, never a crash nor a
refusal of the peer.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import pytest_twisted
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.logger import globalLogPublisher

from gss_support import key
from lbtx.cli.main import main
from lbtx.gss import der, issuing, voms
from lbtx.gss.credentials import load_credentials
from lbtx.gss.issuing import parse_dn
from lbtx.gss.proxy import resolve_proxies
from lbtx.gss.tls import TLSTransport
from lbtx.gss.trust import TrustStore
from lbtx.gss.voms import VOMSError, VomsTrust, parse_acseq, read_fqans
from lbtx.producer.records import make_record, record_from_text
from lbtx.protocols.box.messages import ResultCode
from lbtx.schema import ENUMS
from test_gss_tls import logs, serve, talk  # noqa: F401  (logs: a fixture)

FQANS = ["/atlas/prod/Role=production/Capability=NULL", "/atlas/Role=NULL/Capability=NULL"]
NOW = datetime.datetime.now(datetime.timezone.utc)
HOUR = datetime.timedelta(hours=1)


def run_lbtx(*args) -> tuple[int, str, str]:
    """``lbtx ARGS`` in this process (its startup would dominate): (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def lbtx(*args) -> str:
    code, out, err = run_lbtx(*args)
    if code != 0:
        raise AssertionError(f"lbtx {' '.join(map(str, args))} failed: {err}")
    return out


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> Path:
    """A CA made by lbtx ca (in this process), with a host, two users, a VOMS server and their proxies."""
    d = tmp_path_factory.mktemp("vomsca") / "ca"
    lbtx("ca", "init", d, "--key-type", "ec")
    lbtx("ca", "host", d, "localhost", "--key-type", "ec")
    for user in ("alice", "bob"):
        lbtx("ca", "user", d, user, "--key-type", "ec")
    lbtx("ca", "voms", d, "voms.example.org", "--key-type", "ec")
    lbtx("ca", "voms", d, "rogue.example.org", "--key-type", "ec", "--out-cert", d / "rogue-cert.pem",
         "--out-key", d / "rogue-key.pem")
    (d / "vomsdir" / "rogue.example.org.pem").unlink()  # issued, not trusted

    def proxy(user, name, *fqans, voms_cert=None, extra=()):
        args = ["ca", "proxy", "--cert", d / "users" / user / "usercert.pem", "--key",
                d / "users" / user / "userkey.pem", "--out", d / f"{name}.pem", "--key-type", "ec", *extra]
        for fqan in fqans:
            args += ["--voms-fqan", fqan]
        if fqans:
            args += ["--voms-cert", voms_cert or d / "voms" / "voms.example.org" / "vomscert.pem"]
        lbtx(*args)

    proxy("alice", "alice-plain")
    proxy("alice", "alice-voms", *FQANS)
    proxy("alice", "alice-expired", *FQANS, extra=["--voms-hours", "-1"])
    proxy("alice", "alice-rogue", *FQANS, voms_cert=d / "rogue-cert.pem",
          extra=["--voms-key", d / "rogue-key.pem"])
    proxy("bob", "bob-atlas", "/atlas/prod/Role=production")
    proxy("bob", "bob-cms", "/cms/Role=admin")
    proxy("bob", "bob-plain")
    return d


def server_transport(ca: Path, vomsdir: bool = True) -> TLSTransport:
    host = ca / "hosts" / "localhost"
    return TLSTransport(load_credentials(str(host / "hostcert.pem"), str(host / "hostkey.pem")),
                        TrustStore(str(ca / "certificates")), reactor, 5,
                        VomsTrust.load(ca / "vomsdir") if vomsdir else None)


def client_transport(ca: Path, proxy: str) -> TLSTransport:
    return TLSTransport(load_credentials(str(ca / f"{proxy}.pem")), TrustStore(str(ca / "certificates")),
                        reactor, 5)


async def identity_over_tls(ca: Path, proxy: str, vomsdir: bool = True):
    port, factory = await serve(server_transport(ca, vomsdir))
    try:
        await talk(client_transport(ca, proxy), port)
    finally:
        await port.stopListening()
    (identity, _), = factory.seen
    return identity


def ignored(logs, why: str):  # noqa: F811
    return [e for e in logs.events
            if "ignored VOMS attributes" in e["log_format"] and why in e.get("why", "")]


# --- through real TLS connections, with proxies made by lbtx ca --------------------------------


@pytest_twisted.ensureDeferred
async def test_fqans_from_a_proxy_made_by_lbtx_ca(ca):
    """The server's peer identity carries the FQANs of the proxy's attribute certificate."""
    identity = await identity_over_tls(ca, "alice-voms")
    assert identity.name == "/DC=org/DC=example/CN=alice"
    assert identity.fqans == tuple(FQANS)
    plain = await identity_over_tls(ca, "alice-plain")
    assert plain == identity and plain.fqans == ()


@pytest_twisted.ensureDeferred
async def test_fqans_as_asserted_without_a_vomsdir(ca):
    """Without a VOMS directory the chain's attributes count, whoever signed them."""
    identity = await identity_over_tls(ca, "alice-rogue", vomsdir=False)
    assert identity.fqans == tuple(FQANS)


@pytest_twisted.ensureDeferred
async def test_expired_attributes_ignored_with_a_log_line(ca, logs):  # noqa: F811
    """An expired AC: the peer gets in, without FQANs, and a log line says why."""
    identity = await identity_over_tls(ca, "alice-expired")
    assert identity.name == "/DC=org/DC=example/CN=alice" and identity.fqans == ()
    assert ignored(logs, "expired at")


@pytest_twisted.ensureDeferred
async def test_attributes_of_an_unknown_voms_server_ignored(ca, logs):  # noqa: F811
    """With a VOMS directory, an AC signed by a server not in it is ignored and logged."""
    identity = await identity_over_tls(ca, "alice-rogue")
    assert identity.fqans == ()
    assert ignored(logs, "not in the VOMS directory")


def test_lbtx_ca_verify_prints_the_fqans(ca):
    """As a real subprocess: the identity and its FQANs."""
    result = subprocess.run([sys.executable, "-m", "lbtx.cli.main", "ca", "verify", "--cadir",
                             str(ca / "certificates"), "--vomsdir", str(ca / "vomsdir"),
                             str(ca / "alice-voms.pem")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["/DC=org/DC=example/CN=alice"] + [f"fqan {f}" for f in FQANS]


def test_lbtx_ca_proxy_refuses_bad_voms_options(ca, tmp_path):
    base = ["ca", "proxy", "--cert",
            str(ca / "users" / "bob" / "usercert.pem"), "--key", str(ca / "users" / "bob" / "userkey.pem"),
            "--out", str(tmp_path / "p.pem")]
    voms_cert = str(ca / "voms" / "voms.example.org" / "vomscert.pem")
    for extra, message in [(["--voms-fqan", "/atlas"], "needs --voms-cert"),
                           (["--voms-cert", voms_cert], "need --voms-fqan"),
                           (["--voms-fqan", "atlas", "--voms-cert", voms_cert], "malformed FQAN"),
                           (["--voms-fqan", "/a\tb", "--voms-cert", voms_cert], "control characters")]:
        code, _, err = run_lbtx(*base, *extra)
        assert code == 1 and message in err, (extra, err)
        assert not (tmp_path / "p.pem").exists()


# --- the checks, without sockets ---------------------------------------------------------------


class Chain:
    """A CA, Alice, Bob and a VOMS server, in memory."""

    def __init__(self) -> None:
        self.ca = issuing.make_ca(parse_dn("/DC=org/DC=example/CN=CA"), NOW, key=key())
        self.alice = issuing.make_end_entity(self.ca, parse_dn("/DC=org/DC=example/CN=Alice"), NOW, key=key())
        self.bob = issuing.make_end_entity(self.ca, parse_dn("/DC=org/DC=example/CN=Bob"), NOW, key=key())
        self.voms = issuing.make_end_entity(self.ca, parse_dn("/DC=org/DC=example/CN=voms"), NOW,
                                            server=True, key=key())
        self.trust = VomsTrust([self.voms.cert])
        self.fixed = self.acseq()  # one value (ECDSA signatures differ in length from one to the next)

    def resolved(self, acseq: bytes, signer=None, depth: int = 1):
        proxy = issuing.make_proxy(signer or self.alice, NOW, voms_acseq=acseq, key=key())
        for _ in range(depth - 1):
            proxy = issuing.make_proxy(proxy, NOW, key=key())
        return resolve_proxies(proxy.cert, list(proxy.chain), NOW)

    def acseq(self, fqans=FQANS, holder=None, **kwargs) -> bytes:
        return issuing.make_voms_acseq(self.voms, (holder or self.alice).cert, fqans, NOW, **kwargs)


@pytest.fixture(scope="module")
def chain() -> Chain:
    return Chain()


@pytest.fixture
def log_events():
    events = []

    def observe(event):
        if "ignored VOMS attributes" in event.get("log_format", ""):
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def test_fqans_through_further_proxies(chain):
    """The AC in the first proxy still counts after more delegations; RSA and EC servers sign."""
    assert read_fqans(chain.resolved(chain.acseq(), depth=3), NOW, chain.trust) == tuple(FQANS)
    rsa_voms = issuing.make_end_entity(chain.ca, parse_dn("/DC=org/CN=rsa voms"), NOW, server=True)
    acseq = issuing.make_voms_acseq(rsa_voms, chain.alice.cert, ["/vo"], NOW)
    assert read_fqans(chain.resolved(acseq), NOW, VomsTrust([rsa_voms.cert])) == ("/vo",)
    assert read_fqans(chain.resolved(acseq), NOW, chain.trust) == ()


def test_validity_period(chain, log_events):
    acseq = chain.acseq(hours=1)
    resolved = chain.resolved(acseq)
    assert read_fqans(resolved, NOW + 0.5 * HOUR, chain.trust) == tuple(FQANS)
    assert read_fqans(resolved, NOW + 2 * HOUR, chain.trust) == ()
    assert read_fqans(resolved, NOW - HOUR, chain.trust) == ()
    assert [e["why"].split(" ")[0] for e in log_events] == ["expired", "not"]


def test_attributes_of_another_holder_ignored(chain, log_events):
    """Bob's AC pasted into Alice's proxy gives Alice nothing."""
    assert read_fqans(chain.resolved(chain.acseq(holder=chain.bob)), NOW, chain.trust) == ()
    assert "holder" in log_events[0]["why"]


def test_a_forged_signature_is_ignored(chain, log_events):
    """An AC whose bytes were changed after signing (another FQAN) does not verify."""
    acseq = chain.acseq(fqans=["/atlas/Role=user"])
    forged = acseq.replace(b"/atlas/Role=user", b"/atlas/Role=admi")
    assert parse_acseq(forged)[0].fqans == ("/atlas/Role=admi",)
    assert read_fqans(chain.resolved(forged), NOW, chain.trust) == ()
    assert "does not verify" in log_events[0]["why"]


def test_malformed_extension_in_a_proxy_logged_not_raised(chain, log_events):
    resolved = chain.resolved(b"\x30\x03\x02\x01")
    assert read_fqans(resolved, NOW, chain.trust) == () and read_fqans(resolved, NOW) == ()
    assert "malformed" in log_events[0]["why"]


def test_every_truncation_is_a_voms_error(chain):
    acseq = chain.acseq()
    for n in range(len(acseq)):
        with pytest.raises(VOMSError):
            parse_acseq(acseq[:n])
    with pytest.raises(VOMSError):
        parse_acseq(acseq + b"\x00")


def _ac_list(*acs: bytes) -> bytes:
    return der.encode_sequence(*acs)


def test_oversized_and_hostile_values(chain):
    one = list(der.elements(der.read_one(chain.acseq(), der.TAG_SEQUENCE)))[0][2]
    with pytest.raises(VOMSError, match="at most"):
        parse_acseq(_ac_list(*[one] * (voms.MAX_ACS + 1)))
    assert len(parse_acseq(_ac_list(one, one))) == 2
    with pytest.raises(VOMSError, match="bytes"):
        chain.acseq(fqans=["/" + "x" * voms.MAX_FQAN_LENGTH])
    with pytest.raises(VOMSError, match="no attribute certificate"):
        parse_acseq(_ac_list())
    with pytest.raises(VOMSError):
        parse_acseq(b"\x30\x84\xff\xff\xff\xff")  # a 4 GiB length in a few bytes
    with pytest.raises(VOMSError):
        parse_acseq(b"\x30\x85\x01\x00\x00\x00\x00")
    # an FQAN with a control character, slipped past the issuer's checks
    good = chain.acseq(fqans=["/atlas/x"])
    with pytest.raises(VOMSError, match="control"):
        parse_acseq(good.replace(b"/atlas/x", b"/atlas\n\x01"))
    with pytest.raises(VOMSError, match="UTF-8"):
        parse_acseq(good.replace(b"/atlas/x", b"/atlas\xff\xfe"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_extensions_give_voms_errors_only(chain, data):
    """Random bytes and random corruptions of a valid value: parsed or VOMSError, nothing else."""
    acseq = chain.fixed
    if data.draw(st.booleans()):
        value = data.draw(st.binary(max_size=200))
    else:
        value = bytearray(acseq)
        for _ in range(data.draw(st.integers(1, 4))):
            value[data.draw(st.integers(0, len(value) - 1))] = data.draw(st.integers(0, 255))
        value = bytes(value)
    try:
        acs = parse_acseq(value)
    except VOMSError:
        return
    for ac in acs:
        try:
            voms.check(ac, [chain.alice.cert], NOW, chain.trust)
        except VOMSError:
            pass


def test_times():
    assert der.decode_time(der.TAG_GENERALIZED_TIME, b"20240301120000Z") == datetime.datetime(
        2024, 3, 1, 12, tzinfo=datetime.timezone.utc)
    assert der.decode_time(der.TAG_UTC_TIME, b"240301120000Z").year == 2024
    for tag, bad in [(der.TAG_GENERALIZED_TIME, b"20241301120000Z"), (der.TAG_GENERALIZED_TIME, b"2024"),
                     (der.TAG_GENERALIZED_TIME, b"20240301120000+0100"), (der.TAG_UTC_TIME, b"\xff" * 13),
                     (der.TAG_INTEGER, b"20240301120000Z")]:
        with pytest.raises(der.DERError):
            der.decode_time(tag, bad)


def test_vomsdir_loading(tmp_path, chain):
    with pytest.raises(ValueError):
        VomsTrust.load(tmp_path / "missing")
    with pytest.raises(ValueError):
        VomsTrust.load(tmp_path)
    (tmp_path / "atlas").mkdir()
    (tmp_path / "atlas" / "voms.pem").write_bytes(issuing.cert_pem(chain.voms.cert))
    (tmp_path / "atlas" / "junk.pem").write_text("not a certificate")
    assert [c.subject for c in VomsTrust.load(tmp_path).certificates] == [chain.voms.cert.subject]


# --- an ACL group grant through a real lb-server on lbtls: ports ---------------------------------


SEQ = "UI={:06d}:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


def change_acl(job: str, n: int, user_id: str, id_type: str) -> str:
    return make_record("ChangeACL", job, "UserInterface", SEQ.format(n), user_id=user_id,
                       user_id_type=ENUMS["ChangeACLUserIdType"][id_type],
                       permission=ENUMS["ChangeACLPermission"].READ,
                       permission_type=ENUMS["ChangeACLPermissionType"].ALLOW,
                       operation=ENUMS["ChangeACLOperation"].ADD)


@pytest_twisted.ensureDeferred
async def test_acl_grants_through_fqans_over_tls(ca, tmp_path):
    """Alice's jobs grant READ to the VOMS group atlas:prod and to the FQAN /cms/Role=admin;
    Bob reads exactly the job his proxy's attributes are granted, over TLS to a real lb-server."""
    from daemon_support import free_port_pair, start_daemon, stop_daemon
    from endpoint_client_support import api_get, send_box

    port = free_port_pair()
    host = ca / "hosts" / "localhost"
    tls = (f"interface=127.0.0.1:cert={host / 'hostcert.pem'}:key={host / 'hostkey.pem'}"
           f":cadir={ca / 'certificates'}:vomsdir={ca / 'vomsdir'}")

    def client(p: int, proxy: str) -> str:
        return (f"lbtls:host=127.0.0.1:port={p}:servername=localhost:cert={ca / (proxy + '.pem')}"
                f":cadir={ca / 'certificates'}:timeout=5")

    atlas_job = f"https://127.0.0.1:{port}/voms{uuid.uuid4().hex[:18]}"
    cms_job = f"https://127.0.0.1:{port}/voms{uuid.uuid4().hex[:18]}"
    server = start_daemon("lb-server", [
        "--data-dir", str(tmp_path / "server-data"),
        "--listen-store", f"lbtls:{port + 1}:{tls}", "--listen-query", f"lbtls:{port}:{tls}",
        "--server-name", f"127.0.0.1:{port}"], tmp_path, [port + 1, port], tag="server")
    try:
        lines = []
        for job, (user_id, id_type) in [(atlas_job, ("atlas:prod", "GROUP")),
                                        (cms_job, ("/cms/Role=admin", "FQAN"))]:
            lines += [record_from_text("RegJob", job, "UserInterface", SEQ.format(1),
                                       {"jdl": "[]", "ns": "ns.example.org", "jobtype": "SIMPLE"},
                                       priority=16),
                      change_acl(job, 2, user_id, id_type)]
        results = await send_box(client(port + 1, "alice-plain"), lines)
        assert [r.code for r in results] == [ResultCode.STORED] * len(lines), results

        status, who = await api_get(client(port, "bob-atlas"), "/api/whoami")
        assert who == {"identity": "/DC=org/DC=example/CN=bob", "fqans": ["/atlas/prod/Role=production"]}

        readable = {}
        for proxy in ("alice-plain", "bob-atlas", "bob-cms", "bob-plain"):
            for job in (atlas_job, cms_job):
                status, answer = await api_get(client(port, proxy), f"/api/jobs/{job}")
                if status == 200:
                    assert answer["job"]["status"]["owner"] == "/DC=org/DC=example/CN=alice"
                    readable.setdefault(proxy, []).append(job)
                else:
                    assert "error" in answer, answer
    finally:
        stop_daemon(server)
    assert readable == {"alice-plain": [atlas_job, cms_job], "bob-atlas": [atlas_job], "bob-cms": [cms_job]}


def test_lbtls_vomsdir_keyword(ca, tmp_path):
    """vomsdir= is read when the description is parsed: a directory without certificates fails then."""
    from twisted.internet.endpoints import serverFromString

    import test_gss_endpoints  # noqa: F401  (puts the repository's plugins on the plugin path)

    host = ca / "hosts" / "localhost"
    base = f"lbtls:0:interface=127.0.0.1:cert={host / 'hostcert.pem'}:key={host / 'hostkey.pem'}" \
           f":cadir={ca / 'certificates'}"
    assert serverFromString(reactor, f"{base}:vomsdir={ca / 'vomsdir'}") is not None
    with pytest.raises(ValueError, match="no VOMS server certificate"):
        serverFromString(reactor, f"{base}:vomsdir={tmp_path}")
