"""Intake of records without ``DG.USER``: the peer's identity is the sender, and the
stored text says so (the store reads every record back with its sender)."""

from __future__ import annotations

from twisted.internet import defer

from lbtx import ulm
from lbtx.acceptance import Delivery, Outcome
from lbtx.server.intake import IntakeHandler

LINE = ('DATE=20240501120000.000000 HOST="ui.example.org" PROG=edg-wms LVL=SYSTEM '
        'DG.PRIORITY=16 DG.SOURCE="UserInterface" DG.SRC_INSTANCE="" DG.EVNT="RegJob" '
        'DG.JOBID="https://lb.example.org:9000/q7Xk2mVb0Lr9T1aZcW3eYg" '
        'DG.SEQCODE="UI=000001:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:'
        'LRMS=000000:APP=000000:LBS=000000" DG.REGJOB.JDL="blabla" DG.REGJOB.NS="NS" '
        'DG.REGJOB.JOBTYPE="SIMPLE"')


class RecordingStore:
    def __init__(self):
        self.calls = []

    def accept_events(self, events, texts):
        self.calls.append((events, texts))
        return defer.succeed([Outcome(Delivery.STORED) for _ in events])


def test_peer_identity_goes_into_the_stored_text():
    """A record without DG.USER is stored with the peer's identity written into it."""
    store = RecordingStore()
    d = IntakeHandler(store).handle_batch("/CN=Alice", [LINE.encode()])
    results = []
    d.addCallback(results.append)
    assert results and results[0][0].accepted
    (events, texts), = store.calls
    assert events[0].user == "/CN=Alice"
    again = ulm.parse(texts[0], require_user=True)
    assert again.user == "/CN=Alice" and again == events[0]


def test_a_sender_given_in_the_record_is_kept_verbatim():
    """A record that names its sender is stored exactly as it came."""
    store = RecordingStore()
    line = LINE.replace('DG.REGJOB.JDL', 'DG.USER="/CN=Bob" DG.REGJOB.JDL')
    IntakeHandler(store).handle_batch("/CN=Alice", [line.encode()])
    (events, texts), = store.calls
    assert texts == [line] and events[0].user == "/CN=Bob"
