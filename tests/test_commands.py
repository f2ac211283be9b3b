"""Logger command records (lbtx.commands, formats.md §4.7): written, read, refused."""

from __future__ import annotations

import pytest

from lbtx import ulm
from lbtx.commands import Command, flush_record, is_command, parse_command
from lbtx.errors import LBFormatError
from lbtx.jobid import JobId

JOB = "https://lb.example.org:9000/RSwFpSI95ivvdn2OQQFcKw"
SPEC_EXAMPLE = ('DATE=20240301121500.000000 HOST="ui.example.org" PROG=internal LVL=system '
                'DG.PRIORITY=1 DG.TYPE="command" DG.COMMAND="flush" DG.TIMEOUT="30" '
                f'DG.JOBID="{JOB}"')


def test_the_example_of_the_specification():
    assert is_command(SPEC_EXAMPLE)
    assert parse_command(SPEC_EXAMPLE) == Command("flush", JobId.parse(JOB), 30)
    assert parse_command(SPEC_EXAMPLE + "\n") == Command("flush", JobId.parse(JOB), 30)


def test_written_records_read_back():
    for job, timeout in ((JOB, 30), (None, None), (JobId.parse(JOB), 0), (None, 86400)):
        line = flush_record(job, timeout=timeout, host='odd "host" \\ name')
        assert is_command(line)
        fields = ulm.parse_fields(line)
        assert fields["HOST"] == 'odd "host" \\ name'
        assert fields["DG.PRIORITY"] == "1"   # synchronous: the answer is the flush's
        expected = Command("flush", None if job is None else JobId.parse(str(job)), timeout)
        assert parse_command(line) == expected


def test_spellings_of_the_type_and_command():
    for variant in ('DG.TYPE=command', 'dg.type="COMMAND"', 'DG.TYPE="Command"'):
        line = SPEC_EXAMPLE.replace('DG.TYPE="command"', variant)
        assert is_command(line), variant
        assert parse_command(line).name == "flush"
    assert parse_command(SPEC_EXAMPLE.replace('"flush"', "FLUSH")).name == "flush"


def test_events_and_notifications_are_not_commands():
    event = ('DATE=20240301121500.000000 HOST="h" PROG=p LVL=SYSTEM DG.PRIORITY=0 '
             'DG.SOURCE="LRMS" DG.EVNT="UserTag" '
             f'DG.JOBID="{JOB}" DG.SEQCODE="x" DG.USERTAG.NAME="a" '
             'DG.USERTAG.VALUE="x DG.TYPE=command y"')
    assert is_command(event)        # it says so, inside a value ...
    assert parse_command(event) is None   # ... but its fields do not
    assert not is_command(SPEC_EXAMPLE.replace('"command"', '"notification"'))
    assert not is_command(SPEC_EXAMPLE.replace('DG.TYPE="command"', 'DG.TYPE="commands"'))
    assert parse_command(SPEC_EXAMPLE.replace('"command"', '"notification"')) is None


@pytest.mark.parametrize("change, code, key", [
    (('DG.COMMAND="flush"', ""), "MSG_INCOMPLETE", "DG.COMMAND"),
    (('DG.COMMAND="flush"', 'DG.COMMAND=""'), "MSG_INCOMPLETE", "DG.COMMAND"),
    (('"flush"', '"reboot"'), "EVENT_UNDEF", "DG.COMMAND"),
    (('DG.TIMEOUT="30"', 'DG.TIMEOUT="-1"'), "BAD_VALUE", "DG.TIMEOUT"),
    (('DG.TIMEOUT="30"', 'DG.TIMEOUT="1.5"'), "BAD_VALUE", "DG.TIMEOUT"),
    (('DG.TIMEOUT="30"', 'DG.TIMEOUT="soon"'), "BAD_VALUE", "DG.TIMEOUT"),
    (('DG.TIMEOUT="30"', 'DG.TIMEOUT="86401"'), "BAD_VALUE", "DG.TIMEOUT"),
    (('DG.TIMEOUT="30"', 'DG.TIMEOUT="' + "9" * 5000 + '"'), "BAD_VALUE", "DG.TIMEOUT"),
    (('DG.TIMEOUT="30"', 'DG.TIMEOUT="\u0663"'), "BAD_VALUE", "DG.TIMEOUT"),   # Arabic 3
    ((f'DG.JOBID="{JOB}"', 'DG.JOBID="not a job id"'), "BAD_JOBID", "DG.JOBID"),
    (('DG.COMMAND="flush"', 'DG.COMMAND="flush" DG.COMMAND="other"'), "KEY_DUPLICITY",
     "DG.COMMAND"),
    (('DG.TIMEOUT="30"', 'DG.TIMEOUT="30" DG.TIMEOUT="1"'), "KEY_DUPLICITY", "DG.TIMEOUT"),
    ((f'DG.JOBID="{JOB}"', f'DG.JOBID="{JOB}" DG.JOBID="{JOB}"'), "KEY_DUPLICITY", "DG.JOBID"),
])
def test_bad_commands_are_refused_naming_the_key(change, code, key):
    line = SPEC_EXAMPLE.replace(*change)
    with pytest.raises(LBFormatError) as raised:
        parse_command(line)
    assert (raised.value.code, raised.value.key) == (code, key)


@pytest.mark.parametrize("line", [
    SPEC_EXAMPLE[:-10],                              # cut inside the last quoted value
    SPEC_EXAMPLE.replace('"flush"', '"fl\0ush"'),    # NUL
    SPEC_EXAMPLE.replace("DG.PRIORITY=1", "DG.PRIORITY=1=2"),
    "DG.TYPE=command " + "X=1 " * 200,               # too many fields
    "",
])
def test_lines_that_are_not_ulm_are_refused(line):
    with pytest.raises(LBFormatError):
        parse_command(line)


def test_oversized_records_are_refused_before_anything_else():
    line = SPEC_EXAMPLE + ' X="' + "a" * 5000 + '"'
    with pytest.raises(LBFormatError) as raised:
        parse_command(line, max_length=4096)
    assert raised.value.code == "TOO_LONG"


def test_flush_record_refuses_bad_arguments():
    for timeout in (-1, 1.5, True, 86401, "30"):
        with pytest.raises(ValueError):
            flush_record(JOB, timeout=timeout)
    with pytest.raises(LBFormatError):
        flush_record("not a job id")
