"""NATS users and subject permissions for every court and agency, generated from the registry.

A court or agency may subscribe to its own subjects (docs/events.md, "Subscribing to one
court's or one agency's events") and publish nowhere else, except what reading them
through JetStream needs and, for agencies, the property-query network: requests addressed
to them and their replies, on core NATS subjects under `rogatory.direct.v1`:

- core subscriptions: its subject patterns, plus its own reply inbox `_INBOX_{user}.>`
  (connect with `inbox_prefix="_INBOX_{user}"`);
- JetStream: creating a consumer on the stream is allowed only through the API subject that
  names the consumer's single filter subject, `$JS.API.CONSUMER.CREATE.{stream}.{name}.{filter}`,
  and only for filters inside its patterns — so it can replay its own events from any
  point and nothing else. Messages are pushed to its inbox; it may ack them and answer
  flow control. No pull (`MSG.NEXT`), info or delete on consumers: those name a consumer,
  not a subject, and could reach another party's.

The services get one user with full access; admins read every event. The user names are
`court-{id}`, `agency-{id}`, `admin-{name}` and `rogatory-service`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.plumbing.events import DIRECT_ROOT, SUBJECT_ROOT

SERVICE_USER = "rogatory-service"

#: Subject patterns a court may read; `{id}` is the court's id.
COURT_SUBJECTS = (
    "case.{id}.>",
    "delegation.{id}.*.>",  # matters it sent
    "delegation.*.{id}.>",  # matters it received
    "supervision.{id}.>",  # matters escalated to it
    "notice.{id}.>",
    "seizure.{id}.>",
    "vehicle.{id}.>",
    "query.{id}.>",
)
#: Subject patterns an agency may read.
AGENCY_SUBJECTS = (
    "notice.*.{id}.>",
    "seizure.*.{id}.>",
    "watchlist.{id}.>",
)
#: Property-query requests addressed to an agency (core NATS, not in the stream: live only).
AGENCY_DIRECT_SUBSCRIBES = ("query.*.{id}.requested",)
#: What an agency publishes itself: its replies to property queries.
AGENCY_DIRECT_PUBLISHES = ("query-reply.{id}.>",)


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


def reader_permissions(
    user: str, readable: list[str], stream: str, *, publishes: Iterable[str] = (), live: Iterable[str] = ()
) -> dict[str, Any]:
    """Read `readable` live or through JetStream consumers filtered inside it, and `live` live only; publish `publishes`."""
    consumer_api = [f"$JS.API.CONSUMER.CREATE.{stream}.*.{pattern}" for pattern in readable]
    delivery = [f"$JS.ACK.{stream}.>", f"$JS.FC.{stream}.>"]  # ack pushed messages, answer flow control
    return {
        "publish": {"allow": [*publishes, *consumer_api, *delivery]},
        "subscribe": {"allow": [*readable, *live, f"{inbox_prefix(user)}.>"]},
    }


def court_user(court_id: str, stream: str, password: str) -> NatsUser:
    user = f"court-{court_id}"
    return NatsUser(user, password, reader_permissions(user, _subjects(COURT_SUBJECTS, court_id), stream))


def agency_user(agency_id: str, stream: str, password: str) -> NatsUser:
    user = f"agency-{agency_id}"
    readable = _subjects(AGENCY_SUBJECTS, agency_id)
    live = _subjects(AGENCY_DIRECT_SUBSCRIBES, agency_id, DIRECT_ROOT)
    publishes = _subjects(AGENCY_DIRECT_PUBLISHES, agency_id, DIRECT_ROOT)
    return NatsUser(user, password, reader_permissions(user, readable, stream, publishes=publishes, live=live))


def admin_user(name: str, stream: str, password: str) -> NatsUser:
    user = f"admin-{name}"
    return NatsUser(user, password, reader_permissions(user, [f"{SUBJECT_ROOT}.>"], stream))


def service_user(password: str) -> NatsUser:
    return NatsUser(SERVICE_USER, password, {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}})


def all_users(
    courts: CourtCatalog, agencies: AgencyCatalog, stream: str, *, admins: Iterable[str] = ("ops",), password: Any = None
) -> list[NatsUser]:
    """One user per court and agency of the registry, the admins and the services' user.

    `password(user)` makes each password (default: 32 random URL-safe characters).
    """
    make = password or (lambda _user: secrets.token_urlsafe(24))
    users = [service_user(make(SERVICE_USER))]
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
