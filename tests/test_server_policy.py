"""The policy file (lbtx.server.policy, formats.md §11.6): grammar, matching, and
hostile or broken files refused with the place of the mistake."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from lbtx.server.authz import Caller
from lbtx.server.policy import (MAX_POLICY_BYTES, Action, PolicyError, load_policy,
                                parse_policy)

ADMIN = "/DC=org/DC=example/CN=LB Admin"
WMS = "/DC=org/DC=example/CN=wms.example.org"
POLICY = f'''
# who may do what on this server
resource "LB" {{
    action "ADMIN_ACCESS" {{
        rule permit {{ subject = "{ADMIN}" }}
    }}
    action "READ_ALL" {{
        rule permit {{ fqan = "/atlas/Role=monitor" }}
        rule permit {{
            subject = "{WMS}"
        }}
    }}
    action "LOG_WMS_EVENTS" {{ rule permit {{ subject = ".*" fqan = "/atlas/Role=production" }} }}
    action "PURGE" {{ }}
}}
'''


def test_rules_grant_exactly_what_they_say():
    p = parse_policy(POLICY)
    assert p.allows(Action.ADMIN_ACCESS, ADMIN)
    assert p.allows(Action.ADMIN_ACCESS, ADMIN.lower() + "/CN=proxy")   # §0.2 comparison
    assert not p.allows(Action.ADMIN_ACCESS, WMS)
    assert p.allows(Action.READ_ALL, WMS)
    assert p.allows(Action.READ_ALL, Caller("/CN=anyone", ["/atlas/Role=monitor"]))
    assert not p.allows(Action.READ_ALL, Caller("/CN=anyone", ["/atlas"]))
    assert p.allows(Action.LOG_WMS_EVENTS, Caller("/CN=x", ["/atlas", "/atlas/Role=production"]))
    assert not p.allows(Action.LOG_WMS_EVENTS, Caller("/CN=x", []))
    assert not p.allows(Action.PURGE, ADMIN)          # an action without rules
    assert not p.allows(Action.GET_STATISTICS, ADMIN)  # an action not listed
    assert not p.allows(Action.READ_ALL, None)         # anonymous
    assert p.granted(WMS) == {Action.READ_ALL}


def test_an_empty_policy_grants_nothing():
    p = parse_policy("# nothing\n")
    assert p.granted(ADMIN) == frozenset()


def test_added_rules_merge():
    from lbtx.server.policy import Rule
    p = parse_policy(POLICY).with_rules(Action.ADMIN_ACCESS, [Rule(fqans=("/ops",))])
    assert p.allows(Action.ADMIN_ACCESS, ADMIN)
    assert p.allows(Action.ADMIN_ACCESS, Caller("/CN=y", ["/ops"]))


@pytest.mark.parametrize("text, where, words", [
    ('resource "LB" {', (0, 0), "end of the file"),
    ('resource "XX" { }', (1, 10), "unknown resource"),
    ('resource "LB" { action "FLY" { } }', (1, 24), "unknown action"),
    ('resource "LB" { action "PURGE" { rule deny { subject = "/CN=a" } } }', (1, 39),
     "only 'permit'"),
    ('resource "LB" { action "PURGE" { rule permit { host = "x" } } }', (1, 48),
     "unknown rule attribute"),
    ('resource "LB" { action "PURGE" { rule permit { subject = "" } } }', (1, 58), "empty value"),
    ('resource "LB" { action "PURGE" { rule permit { subject "x" } } }', (1, 56), "expected ="),
    ('resource "LB" {\n  action "PURGE" {\n    rule permit { subject = "/CN=a }\n}}', (3, 29),
     "unexpected character"),
    ('resource LB { }', (1, 10), "resource name"),
    ('action "PURGE" { }', (1, 1), "expected resource"),
    ('resource "LB" { } }', (1, 19), "expected resource"),
    ('resource "LB" { action "PURGE" { rule permit { subject = "/CN=a" } } } @', (1, 72),
     "unexpected character"),
])
def test_mistakes_are_refused_with_their_place(text, where, words):
    with pytest.raises(PolicyError) as e:
        parse_policy(text, "policy.conf")
    assert words in str(e.value), str(e.value)
    if where[0]:
        assert (e.value.line, e.value.column) == where, str(e.value)
    assert str(e.value).startswith("policy.conf")


def test_oversized_nul_and_binary_files(tmp_path):
    with pytest.raises(PolicyError, match="longer than"):
        parse_policy("#" * (MAX_POLICY_BYTES + 1))
    with pytest.raises(PolicyError, match="NUL"):
        parse_policy('resource "LB" { }\0')
    f = tmp_path / "p"
    f.write_bytes(b'resource "LB" { }\xff\xfe')
    with pytest.raises(PolicyError, match="not UTF-8"):
        load_policy(f)
    f.write_bytes(b"#" * (MAX_POLICY_BYTES + 10))
    with pytest.raises(PolicyError, match="longer than"):
        load_policy(f)
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing")
    f.write_text(POLICY)
    assert load_policy(f).allows(Action.READ_ALL, WMS)


def test_deep_nesting_does_not_recurse():
    text = 'resource "LB" {' + ' action "PURGE" {' * 5000
    with pytest.raises(PolicyError):
        parse_policy(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='resource"LB{}=action ADMIN_ACCESS rule permit subject fqan\n#.*/',
               max_size=300))
def test_random_text_parses_or_raises_policy_error(text):
    try:
        parse_policy(text)
    except PolicyError:
        pass
