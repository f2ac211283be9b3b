"""Identity values: compared alike whichever mechanism proved them (formats.md §0.2)."""

from __future__ import annotations

from lbtx.gss import Identity, IdentityKind


def test_x509_identities_compare_per_subject_rules():
    """Case, /emailAddress= vs /Email= and trailing /CN=proxy do not make another identity."""
    a = Identity.x509("/DC=org/DC=example/CN=Alice/emailAddress=alice@example.org/CN=proxy/CN=proxy")
    b = Identity.x509("/dc=ORG/DC=example/CN=alice/Email=alice@example.org")
    assert a == b and hash(a) == hash(b)
    assert a.name == "/DC=org/DC=example/CN=Alice/Email=alice@example.org"
    assert a.display == a.name
    assert len({a, b}) == 1


def test_fqans_and_limitation_do_not_change_who_it_is():
    """VOMS FQANs and limited proxies are carried, not compared."""
    plain = Identity.x509("/CN=Alice")
    voms = Identity.x509("/CN=Alice", fqans=("/vo/Role=NULL/Capability=NULL",), limited=True)
    assert plain == voms
    assert voms.fqans == ("/vo/Role=NULL/Capability=NULL",) and voms.limited


def test_kinds_never_equal_each_other():
    """A principal, a Unix user and a subject with the same text are different identities."""
    ids = {Identity.x509("/CN=alice"), Identity.kerberos("alice"), Identity.unix("alice", 1000),
           Identity.anonymous()}
    assert len(ids) == 4


def test_kerberos_and_unix_compare_exactly():
    """Principals and user names are case-sensitive."""
    assert Identity.kerberos("alice@EXAMPLE.ORG") != Identity.kerberos("Alice@EXAMPLE.ORG")
    assert Identity.kerberos("alice@EXAMPLE.ORG") == Identity.kerberos("alice@EXAMPLE.ORG")
    assert Identity.unix("alice", 1000) == Identity.unix("alice", 1000)
    assert Identity.unix("alice", 1000).display == "unix:alice"
    assert Identity.kerberos("alice@EXAMPLE.ORG").display == "alice@EXAMPLE.ORG"


def test_matches_owner_text():
    """matches() compares a DG.USER-like text with the identity's own rules."""
    assert Identity.x509("/CN=Alice").matches("/cn=alice/CN=proxy")
    assert not Identity.x509("/CN=Alice").matches("/CN=Bob")
    assert Identity.kerberos("alice@EXAMPLE.ORG").matches("alice@EXAMPLE.ORG")
    assert not Identity.kerberos("alice@EXAMPLE.ORG").matches("ALICE@EXAMPLE.ORG")
    assert not Identity.anonymous().matches("")
    assert not Identity.x509("/CN=Alice").matches(None)


def test_anonymous():
    """The anonymous identity says so."""
    nobody = Identity.anonymous()
    assert nobody.is_anonymous and nobody.kind is IdentityKind.ANONYMOUS
    assert nobody.display == "anonymous"
    assert not Identity.unix("root", 0).is_anonymous
