"""The compiled fast paths against their references: :func:`lbtx.ulm.parse` (whose fast path
:func:`lbtx.ulm._parse_fast` declines what it is not sure of) must give exactly what
``_parse_reference`` gives, event or error; each class's compiled ``validate`` exactly what
``_validate_reference`` gives. Inputs: real streams, the samples of test_ulm mutated, field soup,
hypothesis events written out, and events holding wrong values.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from test_ulm import (EXAMPLE_REGJOB, EXAMPLE_RUNNING, SAMPLE_LINES, SHORT_LINES, _SOUP_KEYS,
                      _SOUP_VALUES, _mutate, _mutation, _real_or_sample, event_strategy)

from lbtx import ulm
from lbtx.errors import LBFormatError
from lbtx.events import EVENT_CLASSES, Event, _validate_reference
from lbtx.jobid import JobId, NotifId
from lbtx.schema import EVENT_SPECS, HEADER, Level, Source
from lbtx.timeval import Timeval

_OPTIONS = [(False, True), (True, True), (False, False), (True, False)]


def _outcome(fn):
    try:
        return "ok", fn()
    except LBFormatError as e:
        return "error", (type(e), str(e), e.code, e.key, e.position)


def same_as_reference(line: str) -> bool:
    """parse(line) under every option agrees with the reference; True if the fast path took it."""
    took = False
    for require_user, require_job_id in _OPTIONS:
        kw = dict(require_user=require_user, require_job_id=require_job_id)
        ref = _outcome(lambda: ulm._parse_reference(line, ulm.DEFAULT_MAX_LENGTH, require_user,
                                                     require_job_id))
        got = _outcome(lambda: ulm.parse(line, **kw))
        assert got[0] == ref[0], (line, kw, got, ref)
        if ref[0] == "ok":
            assert type(got[1]) is type(ref[1]) and got[1] == ref[1], (line, kw, got, ref)
            assert ulm.format(got[1]) == ulm.format(ref[1])
        else:
            assert got[1] == ref[1], (line, kw)
        fast = ulm._parse_fast(line, require_user, require_job_id) if "\0" not in line else None
        if fast is not None:
            took = True
            assert ref[0] == "ok" and fast == ref[1] and type(fast) is type(ref[1]), (line, kw)
    return took


def test_real_lines_take_the_fast_path():
    """The point of it: ordinary records do not fall back to the reference parser."""
    lines = [EXAMPLE_RUNNING, EXAMPLE_REGJOB] + SHORT_LINES + list(SAMPLE_LINES.values())
    taken = [same_as_reference(line) for line in lines]
    assert sum(taken) >= 0.95 * len(taken), f"{sum(taken)} of {len(taken)}"


@pytest.mark.parametrize("line", [
    EXAMPLE_RUNNING + " DG.RUNNING.NODE=\"again\"",            # duplicate key
    EXAMPLE_RUNNING + " PROG=again",                           # duplicate unknown key: accepted
    EXAMPLE_RUNNING + ' DG.REGJOB.NS="x"',                     # another type's key
    EXAMPLE_RUNNING + " DG.ARRIVED=20240301120000.000001",     # the DG.ARRIVED quirk
    EXAMPLE_RUNNING.replace("DG.EVNT=", "dg.evnt="),           # keys in any case
    EXAMPLE_RUNNING.replace('"Running"', '"running"'),
    EXAMPLE_RUNNING.replace('"Running"', '"Notification"'),
    EXAMPLE_RUNNING.replace('"Running"', '"Runn\\ing"'),       # escaped type name
    EXAMPLE_RUNNING.replace("000500", "0005"),                 # short microseconds
    EXAMPLE_RUNNING.replace("20240301", "70000301"),           # after 2**37 s: validate refuses
    EXAMPLE_RUNNING.replace("20240301", "20240230"),           # no such day
    EXAMPLE_RUNNING.replace("120000.", "240000."),
    EXAMPLE_RUNNING.replace("120000.", "120060."),             # leap second: accepted
    EXAMPLE_RUNNING.replace("20240301", "２０２４0301"),       # non-ASCII digits
    EXAMPLE_RUNNING.replace('DG.RUNNING.NODE="wn01.example.org"', 'DG.RUNNING.NODE=""'),
    EXAMPLE_RUNNING.replace('DG.RUNNING.NODE="wn01.example.org"', "DG.RUNNING.NODE="),
    EXAMPLE_RUNNING.replace(' DG.RUNNING.NODE="wn01.example.org"', ""),
    EXAMPLE_RUNNING.replace('HOST="wn01.example.org"', 'HOST=""'),
    EXAMPLE_RUNNING.replace('DG.SOURCE="LRMS"', 'DG.SOURCE="None"'),
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=-1"),
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=" + "9" * 20),
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=" + "9" * 19),
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=" + "9" * 18),
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=+4"),
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=0004"),
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=\u0664"),     # an Arabic-Indic 4
    EXAMPLE_RUNNING.replace("DG.PRIORITY=4", "DG.PRIORITY=\u00b2"),     # superscript 2
    EXAMPLE_RUNNING.replace("LVL=SYSTEM", "LVL=system"),
    EXAMPLE_RUNNING.replace("LVL=SYSTEM", "LVL=UNDEFINED"),
    EXAMPLE_RUNNING.replace("LVL=SYSTEM", "LVL=0"),
    EXAMPLE_RUNNING.replace('DG.SOURCE="LRMS"', 'DG.SOURCE="lrms"'),
    EXAMPLE_RUNNING.replace("RSwFpSI95ivvdn2OQQFcKw", "a-job-id-not-seen-before"),
    EXAMPLE_RUNNING.replace("lb.example.org:9000", "lb.example.org:99999"),
    EXAMPLE_RUNNING.replace('DG.JOBID="https', 'DG.JOBID="http'),
    EXAMPLE_RUNNING.replace('DG.JOBID="https', 'DG.JOBID="' + "x" * 600),
    EXAMPLE_RUNNING.replace('wn01.example.org"', 'wn\\"01\\\\\\n"'),   # escapes
    EXAMPLE_RUNNING.replace('wn01.example.org"', 'wn01 \t example"'),
    EXAMPLE_RUNNING.replace(" ", "  "),
    EXAMPLE_RUNNING.replace(" ", "\t"),
    EXAMPLE_RUNNING.replace('" ', '"', 1),                     # fields not separated
    EXAMPLE_RUNNING + "\n", EXAMPLE_RUNNING + " \t\n", EXAMPLE_RUNNING + "\n\n",
    "  " + EXAMPLE_RUNNING, EXAMPLE_RUNNING + "\nX=1", EXAMPLE_RUNNING[:-1],
    EXAMPLE_RUNNING + ' X="' + " " * 120 + '"',                # blanks inside quotes do not count
    EXAMPLE_RUNNING + " " * 101,                               # but these do
    EXAMPLE_RUNNING + " X=1" * 90,                             # too many fields
    'DG.TYPE="notification" ' + EXAMPLE_RUNNING.replace('DG.EVNT="Running" ', ""),
    "", " ", "\n", "=", "A=", 'A="', 'A="x', 'A="x\\"', "A=1 =2", "A==1",
])
def test_edge_cases_agree(line):
    same_as_reference(line)


@settings(max_examples=1500, deadline=None)
@given(_real_or_sample, st.lists(_mutation, min_size=1, max_size=4))
def test_mutated_lines_agree(line, mutations):
    same_as_reference(_mutate(line, mutations))


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_SOUP_KEYS + ["DG.EVNT"] * 5), st.sampled_from(
    _SOUP_VALUES + ['"Running"'] * 5)), max_size=15))
def test_field_soup_agrees(fields):
    same_as_reference(" ".join(f"{k}={v}" for k, v in fields))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENT_SPECS).flatmap(event_strategy))
def test_written_events_agree(ev):
    same_as_reference(ulm.format(ev))


# --- validate ---------------------------------------------------------------------------------

class _Str(str):
    pass


_ODD = [None, "", "x", "a\0b", _Str("x"), 0, 1, -1, True, 2**63, -2**63 - 1, 65536, 1.5,
        float("inf"), float("nan"), Timeval(0, 0), Timeval(1, 0), Timeval(2**37, 0),
        Timeval(-1, 0), Timeval(1, 1_000_000), (1, 0), JobId.parse("https://h:9000/u"),
        NotifId.parse("https://h:9000/NOTIF:u"), Level.SYSTEM, Source.NONE, Source.LRMS,
        (("a", "1"),), (("a=", "1"),), ()]


def _validate_outcome(fn):
    try:
        fn()
        return "ok"
    except LBFormatError as e:
        return (str(e), e.code, e.key)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENT_SPECS).flatmap(event_strategy), st.data())
def test_validate_agrees_with_reference(ev, data):
    slots = [a.py_name for a in HEADER] + [a.py_name for a in ev.attr_specs]
    for slot in data.draw(st.lists(st.sampled_from(slots), max_size=3)):
        setattr(ev, slot, data.draw(st.sampled_from(_ODD)))
    for require_user, require_job_id in _OPTIONS:
        got = _validate_outcome(lambda: ev.validate(require_user=require_user,
                                                    require_job_id=require_job_id))
        ref = _validate_outcome(lambda: _validate_reference(ev, require_user, require_job_id))
        assert got == ref, (ev, require_user, require_job_id)


def test_every_class_has_a_compiled_validate():
    for cls in EVENT_CLASSES.values():
        assert cls.validate is not EVENT_CLASSES["Running"].__mro__[1].validate


# --- the compiled __init__ ---------------------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(EVENT_SPECS).flatmap(event_strategy), st.data())
def test_init_agrees_with_reference(ev, data):
    cls = type(ev)
    values = dict(ev.items())
    given_names = data.draw(st.lists(st.sampled_from(sorted(values)), unique=True))
    kw = {n: values[n] for n in given_names}
    ref = cls.__new__(cls)
    Event.__init__(ref, **kw)
    got = cls(**kw)
    assert got == ref and all(getattr(got, n) == getattr(ref, n) for n in values)
    with pytest.raises(TypeError) as info:
        cls(**kw, zz_unknown=1, aa_unknown=2)
    assert str(info.value) == f"{cls.type_name} has no attribute(s) aa_unknown, zz_unknown"
    with pytest.raises(TypeError):
        cls(ev.timestamp)
