"""The job status record: initial values, independent copies, JSON round trips."""

from __future__ import annotations

import io
import json

import pytest

from conftest import SCENARIOS
from lbtx.jobid import JobId
from lbtx.replay import Replay
from lbtx.schema import JobState, StatCreamState, StatDoneCode, StatJobtype, StatJwStatus
from lbtx.status import JobStatus, from_json, to_json
from lbtx.timeval import NULL_TIME, Timeval
from scenario_support import load, scenario_lines


def test_initial_values_follow_the_spec():
    """§2 of state-machines.md: unset enums and -1 integers are None, flags false."""
    st = JobStatus()
    assert st.state == JobState.UNDEFINED and st.jobtype is None and st.done_code is None
    assert st.jw_status == StatJwStatus.UNKNOWN and st.cream_state is None
    assert st.cpu_time is None and st.cream_exit_code is None and st.exit_code == 0
    assert st.state_enter_time == NULL_TIME and st.suspended is False and st.internal == {}


def test_unknown_field_is_refused():
    with pytest.raises(TypeError):
        JobStatus(no_such_field=1)


def test_copy_is_independent_of_the_original():
    """Changing containers of a copy (lists, tags, bookkeeping) leaves the original."""
    st = JobStatus(possible_destinations=["a"], user_tags={"x": "1"},
                   state_enter_times=[0] * 12, internal={"rows": [[1, "d", None, None]],
                                                         "tag_seq": {"x": "s"}, "last": "c"})
    new = st.copy()
    new.possible_destinations.append("b")
    new.user_tags["y"] = "2"
    new.state_enter_times[3] = 9
    new.internal["rows"].append([2, None, None, None])
    new.internal["tag_seq"]["y"] = "t"
    new.internal["last"] = "d"
    new.state = JobState.RUNNING
    assert st.possible_destinations == ["a"] and st.user_tags == {"x": "1"}
    assert st.state_enter_times[3] == 0 and st.state == JobState.UNDEFINED
    assert st.internal == {"rows": [[1, "d", None, None]], "tag_seq": {"x": "s"}, "last": "c"}
    assert new != st and st.copy() == st


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.json")), ids=lambda p: p.stem)
def test_json_round_trip_of_every_status_of_every_scenario(path):
    """to_json(internal=True), through real JSON text, then from_json gives back every
    status a scenario passes through, bookkeeping included, exactly (the status
    cache of the store relies on it: lbtx.server.store.status_cache)."""
    replay = Replay()
    text = "".join(scenario_lines(load(path)))
    checked = 0
    for _ in replay.feed_stream(io.StringIO(text), path.stem):
        for rec in replay.jobs():
            doc = json.loads(json.dumps(to_json(rec.status, internal=True)))
            back = from_json(doc)
            assert back == rec.status, rec.job_id
            assert json.dumps(to_json(back, internal=True)) == json.dumps(doc)
            checked += 1
    assert checked and replay.jobs()


def test_json_encodings():
    """Enumerations by name (state and cream_state by text), times ISO, maps by state."""
    times = [0] * 12
    times[JobState.RUNNING] = Timeval(1330596000, 0).sec
    hist = [0] * 12
    hist[JobState.UNKNOWN] = 2
    st = JobStatus(job_id=JobId.parse("https://lb.example.org:9000/statusJsonTest000001"),
                   state=JobState.RUNNING, jobtype=StatJobtype.DAG, done_code=StatDoneCode.FAILED,
                   cream_state=StatCreamState["CREAM_REALLY-RUNNING"], state_enter_times=times,
                   children_hist=hist, last_update_time=Timeval(1330596000, 250000))
    doc = to_json(st)
    assert doc["state"] == "Running" and doc["jobtype"] == "DAG" and doc["done_code"] == "FAILED"
    assert doc["cream_state"] == "really-running" and doc["jw_status"] == "UNKNOWN"
    assert doc["stateEnterTimes"] == {"Running": "2012-03-01T10:00:00Z"}
    assert doc["children_hist"] == {"Unknown": 2}
    assert doc["lastUpdateTime"] == "2012-03-01T10:00:00.250000Z"
    assert doc["stateEnterTime"] is None and doc["jobid"] == str(st.job_id)
    assert "_internal" not in doc


def test_from_json_rejects_bad_enum_text():
    with pytest.raises(ValueError):
        from_json({"state": "Sleeping"})
