"""NATS users and subject permissions for every court and agency, generated from the registry.

A court or agency may subscribe to its own subjects — the subject families of the event
catalog, services/contract/events.py (docs/events.md, "Subscribing to one court's or one
agency's events") — and publish nowhere else, except what reading them
through JetStream needs and, for agencies, the property-query network: requests addressed
to them and their replies, on core NATS subjects under `rogatory.direct.v1`:

- core subscriptions: its subject patterns, plus its own reply inbox `_INBOX_{user}.>`
  (connect with `inbox_prefix="_INBOX_{user}"`);
- JetStream: it owns one consumer per subject family it may read, named `{user}-{family}`
  (e.g. `court-gd0112-cases`). Everything JetStream does with a consumer names it in the
  subject, and NATS permissions match whole tokens only (`court-gd0112-*` is a literal, not
  a prefix), so each owned name is granted by itself:
  - create it only through the API subject that also names its single filter,
    `$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter}`, with the filter inside that family —
    so it replays its own events from any point and nothing else, and cannot create,
    update or take over a consumer of a service or of another party;
  - ack, nak, +WPI, +NXT or +TERM only deliveries of its own consumers,
    `$JS.ACK.{stream}.{name}.>`, and answer their flow control, `$JS.FC.{stream}.{name}.*`;
    this nats-server writes ack subjects in that form only (no domain or account-hash
    tokens) and ignores acks in any other form;
  - read its info and delete it.
  Messages are pushed to its inbox. No pull (`MSG.NEXT`): the server delivers a pull's
  messages to whatever reply subject the request names, so a puller could drop events onto
  subjects it may not publish on. No stream API at all.

The services get one user that may do everything they do — publish and read every subject,
create the event stream and the audit anchor stream when missing, run their durables — but
not delete, purge or update either stream, nor delete the anchor stream's messages (also
through a JetStream domain prefix, `$JS.{domain}.API.…`): whoever holds a service's
credentials cannot erase the event history or the anchored audit heads. That is the
operator's user, `rogatory-operator`, with full access (stream maintenance, `nats stream
edit`). Admins read every event (one consumer, `admin-{name}-all`). The user names are
`court-{id}`, `agency-{id}`, `admin-{name}`, `rogatory-service` and `rogatory-operator`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.audit.anchors import ANCHOR_STREAM
from services.contract import events
from services.plumbing.events import DIRECT_ROOT, SUBJECT_ROOT

SERVICE_USER = "rogatory-service"
OPERATOR_USER = "rogatory-operator"
#: Stream API calls no service may make on the event stream or the anchor stream: `{s}` is the stream.
STREAM_MAINTENANCE = ("STREAM.DELETE.{s}", "STREAM.PURGE.{s}", "STREAM.UPDATE.{s}")
#: … and on the anchor stream only (which denies them itself too): deleting one anchored head.
ANCHOR_MAINTENANCE = ("STREAM.MSG.DELETE.{s}",)

#: Subject families each kind of party may read, by family name; `{id}` is its id. Its consumer
#: on a family is named `{party}-{id}-{family}`. They come from the event catalog.
COURT_SUBJECTS = events.families("court")
AGENCY_SUBJECTS = events.families("agency")
ADMIN_SUBJECTS = events.families("admin")


@dataclass(frozen=True)
class NatsUser:
    user: str
    password: str
    permissions: dict[str, Any]

    @property
    def inbox_prefix(self) -> str:
        return inbox_prefix(self.user)

    def server_entry(self) -> dict[str, Any]:
        return {"user": self.user, "password": self.password, "permissions": self.permissions}


def inbox_prefix(user: str) -> str:
    return f"_INBOX_{user}"


def _subjects(patterns: Iterable[str], principal_id: str, root: str = SUBJECT_ROOT) -> list[str]:
    return [f"{root}.{p.format(id=principal_id)}" for p in patterns]


def _families(families: Mapping[str, str], principal_id: str) -> dict[str, str]:
    """Family name → the subject pattern it covers, for one court or agency."""
    return dict(zip(families, _subjects(families.values(), principal_id), strict=True))


def consumer_name(user: str, family: str) -> str:
    """The one JetStream consumer `user` owns on a subject family."""
    return f"{user}-{family}"


def owned_consumer_permissions(user: str, families: Mapping[str, str], stream: str) -> list[str]:
    """Publish rights over `user`'s own consumers, one per family, and over no other consumer."""
    allowed = []
    for family, pattern in families.items():
        name = consumer_name(user, family)
        allowed += [
            f"$JS.API.CONSUMER.CREATE.{stream}.{name}.{pattern}",  # single filter, inside the family
            f"$JS.API.CONSUMER.INFO.{stream}.{name}",
            f"$JS.API.CONSUMER.DELETE.{stream}.{name}",
            f"$JS.ACK.{stream}.{name}.>",  # +ACK, -NAK, +WPI, +NXT, +TERM of its own deliveries
            f"$JS.FC.{stream}.{name}.*",  # flow control of its push consumer
        ]
    return allowed


def reader_permissions(
    user: str, families: Mapping[str, str], stream: str, *, publishes: Iterable[str] = (), live: Iterable[str] = ()
) -> dict[str, Any]:
    """Read each family live or through the one consumer `user` owns on it, `live` live only; publish `publishes`."""
    return {
        "publish": {"allow": [*publishes, *owned_consumer_permissions(user, families, stream)]},
        "subscribe": {"allow": [*families.values(), *live, f"{inbox_prefix(user)}.>"]},
    }


def court_user(court_id: str, stream: str, password: str) -> NatsUser:
    user = f"court-{court_id}"
    return NatsUser(user, password, reader_permissions(user, _families(COURT_SUBJECTS, court_id), stream))


def agency_user(agency_id: str, stream: str, password: str) -> NatsUser:
    user = f"agency-{agency_id}"
    families = _families(AGENCY_SUBJECTS, agency_id)
    live = _subjects(events.AGENCY_DIRECT_SUBSCRIBES, agency_id, DIRECT_ROOT)
    publishes = _subjects(events.AGENCY_DIRECT_PUBLISHES, agency_id, DIRECT_ROOT)
    return NatsUser(user, password, reader_permissions(user, families, stream, publishes=publishes, live=live))


def admin_user(name: str, stream: str, password: str) -> NatsUser:
    user = f"admin-{name}"
    return NatsUser(user, password, reader_permissions(user, _families(ADMIN_SUBJECTS, name), stream))


def service_user(password: str, stream: str) -> NatsUser:
    """Everything but the streams' maintenance (module docstring); deny wins over allow."""
    calls = [c.format(s=stream) for c in STREAM_MAINTENANCE]
    calls += [c.format(s=ANCHOR_STREAM) for c in (*STREAM_MAINTENANCE, *ANCHOR_MAINTENANCE)]
    denied = [f"{prefix}.{call}" for call in calls for prefix in ("$JS.API", "$JS.*.API")]  # with a domain too
    permissions = {"publish": {"allow": [">"], "deny": denied}, "subscribe": {"allow": [">"]}}
    return NatsUser(SERVICE_USER, password, permissions)


def operator_user(password: str) -> NatsUser:
    """Stream maintenance (update, purge, delete), and anything else: for an operator, never a service."""
    return NatsUser(OPERATOR_USER, password, {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}})


def all_users(
    courts: CourtCatalog, agencies: AgencyCatalog, stream: str, *, admins: Iterable[str] = ("ops",), password: Any = None
) -> list[NatsUser]:
    """One user per court and agency of the registry, the admins, the services' user and the operator's.

    `password(user)` makes each password (default: 32 random URL-safe characters).
    """
    make = password or (lambda _user: secrets.token_urlsafe(24))
    users = [service_user(make(SERVICE_USER), stream), operator_user(make(OPERATOR_USER))]
    users += [court_user(c.id, stream, make(f"court-{c.id}")) for c in courts]
    users += [agency_user(a.id, stream, make(f"agency-{a.id}")) for a in agencies]
    users += [admin_user(name, stream, make(f"admin-{name}")) for name in admins]
    return users


def authorization_block(users: Iterable[NatsUser]) -> str:
    """A nats-server `authorization` block (the config format accepts JSON values)."""
    entries = [user.server_entry() for user in users]
    return "authorization {\n  users: " + json.dumps(entries, indent=2, ensure_ascii=False) + "\n}\n"


def credentials(users: Iterable[NatsUser]) -> dict[str, dict[str, str]]:
    """What each party's system is given: user, password, inbox prefix."""
    return {u.user: {"user": u.user, "password": u.password, "inbox_prefix": u.inbox_prefix} for u in users}
