"""The generated NATS permissions: every registry party has a user, and each user's
subjects name that party (checked against a real server in tests/integration)."""

from __future__ import annotations

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.tools.nats_permissions import AGENCY_SUBJECTS, COURT_SUBJECTS, all_users

COURTS, AGENCIES = CourtCatalog.default(), AgencyCatalog.default()


def test_every_court_and_agency_gets_a_user() -> None:
    users = {u.user for u in all_users(COURTS, AGENCIES, "ROGATORY")}
    assert {f"court-{c.id}" for c in COURTS} <= users and {f"agency-{a.id}" for a in AGENCIES} <= users
    assert {"rogatory-service", "rogatory-operator", "admin-ops"} <= users


def test_no_service_may_delete_purge_or_reconfigure_the_streams_and_the_operator_may() -> None:
    users = {u.user: u for u in all_users(COURTS, AGENCIES, "ROGATORY")}
    denied = set(users["rogatory-service"].permissions["publish"]["deny"])
    for stream in ("ROGATORY", "ROGATORY_AUDIT_ANCHORS"):
        for call in ("DELETE", "PURGE", "UPDATE"):
            assert {f"$JS.API.STREAM.{call}.{stream}", f"$JS.*.API.STREAM.{call}.{stream}"} <= denied
        assert f"$JS.API.STREAM.CREATE.{stream}" not in denied  # created when missing
    assert "$JS.API.STREAM.MSG.DELETE.ROGATORY_AUDIT_ANCHORS" in denied
    assert users["rogatory-operator"].permissions["publish"] == {"allow": [">"]}


def test_a_party_reads_and_replays_only_subjects_naming_it() -> None:
    for user in all_users(COURTS, AGENCIES, "ROGATORY"):
        if not user.user.startswith(("court-", "agency-")):
            continue
        party = user.user.split("-", 1)[1]
        readable = [s for s in user.permissions["subscribe"]["allow"] if not s.startswith("_INBOX_")]
        assert readable and all(f".{party}." in f"{s}." for s in readable), user.user
        creates = [s for s in user.permissions["publish"]["allow"] if s.startswith("$JS.API.CONSUMER.CREATE.")]
        assert creates and all(f".{party}." in f"{s}." for s in creates)
        assert user.permissions["subscribe"]["allow"][-1] == f"_INBOX_{user.user}.>"


def test_only_agencies_publish_and_only_their_own_replies_outside_the_stream() -> None:
    for user in all_users(COURTS, AGENCIES, "ROGATORY"):
        events = [s for s in user.permissions["publish"]["allow"] if s.startswith("rogatory.")]
        if user.user.startswith("agency-"):
            assert events == [f"rogatory.direct.v1.query-reply.{user.user.removeprefix('agency-')}.>"]
        elif user.user not in ("rogatory-service", "rogatory-operator"):
            assert events == []


def test_agencies_take_requests_live_and_cannot_replay_them() -> None:
    for user in all_users(COURTS, AGENCIES, "ROGATORY"):
        if not user.user.startswith("agency-"):
            continue
        agency = user.user.removeprefix("agency-")
        assert f"rogatory.direct.v1.query.*.{agency}.requested" in user.permissions["subscribe"]["allow"]
        assert not any("rogatory.direct" in s for s in user.permissions["publish"]["allow"] if s.startswith("$JS."))


def _jetstream_grant(grant: str) -> tuple[str, str, str]:
    """(what, stream, consumer) of `$JS.API.CONSUMER.{VERB}.{stream}.{name}…` or `$JS.{ACK|FC}.{stream}.{name}…`."""
    tokens = grant.split(".")
    if tokens[1] == "API":
        return ".".join(tokens[2:4]), tokens[4], tokens[5]
    return tokens[1], tokens[2], tokens[3]


def test_i15_p2_jetstream_grants_name_only_the_partys_own_consumers() -> None:
    """Acks, flow control and the consumer API of a party name one of its consumers, `{user}-{family}`,
    never a wildcard (`$JS.ACK.ROGATORY.>` let a court +TERM a service's deliveries); no pull, no stream API."""
    owners: dict[str, str] = {}
    for user in all_users(COURTS, AGENCIES, "ROGATORY"):
        if user.user in ("rogatory-service", "rogatory-operator"):
            continue
        grants = [s for s in user.permissions["publish"]["allow"] if s.startswith("$JS.")]
        parsed = [_jetstream_grant(s) for s in grants]
        assert {what for what, _, _ in parsed} == {"CONSUMER.CREATE", "CONSUMER.INFO", "CONSUMER.DELETE", "ACK", "FC"}
        assert {stream for _, stream, _ in parsed} == {"ROGATORY"}
        names = {name for _, _, name in parsed}
        assert all(name.startswith(f"{user.user}-") and "*" not in name and ">" not in name for name in names), user.user
        for name in names:
            assert owners.setdefault(name, user.user) == user.user, f"{name} granted to {owners[name]} and {user.user}"
            assert f"$JS.ACK.ROGATORY.{name}.>" in grants and f"$JS.FC.ROGATORY.{name}.*" in grants


def test_family_names_keep_consumer_names_apart() -> None:
    """`{user}-{family}` with hyphen-free family names: no two parties can end up with the same name."""
    assert all("-" not in family and "." not in family for family in [*COURT_SUBJECTS, *AGENCY_SUBJECTS])
