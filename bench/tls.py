"""TLS against plaintext on a real ``twistd lb-server``: handshakes per second and intake events per second.

One server process (SQLite under a temporary directory) listens for intake on a
plaintext ``tcp:`` port (its peers are ``--peer-identity``, the same user) and on
an ``lbtls:`` port (mutual X.509; the client authenticates with a chain of two
RSA proxies above its user certificate, as a grid client would). This process
is the client:

* **handshakes/s**: full handshakes (no session resumption: the server offers
  none), ``--concurrency`` at a time; each counts once the server has verified
  the client's chain (proxies resolved, CA, CRL), the client the server's
  certificate and name, and the server's box welcome came back;
* **events/s**: on one persistent connection per run, ``--events`` UserTag events
  of ``--jobs`` registered jobs in batches of ``--batch`` with ``--window``
  batches outstanding, each acknowledged once committed; over TLS and over
  plaintext alternately (ABBA), ``--rounds`` times each, fresh jobs every time;
  beside the rate, the server process's CPU time per event (from /proc), which a
  busy machine disturbs much less than the wall-clock rate.

Client and server share the machine, so a handshake costs both sides' CPU here.

Usage: ``.venv/bin/python bench/tls.py [--events N] [--batch B] [--window W]
[--rounds R] [--handshakes N] [--concurrency C]``

Issue 6's goal: TLS intake >= 80% of plaintext intake.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

import twisted.plugins  # noqa: E402
from twisted.internet import defer, task  # noqa: E402
from twisted.internet.endpoints import clientFromString  # noqa: E402

from lbtx.gss import issuing  # noqa: E402
from lbtx.gss.issuing import parse_dn  # noqa: E402
from lbtx.testing.ports import free_port  # noqa: E402
from lbtx.gss.trust import subject_hash  # noqa: E402
from lbtx.producer.records import record_from_text  # noqa: E402
from lbtx.protocols.box.client import connect_box  # noqa: E402
from lbtx.protocols.box.messages import ResultCode  # noqa: E402
from processes import cpu_seconds  # noqa: E402

# the endpoint plug-ins live in the repository's twisted/plugins/
if str(ROOT / "twisted" / "plugins") not in twisted.plugins.__path__:
    twisted.plugins.__path__.append(str(ROOT / "twisted" / "plugins"))
TWISTD = os.path.join(os.path.dirname(sys.executable), "twistd")
USER = "/DC=org/DC=example/CN=Bench User"
SEQ = "UI={:06d}:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


def make_pki(root: Path) -> dict:
    """CA directory, host credentials and a user proxy file (two proxies), RSA 2048."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca = issuing.make_ca(parse_dn("/DC=org/DC=example/CN=Bench CA"), now)
    cadir = root / "certificates"
    cadir.mkdir()
    digest = subject_hash(ca.cert)
    (cadir / f"{digest}.0").write_bytes(issuing.cert_pem(ca.cert))
    crl = issuing.make_crl(ca, [], now)
    from cryptography.hazmat.primitives import serialization
    (cadir / f"{digest}.r0").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    host = issuing.make_end_entity(ca, parse_dn("/DC=org/DC=example/CN=localhost"), now, server=True,
                                   dns_names=["localhost"])
    user = issuing.make_end_entity(ca, parse_dn(USER), now)
    proxy = issuing.make_proxy(issuing.make_proxy(user, now), now)
    files = {"cadir": cadir, "hostcert": root / "hostcert.pem", "hostkey": root / "hostkey.pem",
             "proxy": root / "proxy.pem"}
    files["hostcert"].write_bytes(issuing.cert_pem(host.cert))
    files["hostkey"].write_bytes(issuing.key_pem(host.key))
    files["proxy"].write_bytes(proxy.pem())
    for name in ("hostkey", "proxy"):
        files[name].chmod(0o600)
    return files


def start_server(root: Path, pki: dict) -> tuple[subprocess.Popen, dict]:
    ports = {"query": free_port(), "tcp": free_port(), "tls": free_port()}
    tls = (f"interface=127.0.0.1:cert={pki['hostcert']}:key={pki['hostkey']}:cadir={pki['cadir']}")
    args = [TWISTD, "-n", "--logfile", str(root / "server.log"), "--pidfile", str(root / "server.pid"),
            "lb-server", "--data-dir", str(root / "data"),
            "--listen-query", f"tcp:{ports['query']}:interface=127.0.0.1",
            "--listen-store", f"tcp:{ports['tcp']}:interface=127.0.0.1",
            "--listen-store", f"lbtls:{ports['tls']}:{tls}",
            "--server-name", f"127.0.0.1:{ports['query']}", "--peer-identity", USER]
    proc = subprocess.Popen(args, cwd=root, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"lb-server exited {proc.returncode}: {(root / 'server.log').read_text()}")
        try:
            socket.create_connection(("127.0.0.1", ports["tls"]), timeout=0.5).close()
            socket.create_connection(("127.0.0.1", ports["tcp"]), timeout=0.5).close()
            return proc, ports
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("lb-server did not start")


def descriptions(ports: dict, pki: dict) -> dict:
    return {"plaintext": f"tcp:host=127.0.0.1:port={ports['tcp']}:timeout=10",
            "TLS": (f"lbtls:host=127.0.0.1:port={ports['tls']}:servername=localhost"
                    f":cert={pki['proxy']}:cadir={pki['cadir']}:timeout=10")}


def workload(query_port: int, jobs: int, events: int) -> tuple[list[bytes], list[bytes]]:
    """RegJob lines for ``jobs`` new jobs and ``events`` UserTag lines spread over them."""
    ids = [f"https://127.0.0.1:{query_port}/tls{uuid.uuid4().hex[:19]}" for _ in range(jobs)]
    regs = [record_from_text("RegJob", j, "UserInterface", SEQ.format(1),
                             {"jdl": "[]", "ns": "ns.example.org", "jobtype": "SIMPLE"},
                             user=USER, priority=16).encode() for j in ids]
    tags = [record_from_text("UserTag", ids[i % jobs], "UserInterface", SEQ.format(2 + i // jobs),
                             {"name": f"t{i // jobs}", "value": "x" * 40}, user=USER).encode()
            for i in range(events)]
    return regs, tags


async def send_all(client, lines: list[bytes], batch: int, window: int) -> None:
    batches = [lines[i:i + batch] for i in range(0, len(lines), batch)]
    pending: list = []
    for b in batches:
        if len(pending) >= window:
            await pending.pop(0)
        pending.append(defer.ensureDeferred(_checked(client.send_batch(b, timeout=120))))
    for d in pending:
        await d


async def _checked(d) -> None:
    results = await d
    bad = [r for r in results if r.code is not ResultCode.STORED]
    if bad:
        raise SystemExit(f"not stored: {bad[:3]}")


async def intake(reactor, description: str, query_port: int, args, server_pid: int) -> tuple[float, float]:
    """(events/s, server CPU microseconds per event) of one run on one persistent
    connection (its jobs registered first, not timed)."""
    regs, tags = workload(query_port, args.jobs, args.events)
    client = await connect_box(clientFromString(reactor, description), clock=reactor, connect_timeout=30)
    try:
        await send_all(client, regs, args.batch, args.window)
        cpu = cpu_seconds(server_pid)
        start = time.perf_counter()
        await send_all(client, tags, args.batch, args.window)
        elapsed = time.perf_counter() - start
        cpu = cpu_seconds(server_pid) - cpu
    finally:
        client.transport.loseConnection()
    return len(tags) / elapsed, cpu / len(tags) * 1e6


async def handshakes(reactor, description: str, count: int, concurrency: int,
                     server_pid: int) -> tuple[float, float, float]:
    """(connections/s, server and client CPU milliseconds per connection): full
    connections (handshake, both verifications, box welcome)."""
    done = 0
    endpoint = clientFromString(reactor, description)  # credentials and CA directory read once

    async def one() -> None:
        nonlocal done
        while done < count:
            done += 1
            client = await connect_box(endpoint, clock=reactor, connect_timeout=30)
            client.transport.loseConnection()

    server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
    start = time.perf_counter()
    await defer.gatherResults([defer.ensureDeferred(one()) for _ in range(concurrency)],
                              consumeErrors=True)
    elapsed = time.perf_counter() - start
    return (count / elapsed, (cpu_seconds(server_pid) - server_cpu) / count * 1e3,
            (time.process_time() - client_cpu) / count * 1e3)


async def main(reactor, args) -> None:
    root = Path(tempfile.mkdtemp(prefix="lbtx-bench-tls-", dir=args.dir))
    proc = None
    try:
        pki = make_pki(root)
        proc, ports = start_server(root, pki)
        paths = descriptions(ports, pki)
        print(f"lb-server: SQLite, intake on tcp:{ports['tcp']} and lbtls:{ports['tls']}; "
              f"client proxy chain: user + 2 RSA proxies")
        for name in ("TLS", "plaintext"):
            rate, server_ms, client_ms = await handshakes(reactor, paths[name], args.handshakes,
                                                          args.concurrency, proc.pid)
            print(f"connections/s {name:9s} {rate:8.1f}  ({args.handshakes} connections, "
                  f"{args.concurrency} at a time{', full mutual handshakes' if name == 'TLS' else ''}; "
                  f"CPU per connection: server {server_ms:.2f} ms, client {client_ms:.2f} ms)")
        warm = argparse.Namespace(**{**vars(args), "events": 1000})
        for name in ("TLS", "plaintext"):
            await intake(reactor, paths[name], ports["query"], warm, proc.pid)
        rates: dict[str, list[float]] = {"TLS": [], "plaintext": []}
        cpus: dict[str, list[float]] = {"TLS": [], "plaintext": []}
        for i in range(args.rounds):  # ABBA order, so that a drift favours neither
            for name in (("TLS", "plaintext") if i % 2 == 0 else ("plaintext", "TLS")):
                rate, cpu = await intake(reactor, paths[name], ports["query"], args, proc.pid)
                rates[name].append(rate)
                cpus[name].append(cpu)
        for name in rates:
            print(f"events/s      {name:9s} {statistics.median(rates[name]):8.0f}  (median of "
                  f"{len(rates[name])}: " + ", ".join(f"{v:.0f}" for v in rates[name]) + ")")
        for name in cpus:
            print(f"server CPU/event {name:9s} {statistics.median(cpus[name]):6.0f} us  (median of: "
                  + ", ".join(f"{v:.0f}" for v in cpus[name])
                  + f"; one saturated core: {1e6 / statistics.median(cpus[name]):.0f} events/s)")
        ratio = statistics.median(rates["TLS"]) / statistics.median(rates["plaintext"])
        capacity = statistics.median(cpus["plaintext"]) / statistics.median(cpus["TLS"])
        print(f"TLS / plaintext intake: {ratio:.0%} of events/s, {capacity:.0%} of server capacity "
              "(goal >= 80%)")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


def run() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=5_000, help="UserTag events per intake run")
    p.add_argument("--jobs", type=int, default=200, help="jobs the events are spread over")
    p.add_argument("--batch", type=int, default=100, help="events per request")
    p.add_argument("--window", type=int, default=4, help="requests outstanding")
    p.add_argument("--rounds", type=int, default=6, help="intake runs of each kind (ABBA order)")
    p.add_argument("--handshakes", type=int, default=300, help="connections per handshake measurement")
    p.add_argument("--concurrency", type=int, default=4, help="connections opened at a time")
    p.add_argument("--dir", help="where the temporary server directory goes")
    p.add_argument("--keep", action="store_true", help="keep the server directory (its log)")
    args = p.parse_args()
    task.react(lambda reactor: defer.ensureDeferred(main(reactor, args)))
    return 0


if __name__ == "__main__":
    sys.exit(run())
