"""The declarative schema (lbtx.schema) and the event classes against spec/lb-schema.json.

Every check reads its expected values from the JSON file, the authoritative machine-readable
schema, and compares them with what lbtx derives from its own entries. Nothing here compares
the model with itself.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from conftest import SPEC

from lbtx import schema
from lbtx.events import EVENT_CLASSES, HEADER_SLOTS, Event, event_class, make_event
from lbtx.schema import (
    ENUM_SPECS, ENUMS, EVENT_SPECS, EVENTS_BY_CODE, EVENTS_BY_NAME, FAMILIES, HEADER,
    STATUS_FIELDS, LBEnum, event_spec,
)
from lbtx.timeval import NULL_TIME, Timeval

SCHEMA = json.loads((SPEC / "lb-schema.json").read_text(encoding="utf-8"))
JSON_EVENTS = SCHEMA["events"]
JSON_ENUMS = SCHEMA["enums"]
JSON_COMMON = SCHEMA["common_fields"]
JSON_STATUS = SCHEMA["job_status"]["fields"]
COUNTS = SCHEMA["counts"]

EVENT_IDS = [e["name"] for e in JSON_EVENTS]
ENUM_IDS = list(JSON_ENUMS)

ATTR_KEYS = ("name", "py_name", "ulm_key", "type", "enum", "optional", "required", "null")


def _same(a, b) -> bool:
    """Equal in value and in JSON kind (0 is not None, 0 is not 0.0 for a double, True is not 1)."""
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and a == b
    return type(a) is type(b) and a == b


def _model_event(name: str):
    spec = EVENTS_BY_NAME.get(name)
    assert spec is not None, f"event type {name} of the schema is missing from the model"
    return spec


# --- events -------------------------------------------------------------------------------

def test_event_names_and_order():
    assert [e.name for e in EVENT_SPECS] == [e["name"] for e in JSON_EVENTS]


def test_event_counts():
    assert len(JSON_EVENTS) == COUNTS["events"] == 79
    assert len(EVENT_SPECS) == COUNTS["events"]
    per_family = Counter(e.family for e in EVENT_SPECS)
    assert dict(per_family) == COUNTS["events_per_family"]
    assert sum(len(e.attrs) for e in EVENT_SPECS) == COUNTS["event_attributes"]
    assert sum(1 for e in EVENT_SPECS if not e.attrs) == COUNTS["events_without_attributes"]
    # the counts block agrees with the arrays of the JSON file itself
    assert sum(len(e["attributes"]) for e in JSON_EVENTS) == COUNTS["event_attributes"]
    assert dict(Counter(e["family"] for e in JSON_EVENTS)) == COUNTS["events_per_family"]


@pytest.mark.parametrize("js", JSON_EVENTS, ids=EVENT_IDS)
def test_event_type(js):
    spec = _model_event(js["name"])
    assert spec.code == js["code"]
    assert spec.family == js["family"]
    assert spec.ulm_prefix == js["ulm_prefix"]
    assert spec.name == js["ulm_evnt"]  # DG.EVNT carries the type name as written
    assert spec.doc == js["meaning"]
    assert spec.note == js.get("note")
    assert EVENTS_BY_CODE[js["code"]] is spec
    assert event_spec(js["ulm_evnt"]) is spec
    assert event_spec(js["ulm_evnt"].upper()) is spec
    assert event_spec(js["ulm_evnt"].lower()) is spec


@pytest.mark.parametrize("js", JSON_EVENTS, ids=EVENT_IDS)
def test_event_attributes(js):
    spec = _model_event(js["name"])
    assert [a.name for a in spec.attrs] == [a["name"] for a in js["attributes"]]
    for ja, a in zip(js["attributes"], spec.attrs):
        for key in ATTR_KEYS:
            assert _same(getattr(a, key), ja[key]), (
                f"{js['name']}.{ja['name']}: {key} is {getattr(a, key)!r}, schema says {ja[key]!r}")
        assert a.required is (not a.optional)
        assert a.hint == ja.get("value_enum_hint"), f"{js['name']}.{ja['name']}: value_enum_hint"
        assert a.doc == ja["meaning"]
        assert a.ulm_key.startswith(js["ulm_prefix"])


def test_event_codes_follow_family_bases():
    bases = {f["name"]: f["code_base"] for f in SCHEMA["families"]}
    position: Counter = Counter()
    for js in JSON_EVENTS:
        position[js["family"]] += 1
        assert js["code"] == bases[js["family"]] + position[js["family"]]
    assert len({e.code for e in EVENT_SPECS}) == len(EVENT_SPECS)


def test_families():
    assert [f.name for f in FAMILIES] == [f["name"] for f in SCHEMA["families"]]
    for jf, f in zip(SCHEMA["families"], FAMILIES):
        assert f.code_base == jf["code_base"]
        assert f.job_types == tuple(jf["job_types"])
        codes = [e.code for e in EVENT_SPECS if e.family == f.name]
        assert len(codes) == jf["count"]
        assert min(codes) == jf["first_code"]


# --- common header ------------------------------------------------------------------------

def test_common_fields():
    assert len(HEADER) == len(JSON_COMMON) == COUNTS["common_fields"]
    assert [h.name for h in HEADER] == [f["name"] for f in JSON_COMMON]
    for jf, h in zip(JSON_COMMON, HEADER):
        for key in ATTR_KEYS:
            assert _same(getattr(h, key), jf[key]), f"header {jf['name']}: {key}"
        assert h.quoted is jf["ulm_quoted"]
        assert h.set_by == jf["set_by"]
        assert h.flags == jf.get("enum_flags")


def test_header_keys_match_ulm_section():
    ulm = SCHEMA["ulm"]
    quoted = {h.ulm_key for h in HEADER if h.quoted}
    unquoted = {h.ulm_key for h in HEADER if not h.quoted}
    assert unquoted <= set(ulm["unquoted_keys"])
    assert not quoted & set(ulm["unquoted_keys"])
    # every header key but ARR_DATE (server-only) has its place in the emission order
    order = ulm["header_order"]
    emitted = [h.ulm_key for h in HEADER if h.ulm_key != "ARR_DATE"]
    assert [k for k in order if k in emitted] == sorted(emitted, key=order.index)
    assert set(emitted) <= set(order)


# --- enumerations ---------------------------------------------------------------------------

def test_enum_names_and_counts():
    assert list(ENUM_SPECS) == list(JSON_ENUMS)
    assert len(ENUM_SPECS) == COUNTS["enums"] == 44
    assert dict(Counter(e.scope for e in ENUM_SPECS.values())) == COUNTS["enums_by_scope"]
    assert set(ENUMS) == set(JSON_ENUMS)


def _json_undefined(je):
    u = je.get("undefined")
    if u is None:
        return None
    # the text of UNDEFINED is its name unless the schema gives one (Source: "Undefined")
    return (u["name"], u.get("text", u["name"]), u["value"])


@pytest.mark.parametrize("name", ENUM_IDS)
def test_enum_spec(name):
    je = JSON_ENUMS[name]
    spec = ENUM_SPECS[name]
    assert spec.name == name
    assert spec.scope == je["scope"]
    assert spec.kind == je.get("kind")
    assert spec.initial == je.get("initial_value")
    assert spec.aliases == je.get("aliases", {})
    assert spec.members == tuple((v["name"], v.get("text"), v["value"]) for v in je["values"])
    assert spec.undefined == _json_undefined(je)
    if "meaning" in je:
        assert spec.doc == je["meaning"]
    slots = {v["name"]: v["seqcode_slot"] for v in je["values"] if v.get("seqcode_slot")}
    if slots:
        assert spec.extra["slots"] == slots
    terminal = tuple(v["name"] for v in je["values"] if v.get("terminal"))
    if terminal:
        assert spec.extra["terminal"] == terminal
    maps = {v["name"]: v["maps_to_state"] for v in je["values"] if "maps_to_state" in v}
    if maps:
        assert spec.extra["maps_to"] == maps


@pytest.mark.parametrize("name", ENUM_IDS)
def test_enum_class(name):
    je = JSON_ENUMS[name]
    cls = ENUMS[name]
    assert issubclass(cls, LBEnum)
    expected = []
    und = _json_undefined(je)
    if und is not None:
        expected.append(und)
    expected += [(v["name"], v.get("text") or v["name"], v["value"]) for v in je["values"]]
    assert [(m.name, m.text, int(m)) for m in cls] == expected
    if und is not None:
        assert cls.undefined is cls[und[0]]
        assert int(cls.undefined) == und[2]
    else:
        assert cls.undefined is None
    for m in cls:
        assert cls.from_text(m.name) is m
        assert cls.from_text(m.name.lower()) is m
        assert cls(int(m)) is m
    for v in je["values"]:
        if v.get("text"):
            # a text resolves to its member unless another member's name is that text
            hit = cls.from_text(v["text"])
            clash = [m for m in cls if m.name.casefold() == v["text"].casefold()]
            assert hit is (clash[0] if clash else cls[v["name"]])
    for alias, target in je.get("aliases", {}).items():
        assert cls.from_text(alias) is cls[target]
        assert cls.from_text(alias.lower()) is cls[target]
    assert cls.from_text("no such member, surely") is None


def test_event_enum_numbering_rule():
    """Event enumerations: UNDEFINED takes the sentinel, the codes follow consecutively."""
    for name, je in JSON_ENUMS.items():
        if je["scope"] != "event":
            continue
        u = je["undefined"]
        assert [v["value"] for v in je["values"]] == list(
            range(u["value"] + 1, u["value"] + 1 + len(je["values"])))
        spec = ENUM_SPECS[name]
        assert [m[2] for m in spec.members] == [v["value"] for v in je["values"]]


def test_enum_used_by_matches_attributes():
    """The used_by lists of the schema agree with the enum each attribute names in the model."""
    by_key = {f"{e.name}.{a.name}": a for e in EVENT_SPECS for a in e.attrs}
    by_key.update({f"_common_.{h.name}": h for h in HEADER})
    json_attrs = {f"{e['name']}.{a['name']}": a for e in JSON_EVENTS for a in e["attributes"]}
    json_attrs.update({f"_common_.{f['name']}": f for f in JSON_COMMON})
    for name, je in JSON_ENUMS.items():
        for use in je.get("used_by", ()):
            a = by_key.get(use)
            if a is None:
                continue  # status fields and prose entries ("CollectionState.state (as text)")
            ja = json_attrs[use]
            if ja.get("value_enum_hint") == name:
                assert a.hint == name and a.enum is None, use
            elif ja.get("enum_flags") == name:
                assert a.flags == name, use
            else:
                assert ja["enum"] == name, use
                assert a.enum == name, use
    for e in EVENT_SPECS:
        for a in e.attrs:
            if a.enum is not None:
                assert f"{e.name}.{a.name}" in JSON_ENUMS[a.enum]["used_by"]


def test_named_enum_exports():
    for attr in ("Level", "Source", "LogFlag", "JobState", "StatJobtype", "StatDoneCode",
                 "StatSandboxRetrieved", "StatJwStatus", "StatCreamState", "StatFtSandboxType",
                 "StatVmState", "RegJobJobtype"):
        assert getattr(schema, attr) is ENUMS[attr]


def test_job_states():
    states = SCHEMA["job_status"]["states"]
    assert len([s for s in states if s["name"] != "UNDEFINED"]) == COUNTS["job_states"]
    assert [(m.name, m.text, int(m)) for m in ENUMS["JobState"]] == [
        (s["name"], s["text"], s["value"]) for s in states]
    terminal = [s["text"] for s in states if s["terminal"]]
    assert terminal == SCHEMA["job_status"]["terminal_states"]


# --- status fields --------------------------------------------------------------------------

STATUS_KEYS = ("name", "py_name", "type", "enum", "null", "section", "indexed", "structured")


def test_status_field_names_and_count():
    assert len(STATUS_FIELDS) == len(JSON_STATUS) == COUNTS["status_fields"] == 108
    assert SCHEMA["job_status"]["field_count"] == 108
    assert [f.name for f in STATUS_FIELDS] == [f["name"] for f in JSON_STATUS]


@pytest.mark.parametrize("jf", JSON_STATUS, ids=[f["name"] for f in JSON_STATUS])
def test_status_field(jf):
    f = {s.name: s for s in STATUS_FIELDS}[jf["name"]]
    for key in STATUS_KEYS:
        assert _same(getattr(f, key), jf[key]), f"status {jf['name']}: {key}"
    assert f.hint == jf.get("value_enum_hint")
    assert f.doc == jf["meaning"]


def test_status_sections():
    sections = SCHEMA["job_status"]["sections"]
    model: dict[str, list[str]] = {}
    for f in STATUS_FIELDS:
        model.setdefault(f.section, []).append(f.name)
    assert model == sections
    assert list(model) == list(sections)


def test_status_enums_listed():
    used = {f.enum for f in STATUS_FIELDS if f.enum}
    assert used == set(SCHEMA["job_status"]["enums"])
    for name in SCHEMA["job_status"]["enums"]:
        assert ENUM_SPECS[name].scope == "status"


# --- type nulls -------------------------------------------------------------------------------

def test_type_nulls():
    """Attributes with no declared sentinel carry the null of their type."""
    types = SCHEMA["types"]
    for js in JSON_EVENTS:
        for ja in js["attributes"]:
            if ja["type"] in types and ja["null"] != types[ja["type"]]["null"]:
                assert ja["type"] == "int", f"{js['name']}.{ja['name']}"  # ints declare -1
    for e in EVENT_SPECS:
        for a in e.attrs:
            t = types[a.type]
            if a.null != t["null"]:
                assert a.type == "int" and a.null == -1


# --- event classes -----------------------------------------------------------------------------

def _expected_default(ja):
    """The Python default of an attribute, from the schema entry alone."""
    if ja["type"] == "timeval":
        assert ja["null"] == 0
        return NULL_TIME
    if ja["enum"] is not None:
        je = JSON_ENUMS[ja["enum"]]
        u = je["undefined"]
        assert u["value"] == ja["null"]
        return ("enum", ja["enum"], u["name"], u["value"])
    return ja["null"]


def _check_default(value, expected, where):
    if isinstance(expected, tuple) and expected and expected[0] == "enum":
        _, enum_name, member, number = expected
        assert isinstance(value, ENUMS[enum_name]), where
        assert value.name == member and int(value) == number, where
    elif isinstance(expected, Timeval):
        assert value == expected and isinstance(value, Timeval), where
    else:
        assert _same(value, expected), f"{where}: {value!r} != {expected!r}"


def test_event_classes_cover_every_type():
    assert list(EVENT_CLASSES) == EVENT_IDS
    assert HEADER_SLOTS == tuple(f["py_name"] for f in JSON_COMMON)
    assert Event.__slots__ == HEADER_SLOTS


@pytest.mark.parametrize("js", JSON_EVENTS, ids=EVENT_IDS)
def test_event_class_slots_and_defaults(js):
    cls = EVENT_CLASSES[js["name"]]
    assert cls.__name__ == js["name"]
    assert cls.type_name == js["name"]
    assert cls.code == js["code"]
    assert issubclass(cls, Event)
    assert cls.__slots__ == tuple(a["py_name"] for a in js["attributes"])
    assert list(cls._defaults) == [f["py_name"] for f in JSON_COMMON] + [
        a["py_name"] for a in js["attributes"]]
    ev = cls()
    for jf in JSON_COMMON:
        _check_default(getattr(ev, jf["py_name"]), _expected_default(jf),
                       f"{js['name']} header {jf['name']}")
    for ja in js["attributes"]:
        _check_default(getattr(ev, ja["py_name"]), _expected_default(ja),
                       f"{js['name']}.{ja['name']}")
    # no instance dict: only the declared slots can be set
    with pytest.raises(AttributeError):
        ev.not_a_slot = 1  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        cls(not_an_attribute=1)
    assert event_class(js["name"].upper()) is cls
    assert [a.py_name for a in ev.attr_specs] == [a["py_name"] for a in js["attributes"]]
    assert list(ev.attrs()) == [a["py_name"] for a in js["attributes"]]


def test_make_event_producer_defaults():
    ev = make_event("Running", node="wn01")
    assert ev.level is ENUMS["Level"].SYSTEM
    assert ev.priority == 0
    assert ev.node == "wn01"
    assert ev.copy(node="wn02").node == "wn02"
    assert ev.copy() == ev


# --- validation follows the schema's types and required flags -------------------------------

def _valid_running(**changes):
    from lbtx.jobid import JobId
    values = dict(timestamp=Timeval(1, 0), host="h", seqcode="", source=ENUMS["Source"].LRMS,
                  job_id=JobId.parse("https://h/a"), user="u", node="n")
    values.update(changes)
    return make_event("Running", **values)


def test_validate_accepts_a_complete_event():
    ev = _valid_running()
    assert ev.validate() is ev
    # HOST and DG.SEQCODE may be empty; user and job id may be left out where allowed
    _valid_running(host="", seqcode="").validate()
    _valid_running(user=None, job_id=None).validate(require_user=False, require_job_id=False)


@pytest.mark.parametrize("changes, code, key", [
    (dict(node=5), "BAD_VALUE", "DG.RUNNING.NODE"),
    (dict(node="a\0b"), "BAD_VALUE", "DG.RUNNING.NODE"),
    (dict(node=None), "MSG_INCOMPLETE", "DG.RUNNING.NODE"),
    (dict(timestamp=5), "BAD_VALUE", "DATE"),
    (dict(timestamp=NULL_TIME), "MSG_INCOMPLETE", "DATE"),
    (dict(level=3), "BAD_VALUE", "LVL"),
    (dict(priority="x"), "BAD_VALUE", "DG.PRIORITY"),
    (dict(priority=True), "BAD_VALUE", "DG.PRIORITY"),
    (dict(priority=-1), "MSG_INCOMPLETE", "DG.PRIORITY"),
    (dict(source=7), "BAD_VALUE", "DG.SOURCE"),
    (dict(source=ENUMS["Source"].NONE), "MSG_INCOMPLETE", "DG.SOURCE"),
    (dict(job_id="https://h/a"), "BAD_VALUE", "DG.JOBID"),
    (dict(job_id=None), "MSG_INCOMPLETE", "DG.JOBID"),
    (dict(user=None), "MSG_INCOMPLETE", "DG.USER"),
    (dict(host=None), "MSG_INCOMPLETE", "HOST"),
])
def test_validate_rejects(changes, code, key):
    from lbtx.errors import LBFormatError
    with pytest.raises(LBFormatError) as info:
        _valid_running(**changes).validate()
    assert info.value.code == code
    assert info.value.key == key


@pytest.mark.parametrize("js", JSON_EVENTS, ids=EVENT_IDS)
def test_validate_requires_what_the_schema_requires(js):
    """An event left at its defaults misses exactly the required attributes of the schema."""
    from lbtx.errors import LBFormatError
    cls = EVENT_CLASSES[js["name"]]
    header = _valid_running().header()
    required = [a for a in js["attributes"] if a["required"]]
    # fill the required attributes one by one: the first still missing is always reported
    values = {}
    for ja in required:
        with pytest.raises(LBFormatError) as info:
            cls(**header, **values).validate()
        assert info.value.code == "MSG_INCOMPLETE"
        assert info.value.key == ja["ulm_key"]
        values[ja["py_name"]] = _some_value(ja)
    cls(**header, **values).validate()


def _some_value(ja):
    from lbtx.jobid import JobId, NotifId
    if ja["enum"] is not None:
        return next(m for m in ENUMS[ja["enum"]] if int(m) != ja["null"])
    return {"string": "s", "int": 1 if ja["null"] != 1 else 2, "port": 1, "double": 1.5,
            "timeval": Timeval(1, 0), "jobid": JobId.parse("https://h/b"),
            "notifid": NotifId.parse("https://h/NOTIF:n"), "taglist": (("a", "b"),)}[ja["type"]]
