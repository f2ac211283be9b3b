"""Sequence codes (formats.md §3, state-machines.md §3)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from lbtx import seqcode
from lbtx.errors import LBFormatError, SeqCodeError
from lbtx.seqcode import (
    GLITE_SLOTS, MAX_SEQCODE_LENGTH, PBS_SLOTS, ZERO_GLITE, ZERO_PBS, CondorSeqCode,
    GliteSeqCode, PBSSeqCode, compare, condor_compare, flavour,
)

ZERO_TEXT = ("UI=000000:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:"
             "LRMS=000000:APP=000000:LBS=000000")
BH_INITIAL = ("UI=000002:NS=0000000000:WM=000000:BH=0000000001:JSS=000000:LM=000000:"
              "LRMS=000000:APP=000000:LBS=000000")
PURGER_CLEAR = ("UI=000009:NS=0000096669:WM=000000:BH=0000000000:JSS=000000:LM=000000:"
                "LRMS=000000:APP=000000:LBS=000000")
WMS_ABORT = ("UI=000000:NS=0000096660:WM=000000:BH=0000000000:JSS=000000:LM=000000:"
             "LRMS=000000:APP=000000:LBS=000000")
SPEC_EXAMPLE = ("UI=000002:NS=0000000004:WM=000003:BH=0000000001:JSS=000002:LM=000001:"
                "LRMS=000001:APP=000000:LBS=000000")
PBS_ZERO_TEXT = "CLIENT=000000:SERVER=0000000000:SCHED=000000:SMOM=000000:MOM=000000"


def g(**counters) -> GliteSeqCode:
    return ZERO_GLITE._replace(**counters)


# --- gLite ---------------------------------------------------------------------------------

def test_glite_slots_and_zero():
    assert GLITE_SLOTS == ("UI", "NS", "WM", "BH", "JSS", "LM", "LRMS", "APP", "LBS")
    assert ZERO_GLITE == GliteSeqCode() == (0,) * 9
    assert ZERO_GLITE.format() == ZERO_TEXT
    assert str(ZERO_GLITE) == ZERO_TEXT
    assert GliteSeqCode.parse(ZERO_TEXT) == ZERO_GLITE


def test_glite_parse_spec_example():
    c = GliteSeqCode.parse(SPEC_EXAMPLE)
    assert c == GliteSeqCode(ui=2, ns=4, wm=3, bh=1, jss=2, lm=1, lrms=1, app=0, lbs=0)
    assert [c.counter(s) for s in GLITE_SLOTS] == [2, 4, 3, 1, 2, 1, 1, 0, 0]
    assert c.format() == SPEC_EXAMPLE


@pytest.mark.parametrize("text", [BH_INITIAL, PURGER_CLEAR, WMS_ABORT, SPEC_EXAMPLE, ZERO_TEXT])
def test_glite_constants_roundtrip(text):
    assert GliteSeqCode.parse(text).format() == text
    assert seqcode.parse(text) == GliteSeqCode.parse(text)


def test_glite_well_known_constants():
    assert GliteSeqCode.parse(BH_INITIAL) == g(ui=2, bh=1)
    assert GliteSeqCode.parse(PURGER_CLEAR) == g(ui=9, ns=96669)
    assert GliteSeqCode.parse(WMS_ABORT) == g(ns=96660)
    # the purger's Clear sorts after ordinary WMS events
    assert GliteSeqCode.parse(PURGER_CLEAR) > GliteSeqCode.parse(SPEC_EXAMPLE)


def test_glite_eight_field_form_reads_lbs_zero():
    eight = "UI=000001:NS=0000000002:WM=000003:BH=0000000004:JSS=000005:LM=000006:LRMS=000007:APP=000008"
    c = GliteSeqCode.parse(eight)
    assert c == GliteSeqCode(1, 2, 3, 4, 5, 6, 7, 8, 0)
    assert c.lbs == 0
    assert c.format() == eight + ":LBS=000000"
    assert c == GliteSeqCode.parse(eight + ":LBS=000000")
    assert seqcode.parse(eight) == c


def test_glite_leading_zeros_optional_and_wide_counters():
    c = GliteSeqCode.parse("UI=1:NS=2:WM=3:BH=4:JSS=5:LM=6:LRMS=7:APP=8:LBS=9")
    assert c == GliteSeqCode(1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert c.format() == ("UI=000001:NS=0000000002:WM=000003:BH=0000000004:JSS=000005:LM=000006:"
                          "LRMS=000007:APP=000008:LBS=000009")
    # widths are minimums: a counter that outgrew its width is written in full
    big = g(ui=1234567890, lbs=17)
    assert big.format().startswith("UI=1234567890:NS=0000000000:")
    assert GliteSeqCode.parse(big.format()) == big


def test_glite_long_code_compared_in_full():
    """lbtx compares full values (no 102-character truncation quirk, §3.3)."""
    a = g(wm=1700000000, lbs=1)
    b = g(wm=1700000000, lbs=2)
    assert len(a.format()) > 102
    assert compare(GliteSeqCode.parse(a.format()), GliteSeqCode.parse(b.format())) == -1


def test_glite_compare_lexicographic():
    assert compare(g(ui=1), g(ns=99999)) == 1
    assert compare(g(ns=1, wm=5), g(ns=2)) == -1
    assert compare(g(wm=2), g(wm=1, jss=9, lm=9, lrms=9)) == 1  # a new WM cycle sorts later
    assert compare(g(lm=1), g(lrms=5)) == 1  # LM more significant than LRMS
    assert compare(g(app=3, lbs=0), g(app=3, lbs=1)) == -1
    assert compare(g(bh=7), g(bh=7)) == 0
    assert sorted([g(lbs=1), g(ui=1), g(app=1), g(ns=1)]) == [g(lbs=1), g(app=1), g(ns=1), g(ui=1)]


@pytest.mark.parametrize("slot", GLITE_SLOTS)
def test_glite_increment_one_component(slot):
    base = GliteSeqCode.parse(SPEC_EXAMPLE)
    inc = base.increment(slot)
    i = GLITE_SLOTS.index(slot)
    assert inc[i] == base[i] + 1
    assert inc[:i] == base[:i] and inc[i + 1:] == base[i + 1:]
    assert compare(inc, base) == 1
    assert base.increment(slot, 5).counter(slot) == base.counter(slot) + 5
    assert base.with_counter(slot, 42).counter(slot) == 42
    assert isinstance(inc, GliteSeqCode)
    assert base == GliteSeqCode.parse(SPEC_EXAMPLE)  # immutable


def test_glite_bad_counter_operations():
    with pytest.raises(SeqCodeError):
        ZERO_GLITE.with_counter("UI", -1)
    with pytest.raises(SeqCodeError):
        ZERO_GLITE.increment("UI", -1)
    for bad in ("XX", "ui", "SERVER", ""):
        with pytest.raises(SeqCodeError):
            ZERO_GLITE.increment(bad)
        with pytest.raises(SeqCodeError):
            ZERO_GLITE.counter(bad)


GLITE_MALFORMED = [
    "",
    "garbage",
    "UI=000001",
    "UI=000001:NS=0000000000:WM=000000:BH=0000000000:JSS=000000:LM=000000:LRMS=000000",
    ZERO_TEXT + ":XX=000000",
    ZERO_TEXT + ":",
    ZERO_TEXT + " ",
    " " + ZERO_TEXT,
    ZERO_TEXT + "\n",
    ZERO_TEXT.replace("NS=", "ns="),
    ZERO_TEXT.lower(),
    ZERO_TEXT.replace("UI=000000", "UI="),
    ZERO_TEXT.replace("UI=000000", "UI=-00001"),
    ZERO_TEXT.replace("UI=000000", "UI=+00001"),
    ZERO_TEXT.replace("UI=000000", "UI=0x0001"),
    ZERO_TEXT.replace("UI=000000", "UI=00 001"),
    ZERO_TEXT.replace("UI=000000", "UI=\u0660\u0661"),  # Arabic-Indic digits are not %d digits
    ZERO_TEXT.replace("WM=000000", "WM=1.5"),
    ZERO_TEXT.replace(":NS=", ";NS="),
    ZERO_TEXT.replace("UI=000000:NS=0000000000", "NS=0000000000:UI=000000"),
    ZERO_TEXT.replace("LBS=000000", "LBS=000000:LBS=000000"),
    "UI=" + "1" * MAX_SEQCODE_LENGTH + ZERO_TEXT[9:],
    ZERO_TEXT + "\0",
]


@pytest.mark.parametrize("text", GLITE_MALFORMED)
def test_glite_malformed(text):
    with pytest.raises(SeqCodeError) as info:
        GliteSeqCode.parse(text)
    assert isinstance(info.value, LBFormatError)
    assert info.value.code == "BAD_SEQCODE"


@pytest.mark.parametrize("value", [None, 1, b"UI=1", ("UI", 1)])
def test_non_text_rejected(value):
    for parse in (GliteSeqCode.parse, PBSSeqCode.parse, CondorSeqCode.parse, seqcode.parse):
        with pytest.raises(SeqCodeError):
            parse(value)


_counter = st.integers(min_value=0, max_value=10**12)


@settings(max_examples=200, deadline=None)
@given(st.tuples(*[_counter] * 9))
def test_glite_format_parse_roundtrip(counters):
    c = GliteSeqCode(*counters)
    assert GliteSeqCode.parse(c.format()) == c
    assert seqcode.parse(str(c)) == c


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_counter, st.integers(0, 4)), min_size=9, max_size=9))
def test_glite_parse_any_padding(counters_and_pads):
    text = ":".join(f"{slot}={'0' * pad}{v}" for slot, (v, pad) in zip(GLITE_SLOTS, counters_and_pads))
    c = GliteSeqCode.parse(text)
    assert tuple(c) == tuple(v for v, _ in counters_and_pads)


@settings(max_examples=200, deadline=None)
@given(st.tuples(*[st.integers(0, 3)] * 9), st.tuples(*[st.integers(0, 3)] * 9))
def test_glite_compare_is_first_difference(a, b):
    ca, cb = GliteSeqCode(*a), GliteSeqCode(*b)
    diff = [(x > y) - (x < y) for x, y in zip(a, b) if x != y]
    assert compare(ca, cb) == (diff[0] if diff else 0)
    assert compare(cb, ca) == -compare(ca, cb)
    # the textual form compares the same way after parsing
    assert compare(GliteSeqCode.parse(ca.format()), GliteSeqCode.parse(cb.format())) == compare(ca, cb)


# --- PBS -------------------------------------------------------------------------------------

def test_pbs_parse_format():
    assert PBS_SLOTS == ("CLIENT", "SERVER", "SCHED", "SMOM", "MOM")
    assert ZERO_PBS.format() == PBS_ZERO_TEXT
    text = "CLIENT=000001:SERVER=0000000002:SCHED=000003:SMOM=000004:MOM=000005"
    c = PBSSeqCode.parse(text)
    assert c == PBSSeqCode(1, 2, 3, 4, 5)
    assert (c.client, c.server, c.sched, c.smom, c.mom) == (1, 2, 3, 4, 5)
    assert c.format() == text == str(c)
    assert seqcode.parse(text) == c
    assert PBSSeqCode.parse("CLIENT=1:SERVER=2:SCHED=3:SMOM=4:MOM=5") == c


def test_pbs_compare():
    p = lambda **kw: ZERO_PBS._replace(**kw)  # noqa: E731
    assert compare(p(client=1), p(server=9, sched=9, smom=9, mom=9)) == 1
    assert compare(p(server=1), p(sched=5)) == 1
    assert compare(p(sched=1, mom=9), p(smom=1)) == 1  # SCHED before SMOM
    assert compare(p(smom=2), p(smom=2, mom=1)) == -1
    assert compare(p(mom=3), p(mom=3)) == 0  # all five equal: equal (no sixth slot, D1)


@pytest.mark.parametrize("slot", PBS_SLOTS)
def test_pbs_increment(slot):
    base = PBSSeqCode(1, 2, 3, 4, 5)
    inc = base.increment(slot)
    i = PBS_SLOTS.index(slot)
    assert inc[i] == base[i] + 1 and inc[:i] == base[:i] and inc[i + 1:] == base[i + 1:]
    assert isinstance(inc, PBSSeqCode)
    with pytest.raises(SeqCodeError):
        base.with_counter(slot, -1)
    with pytest.raises(SeqCodeError):
        base.increment("UI")


@pytest.mark.parametrize("text", [
    "",
    "CLIENT=000001",
    "CLIENT=000001:SERVER=0000000002:SCHED=000003:SMOM=000004",
    PBS_ZERO_TEXT + ":LBS=000000",
    PBS_ZERO_TEXT.replace("SCHED", "sched"),
    PBS_ZERO_TEXT.replace("MOM=000000", "MOM=-1"),
    PBS_ZERO_TEXT.replace("SERVER=0000000000", "SERVER=x"),
    PBS_ZERO_TEXT.replace("CLIENT=000000:SERVER=0000000000", "SERVER=0000000000:CLIENT=000000"),
    PBS_ZERO_TEXT + "\n",
])
def test_pbs_malformed(text):
    with pytest.raises(SeqCodeError):
        PBSSeqCode.parse(text)


@settings(max_examples=150, deadline=None)
@given(st.tuples(*[_counter] * 5))
def test_pbs_roundtrip(counters):
    c = PBSSeqCode(*counters)
    assert PBSSeqCode.parse(c.format()) == c


# --- Condor ---------------------------------------------------------------------------------

def cc(ts="20240301120000", pos="0000000001", code=201, src="C") -> CondorSeqCode:
    return CondorSeqCode(ts, pos, code, src)


def test_condor_parse_format():
    text = "TIMESTAMP=20240301120000:POS=0000000123:EV.CODE=017:SRC=C"
    c = CondorSeqCode.parse(text)
    assert c == CondorSeqCode("20240301120000", "0000000123", 17, "C")
    assert c.format() == text == str(c)
    assert seqcode.parse(text) == c
    assert flavour(text) == "condor"


def test_condor_regjob_sorts_first():
    reg = cc(ts="29991231235959", code=17, src="m")
    other = cc(ts="19700101000000", code=201, src="L")
    assert condor_compare(reg, other) == -1
    assert condor_compare(other, reg) == 1
    assert compare(reg, other) == -1


def test_condor_timestamps_compared_as_strings():
    assert condor_compare(cc(ts="20240301120000", src="m"), cc(ts="20240301120001", src="L")) == -1
    assert condor_compare(cc(ts="20240301120001", pos="0000000000"),
                          cc(ts="20240301120000", pos="9999999999")) == 1


def test_condor_same_source_compares_pos():
    assert condor_compare(cc(pos="0000000002", src="H"), cc(pos="0000000010", src="H")) == -1
    assert condor_compare(cc(pos="0000000010", src="H"), cc(pos="0000000002", src="H")) == 1
    assert condor_compare(cc(pos="0000000005", src="H"), cc(pos="0000000005", src="H")) == 0


def test_condor_source_letters_m_then_s():
    assert condor_compare(cc(src="m", pos="0000000001"), cc(src="s", pos="0000000009")) == 1
    assert condor_compare(cc(src="s"), cc(src="m")) == -1
    assert condor_compare(cc(src="m"), cc(src="C")) == 1
    assert condor_compare(cc(src="C"), cc(src="m")) == -1
    assert condor_compare(cc(src="s"), cc(src="H")) == 1
    assert condor_compare(cc(src="H"), cc(src="s")) == -1
    # different sources, neither m nor s: equal whatever the positions
    assert condor_compare(cc(src="H", pos="0000000001"), cc(src="C", pos="0000000009")) == 0
    assert condor_compare(cc(src="S"), cc(src="s")) == -1  # letters are case-sensitive


def test_condor_increment_pos():
    c = cc(pos="0000000041")
    assert c.increment().pos == "0000000042"
    assert c.increment("POS", 8).pos == "0000000049"
    assert c.increment()[:1] == c[:1] and c.increment().src == c.src
    with pytest.raises(SeqCodeError):
        c.increment("TIMESTAMP")
    with pytest.raises(SeqCodeError):
        cc(pos="00000000ab").increment()


@pytest.mark.parametrize("text", [
    "",
    "TIMESTAMP=2024030112000:POS=0000000001:EV.CODE=201:SRC=C",  # 13-char timestamp
    "TIMESTAMP=20240301120000:POS=000000001:EV.CODE=201:SRC=C",  # 9-char position
    "TIMESTAMP=20240301120000:POS=0000000001:EV.CODE=21:SRC=C",
    "TIMESTAMP=20240301120000:POS=0000000001:EV.CODE=2x1:SRC=C",
    "TIMESTAMP=20240301120000:POS=0000000001:EV.CODE=\u0662\u0660\u0661:SRC=C",
    "TIMESTAMP=20240301120000:POS=0000000001:EV.CODE=201:SRC=",
    "TIMESTAMP=20240301120000:POS=0000000001:EV.CODE=201:SRC=CC",
    "TIMESTAMP=20240301120000:POS=0000000001:EV.CODE=201",
    "timestamp=20240301120000:POS=0000000001:EV.CODE=201:SRC=C",
])
def test_condor_malformed(text):
    with pytest.raises(SeqCodeError):
        CondorSeqCode.parse(text)


_condor = st.builds(
    CondorSeqCode,
    st.text("0123456789", min_size=14, max_size=14),
    st.text("0123456789", min_size=10, max_size=10),
    st.integers(0, 999),
    st.sampled_from("LMmNCHsSj"),
)


@settings(max_examples=200, deadline=None)
@given(_condor)
def test_condor_roundtrip(c):
    assert CondorSeqCode.parse(c.format()) == c


@settings(max_examples=200, deadline=None)
@given(_condor, _condor)
def test_condor_compare_antisymmetric_without_regjob(a, b):
    if 17 in (a.ev_code, b.ev_code):
        return
    assert condor_compare(a, b) == -condor_compare(b, a)


# --- flavours and the generic entry points ---------------------------------------------------

def test_flavour():
    assert flavour(ZERO_TEXT) == "glite"
    assert flavour(PBS_ZERO_TEXT) == "pbs"
    assert flavour("TIMESTAMP=x") == "condor"
    assert flavour("") is None
    assert flavour("whatever") is None


@pytest.mark.parametrize("text", ["", "whatever", "UI=1", "CLIENT=1", "TIMESTAMP=1", "x" * 600])
def test_generic_parse_rejects(text):
    with pytest.raises(SeqCodeError):
        seqcode.parse(text)


def test_compare_different_flavours_rejected():
    with pytest.raises(SeqCodeError):
        compare(ZERO_GLITE, ZERO_PBS)
    with pytest.raises(SeqCodeError):
        compare(cc(), ZERO_GLITE)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120) | st.sampled_from([ZERO_TEXT, PBS_ZERO_TEXT]).flatmap(
    lambda base: st.tuples(st.integers(0, len(base)), st.text(max_size=3)).map(
        lambda t: base[:t[0]] + t[1] + base[t[0] + 1:])))
def test_parse_raises_only_seqcodeerror(text):
    try:
        c = seqcode.parse(text)
    except SeqCodeError:
        return
    assert seqcode.parse(c.format()) == c
