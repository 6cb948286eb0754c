"""The generated NATS permissions: every registry party has a user, and each user's
subjects name that party (checked against a real server in tests/integration)."""

from __future__ import annotations

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.nats_permissions import all_users

COURTS, AGENCIES = CourtCatalog.default(), AgencyCatalog.default()


def test_every_court_and_agency_gets_a_user() -> None:
    users = {u.user for u in all_users(COURTS, AGENCIES, "ROGATORY")}
    assert {f"court-{c.id}" for c in COURTS} <= users and {f"agency-{a.id}" for a in AGENCIES} <= users
    assert {"rogatory-service", "admin-ops"} <= users


def test_a_party_reads_and_replays_only_subjects_naming_it() -> None:
    for user in all_users(COURTS, AGENCIES, "ROGATORY"):
        if not user.user.startswith(("court-", "agency-")):
            continue
        party = user.user.split("-", 1)[1]
        readable = [s for s in user.permissions["subscribe"]["allow"] if not s.startswith("_INBOX_")]
        assert readable and all(f".{party}." in f"{s}." for s in readable), user.user
        creates = [s for s in user.permissions["publish"]["allow"] if s.startswith("$JS.API.")]
        assert all(s.startswith("$JS.API.CONSUMER.CREATE.ROGATORY.*.") and f".{party}." in f"{s}." for s in creates)
        assert user.permissions["subscribe"]["allow"][-1] == f"_INBOX_{user.user}.>"


def test_only_agencies_publish_and_only_their_own_replies_outside_the_stream() -> None:
    for user in all_users(COURTS, AGENCIES, "ROGATORY"):
        events = [s for s in user.permissions["publish"]["allow"] if s.startswith("rogatory.")]
        if user.user.startswith("agency-"):
            assert events == [f"rogatory.direct.v1.query-reply.{user.user.removeprefix('agency-')}.>"]
        elif user.user != "rogatory-service":
            assert events == []


def test_agencies_take_requests_live_and_cannot_replay_them() -> None:
    for user in all_users(COURTS, AGENCIES, "ROGATORY"):
        if not user.user.startswith("agency-"):
            continue
        agency = user.user.removeprefix("agency-")
        assert f"rogatory.direct.v1.query.*.{agency}.requested" in user.permissions["subscribe"]["allow"]
        assert not any("rogatory.direct" in s for s in user.permissions["publish"]["allow"] if s.startswith("$JS."))
