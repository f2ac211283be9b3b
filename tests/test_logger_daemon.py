"""The local logger: its batch handler over a real spool, and ``twistd lb-logger``
as a process on a Unix socket (box protocol and legacy DGLOG)."""

from __future__ import annotations

import errno
import getpass
import os
import socket
import struct
import subprocess
import sys

import pytest
import pytest_twisted
from twisted.internet import defer, reactor
from twisted.internet.endpoints import UNIXClientEndpoint, UNIXServerEndpoint
from twisted.internet.threads import deferToThread
from twisted.python import usage

from conftest import REPO
from daemon_support import start_daemon, stop_daemon
from lbtx.logger.errors import SpoolFullError
from lbtx.logger.handler import SpoolingHandler
from lbtx.logger.options import LoggerOptions
from lbtx.logger.spool import Spool
from lbtx.producer import DeferredProducer, Producer, UnavailableError
from lbtx.protocols.box.client import BoxRemoteError, connect_box
from lbtx.protocols.box.messages import ResultCode
from lbtx.protocols.box.server import LOGGER_PORT_FRAMINGS, BoxServerFactory
from lbtx.protocols.legacy_framing.dglog import encode_dglog
from spool_support import event_files, jobid, read_lines, record, records_of


def _without_user(line: bytes) -> bytes:
    return line.replace(b' DG.USER="/DC=org/CN=Alice"', b"")


@pytest_twisted.inlineCallbacks
def test_handler_stamps_validates_and_spools(tmp_path):
    spool = Spool(str(tmp_path / "spool"), reactor=reactor)
    yield spool.start()
    try:
        handler = SpoolingHandler(spool)
        lines = [record(jobid(1), 1), _without_user(record(jobid(1), 2)), b"not ULM at all",
                 record(jobid(2), 3)]
        results = yield handler.handle_batch("unix:carol", lines)
    finally:
        yield spool.close()
    assert [r.code for r in results] == [ResultCode.STORED, ResultCode.STORED,
                                         ResultCode.INVALID, ResultCode.STORED]
    assert results[2].detail == "BROKEN_ULM"
    files = event_files(tmp_path / "spool")
    assert len(files) == 2
    spooled = [r for name in files for r in records_of(read_lines(tmp_path / "spool" / name))]
    assert len(spooled) == 3
    assert sum(b'DG.USER="unix:carol"' in r for r in spooled) == 1   # only where it was unset
    assert sum(b'DG.USER="/DC=org/CN=Alice"' in r for r in spooled) == 2


class _FullSpool:
    def append_many(self, entries):
        return defer.fail(SpoolFullError(errno.ENOSPC, "No space left on device", "/spool/x"))


@pytest_twisted.inlineCallbacks
def test_handler_fails_the_batch_when_the_disk_is_full():
    handler = SpoolingHandler(_FullSpool())
    with pytest.raises(SpoolFullError) as caught:
        yield handler.handle_batch("anonymous", [record(jobid(1), 1)])
    assert caught.value.errno == errno.ENOSPC


class _HalfFullSpool:
    """Stores the first line of a batch, fails the others (a disk that filled up)."""

    def __init__(self):
        self.calls = []

    def append_many(self, entries):
        self.calls.append(list(entries))
        return defer.succeed([object()] + [SpoolFullError(errno.ENOSPC, "No space left", "/x")]
                             * (len(entries) - 1))


@pytest_twisted.inlineCallbacks
def test_handler_fails_the_batch_when_any_line_failed():
    """One append_many per batch with only the valid lines; if any of them failed, the
    producer gets the error for the batch, never OK."""
    spool = _HalfFullSpool()
    handler = SpoolingHandler(spool)
    with pytest.raises(SpoolFullError):
        yield handler.handle_batch("anonymous", [record(jobid(1), 1), b"junk",
                                                 record(jobid(1), 2)])
    assert [[job for job, _ in call] for call in spool.calls] == [[jobid(1), jobid(1)]]


def test_options_defaults_and_port(tmp_path):
    options = LoggerOptions()
    options.parseOptions(["--data-dir", str(tmp_path), "-p", "9002"])
    assert options["spool"] == str(tmp_path / "spool")
    assert options.endpoints() == [f"unix:{tmp_path}/logger.sock:mode=666:lockfile=1", "tcp:9002"]
    with pytest.raises(usage.UsageError):
        LoggerOptions().parseOptions(["--no-socket"])
    with pytest.raises(usage.UsageError):
        LoggerOptions().parseOptions(["--destination-template", "tcp:{host}"])


@pytest.fixture
def logger(tmp_path):
    sock = tmp_path / "data" / "logger.sock"
    proc = start_daemon("lb-logger", ["--data-dir", str(tmp_path / "data"), "--no-interlogger"],
                        tmp_path, sock, tag="logger")
    yield sock, tmp_path / "data" / "spool", proc
    stop_daemon(proc)


def dglog(sock_path, line: bytes, timeout: float = 10) -> int:
    """One DGLOG frame to the logger at ``sock_path``; its answer."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(timeout)
        s.connect(str(sock_path))
        s.sendall(encode_dglog(line))
        answer = b""
        while len(answer) < 4:
            chunk = s.recv(4 - len(answer))
            assert chunk, "the logger closed without answering"
            answer += chunk
    return struct.unpack("<i", answer)[0]


@pytest_twisted.inlineCallbacks
def test_lb_logger_process_box_and_dglog(logger):
    sock, spool, proc = logger
    client = yield connect_box(UNIXClientEndpoint(reactor, str(sock)), clock=reactor)
    try:
        results = yield client.send_batch([_without_user(record(jobid(1), 1)), b"DATE=x"])
    finally:
        client.transport.loseConnection()
    assert [r.code for r in results] == [ResultCode.STORED, ResultCode.INVALID]
    assert dglog(sock, _without_user(record(jobid(1), 2))) == 0
    assert dglog(sock, b'DATE=20240301121500.000000 DG.EVNT="Nonsense"') != 0
    lines = records_of(read_lines(spool / event_files(spool)[0]))
    assert len(lines) == 2
    assert all(f'DG.USER="unix:{getpass.getuser()}"'.encode() in ln for ln in lines)



@pytest_twisted.inlineCallbacks
def test_a_full_disk_is_an_error_to_every_producer_never_ok(tmp_path):
    """Box producers get a retryable error, DGLOG producers ENOSPC, the blocking
    producer library an UnavailableError."""
    path = str(tmp_path / "full.sock")
    factory = BoxServerFactory(SpoolingHandler(_FullSpool()), clock=reactor,
                               framings=LOGGER_PORT_FRAMINGS)
    port = yield UNIXServerEndpoint(reactor, path).listen(factory)
    try:
        client = yield connect_box(UNIXClientEndpoint(reactor, path), clock=reactor)
        try:
            with pytest.raises(BoxRemoteError) as caught:
                yield client.send_batch([record(jobid(1), 1)])
            assert caught.value.retryable
        finally:
            client.transport.loseConnection()
        answer = yield deferToThread(dglog, path, record(jobid(1), 2))
        assert answer == errno.ENOSPC

        def blocking():
            producer = Producer(path, source="LRMS", timeout=5)
            ctx = producer.context(jobid(1))
            try:
                producer.log(ctx, "Running", node="wn01")
            finally:
                producer.close()
        with pytest.raises(UnavailableError) as caught:
            yield deferToThread(blocking)
        assert caught.value.retryable
    finally:
        yield port.stopListening()


def test_a_second_logger_on_the_same_spool_exits(logger, tmp_path):
    sock, spool, proc = logger
    second = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "twistd"), "-n", "--logfile", "-",
         "--pidfile", str(tmp_path / "second.pid"), "lb-logger", "--data-dir",
         str(tmp_path / "data"), "--socket", str(tmp_path / "second.sock"), "--no-interlogger"],
        cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True,
        text=True, timeout=60)
    assert "cannot open the spool" in second.stdout
    assert second.returncode == 1       # a failure, for a supervisor to see
    assert proc.poll() is None          # the first one goes on


@pytest_twisted.inlineCallbacks
def test_log_many_through_a_real_logger(logger):
    """Producer.log_many and DeferredProducer.log_many (2,500 events: three requests
    of at most the logger's max_batch, pipelined) are acknowledged only once on
    disk: every event is in its job's file, in order, with the codes returned."""
    sock, spool, proc = logger
    JOB = "https://lb.example.org:9000/"

    def blocking():
        with Producer(str(sock), source="LRMS") as producer:
            a = producer.context(JOB + "manyAAAAAAAAAAAAAAAAAA")
            b = producer.context(JOB + "manyBBBBBBBBBBBBBBBBBB")
            return producer.log_many([(a, "Running", {"node": "wn1"}),
                                      (b, "Running", {"node": "wn2"}),
                                      (a, "UserTag", {"name": "tag", "value": "v"})])
    codes = yield deferToThread(blocking)
    assert len(codes) == 3 and codes[0] != codes[2]
    producer = DeferredProducer(reactor, str(sock), source="LRMS", timeout=30)
    try:
        ctx = producer.context(JOB + "manyCCCCCCCCCCCCCCCCCC")
        codes = yield producer.log_many([(ctx, "Running", {"node": f"wn{i}"})
                                         for i in range(2500)])
    finally:
        producer.close()
    assert codes[-1] == ctx.seqcode and len(set(codes)) == 2500
    by_job = {}
    for name in event_files(spool):
        lines = records_of(read_lines(spool / name))
        by_job[name.split(".")[0]] = lines
    assert len(by_job["manyAAAAAAAAAAAAAAAAAA"]) == 2 and len(by_job["manyBBBBBBBBBBBBBBBBBB"]) == 1
    nodes = [ln.rsplit(b'DG.RUNNING.NODE="', 1)[1].rstrip(b'"')
             for ln in by_job["manyCCCCCCCCCCCCCCCCCC"]]
    assert nodes == [f"wn{i}".encode() for i in range(2500)]
