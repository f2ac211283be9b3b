"""The producer library without daemons: sequence codes (formats.md §3.2),
records validated before they leave, addresses, timeouts of the blocking client."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from lbtx.errors import LBFormatError
from lbtx.producer import Producer, UnavailableError
from lbtx.producer.address import Address, logger_address, server_address
from lbtx.producer.records import make_record, record_from_text
from lbtx.producer.sequence import Sequence
from lbtx.schema import Source
from lbtx import ulm

JOB = "https://lb.example.org:9000/9fNCdbnzCbuQZAX7wwrmrw"
ZERO = "UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000:APP=000000:LBS=000000"


def test_sequence_installs_then_increments_its_own_counter():
    seq = Sequence(Source.USER_INTERFACE, ZERO, environ={})
    assert seq.current.startswith("UI=000001:NS=0000000000")       # RegJob carries UI=000001
    assert seq.advance().startswith("UI=000002:")
    wm = Sequence(Source.WORKLOAD_MANAGER, seq.current, environ={})
    assert wm.current == seq.current.replace("WM=000000", "WM=000001")  # others untouched


def test_sequence_from_the_environment_and_sources_without_counters():
    env = {"EDG_WL_SEQUENCE": ZERO.replace("NS=0000000000", "NS=0000000007")}
    seq = Sequence(Source.LOG_MONITOR, environ=env)
    assert "NS=0000000007" in seq.current and "LM=000001" in seq.current
    assert Sequence(Source.CREAM_INTERFACE, ZERO, environ={}).current == ZERO
    assert Sequence(Source.PBS_SERVER, environ={}).current.startswith("CLIENT=000000:SERVER=0000000001")


def test_records_are_validated_before_they_leave():
    line = make_record("Running", JOB, "LRMS", ZERO, node="wn01")
    ev = ulm.parse(line)
    assert ev.type_name == "Running" and ev.node == "wn01" and ev.user is None
    with pytest.raises(LBFormatError):
        make_record("NoSuchEvent", JOB, "LRMS", ZERO)
    with pytest.raises(LBFormatError):
        record_from_text("Transfer", JOB, "NetworkServer", ZERO, {"destination": "Nowhere"})
    with pytest.raises(LBFormatError):
        record_from_text("Running", JOB, "LRMS", ZERO, {"no_such": "x"})
    text = record_from_text("running", JOB, "LRMS", ZERO, {"node": 'wn "01"'}, host="a b")
    assert ulm.parse(text).node == 'wn "01"'


def test_addresses():
    assert logger_address(None, {}) == Address(path="lbtx-data/logger.sock")
    assert logger_address(None, {"GLITE_WMS_LOG_DESTINATION": "ui.example.org"}) == \
        Address(host="ui.example.org", port=9002)
    assert logger_address("/run/lb.sock", {}) == Address(path="/run/lb.sock")
    assert logger_address("h:1234", {}) == Address(host="h", port=1234)
    assert server_address(JOB) == Address(host="lb.example.org", port=9001)


def test_a_logger_that_never_answers_times_out():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    producer = Producer(f"127.0.0.1:{listener.getsockname()[1]}", source="LRMS", timeout=0.3)
    ctx = producer.context(JOB, ZERO)
    before = ctx.seqcode
    start = time.monotonic()
    with pytest.raises(UnavailableError):
        producer.log(ctx, "Running", node="wn01")
    assert time.monotonic() - start < 3
    assert ctx.seqcode != before          # the counter moves on after a failed attempt too
    producer.close()
    listener.close()


def test_no_logger_is_unavailable(tmp_path):
    producer = Producer(str(tmp_path / "none.sock"), source="LRMS", timeout=1)
    with pytest.raises(UnavailableError):
        producer.log(producer.context(JOB, ZERO), "Running", node="wn01")
