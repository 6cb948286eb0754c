"""The event catalog clients load: each event type's subject template and protobuf payload,
and the consumer each court or agency owns per subject family, as JSON beside the protos.

`make proto` writes it to protos/rogatory/events/v1/catalog.json (`python -m
services.tools.event_catalog`); tests/unit/test_event_catalog.py fails when that file is
stale. A subscriber in any language maps a message's `ce-type` header to its payload with it
(tests/clients/node/court_system.mjs does).

The code has no single event catalog yet (issue 16, point 4): this assembles one from where
each service defines its events, so it follows the code rather than docs/events.md:

- types and verbs: the constants and type functions of services/registry/handlers.py,
  services/delegation/handlers.py and scanner.py, services/assistance/handlers.py,
  services/assistance/vehicles/handlers.py, services/assistance/queries/handlers.py,
  services/plumbing/consumer.py (dead letters) and services/audit/log.py (audit alerts);
- subjects: those modules' subject functions, called with `{placeholders}` for the ids (the
  case-closed and alert subjects are built inline there, so their tokens are repeated here);
- payloads: services/contract/delegation_events.py for delegation events; for the others the
  code only names the payload where it builds it, so the mapping is written here once;
- consumers and filters: services/tools/nats_permissions.py.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from google.protobuf.message import Message
from rogatory.events.v1 import alert_events_pb2, events_pb2, query_events_pb2, vehicle_events_pb2

from services.assistance import handlers as notices
from services.assistance.queries import handlers as queries
from services.assistance.vehicles import handlers as vehicles
from services.audit.log import CHAIN_BROKEN
from services.audit.log import CONSUMER as AUDIT_CONSUMER
from services.contract import delegation_events
from services.delegation import handlers as delegations
from services.delegation import scanner
from services.plumbing.config import Settings
from services.plumbing.consumer import DEAD_LETTERED
from services.plumbing.events import SUBJECT_ROOT, subject
from services.registry import handlers as registry
from services.tools.nats_permissions import ADMIN_SUBJECTS, AGENCY_SUBJECTS, COURT_SUBJECTS, consumer_name

OUT = Path(__file__).resolve().parents[2] / "protos" / "rogatory" / "events" / "v1" / "catalog.json"
COURT, AGENCY = "{court}", "{agency}"
REQUESTING, ENTRUSTED, SUPERIOR = "{requesting_court}", "{entrusted_court}", "{superior_court}"
MATTER: Any = SimpleNamespace(requesting_court_id=REQUESTING, entrusted_court_id=ENTRUSTED)
NOTICE: Any = SimpleNamespace(court_id=COURT, agency_id=AGENCY)
VEHICLE_PAYLOADS: dict[str, type[Message]] = {
    "created": vehicle_events_pb2.VehicleControlCreated,
    "sighted": vehicle_events_pb2.VehicleSighted,
    "seized": vehicle_events_pb2.VehicleSeized,
    "step-recorded": vehicle_events_pb2.PostSeizureStepRecorded,
    "target-missed": vehicle_events_pb2.PostSeizureTargetMissed,
    **dict.fromkeys(vehicles.ENDED_VERBS.values(), vehicle_events_pb2.VehicleControlEnded),
}


@dataclass(frozen=True)
class Entry:
    type: str
    subject: str
    payload: type[Message]

    def as_json(self) -> dict[str, str]:
        descriptor = self.payload.DESCRIPTOR
        return {"type": self.type, "subject": self.subject, "payload": descriptor.full_name, "proto": descriptor.file.name}


def case_events() -> list[Entry]:
    return [
        Entry(registry.CASE_REGISTERED, registry.case_registered_subject(COURT), events_pb2.CaseRegistered),
        Entry(registry.CASE_CLOSED, subject("case", COURT, "closed"), events_pb2.CaseClosed),
    ]


def delegation_events_() -> list[Entry]:
    verbs = ["submitted", *delegations.VERBS.values(), delegations.URGED, scanner.DUE_SOON, scanner.OVERDUE]
    verbs += [scanner.ESCALATED, delegations.DEADLINE_EXTENDED]
    entries = [
        Entry(
            delegations.event_type(verb),
            delegations.delegation_subject(MATTER, verb),
            delegation_events.PAYLOADS.get(verb, events_pb2.DelegationTransitioned),
        )
        for verb in dict.fromkeys(verbs)  # withdrawn and deemed withdrawn are one event
    ]
    supervision = subject("supervision", SUPERIOR, scanner.ESCALATED)
    return [*entries, Entry(scanner.SUPERVISION_ESCALATED, supervision, delegation_events.PAYLOADS[scanner.ESCALATED])]


def notice_events() -> list[Entry]:
    sent = Entry(notices.NOTICE_SENT, notices.notice_subject(NOTICE, "sent"), events_pb2.AssistanceNoticeSent)
    steps = [
        Entry(notices.notice_event_type(verb), notices.notice_subject(NOTICE, verb), events_pb2.AssistanceNoticeTransitioned)
        for verb in dict.fromkeys(notices.VERBS.values())
    ]
    seizure_verbs = (
        notices.SEIZURE_EFFECTIVE,
        notices.SEIZURE_RENEWED,
        notices.SEIZURE_RELEASED,
        notices.SEIZURE_EXPIRING,
        notices.SEIZURE_LAPSED,
    )
    seizures = [
        Entry(notices.seizure_event_type(verb), notices.seizure_subject(NOTICE, verb), events_pb2.SeizureChanged)
        for verb in seizure_verbs
    ]
    return [sent, *steps, *seizures]


def vehicle_events() -> list[Entry]:
    court = [
        Entry(f"rogatory.{vehicles.COURT_AGGREGATE}.{verb}.v1", vehicles.court_subject(COURT, verb), payload)
        for verb, payload in VEHICLE_PAYLOADS.items()
    ]
    watch_list = {
        vehicles.ADDED: vehicle_events_pb2.WatchListEntryAdded,
        vehicles.REMOVED: vehicle_events_pb2.WatchListEntryRemoved,
    }
    agency = [
        Entry(f"rogatory.{vehicles.AGENCY_AGGREGATE}.{verb}.v1", vehicles.agency_subject(AGENCY, COURT, verb), payload)
        for verb, payload in watch_list.items()
    ]
    return court + agency


def query_events() -> list[Entry]:
    return [
        Entry(queries.CREATED, queries.court_subject(COURT, "created"), query_events_pb2.PropertyQueryCreated),
        Entry(queries.COMPLETED, queries.court_subject(COURT, "completed"), query_events_pb2.PropertyQueryCompleted),
    ]


def alert_events() -> list[Entry]:
    return [
        Entry(DEAD_LETTERED, subject("alert", "consumer", "{consumer}", "dead-lettered"), alert_events_pb2.EventDeadLettered),
        Entry(CHAIN_BROKEN, subject("alert", "audit", AUDIT_CONSUMER, "broken"), alert_events_pb2.AuditChainBroken),
    ]


def direct_messages() -> list[dict[str, str]]:
    """Property-query requests and replies: core NATS, not stored, no envelope headers."""
    messages = [
        (queries.request_subject(COURT, AGENCY), query_events_pb2.PropertyQueryRequested),
        (queries.reply_subject(AGENCY, COURT), query_events_pb2.PropertyQueryReply),
    ]
    return [
        {"subject": s, "payload": p.DESCRIPTOR.full_name, "proto": p.DESCRIPTOR.file.name}  # type: ignore[attr-defined]
        for s, p in messages
    ]


def consumers(kind: str, families: dict[str, str], placeholder: str) -> dict[str, dict[str, str]]:
    """Per subject family: the filter and the one durable consumer a court's or agency's NATS user owns on it."""
    user = f"{kind}-{placeholder}"
    return {
        family: {"filter": f"{SUBJECT_ROOT}.{pattern.format(id=placeholder)}", "consumer": consumer_name(user, family)}
        for family, pattern in families.items()
    }


def catalog() -> dict[str, Any]:
    events = case_events() + delegation_events_() + notice_events() + vehicle_events() + query_events() + alert_events()
    types = [e.type for e in events]
    duplicates = sorted({t for t in types if types.count(t) > 1})
    if duplicates:
        raise ValueError(f"event types with two definitions: {duplicates}")
    return {
        "$comment": (
            "Generated by `make proto` (services/tools/event_catalog.py) from the code's event definitions: "
            "do not edit. Each message on the stream carries its type in the ce-type header and the payload "
            "(protobuf, message `payload` of file `proto` under protos/) as its body; docs/events.md."
        ),
        "stream": Settings.model_fields["stream_name"].default,
        "events": [e.as_json() for e in events],
        "direct": direct_messages(),
        "consumers": {
            "court": consumers("court", COURT_SUBJECTS, COURT),
            "agency": consumers("agency", AGENCY_SUBJECTS, AGENCY),
            "admin": consumers("admin", ADMIN_SUBJECTS, "{name}"),
        },
    }


def render() -> str:
    return json.dumps(catalog(), ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write it (default: {OUT})")
    out = parser.parse_args().out
    out.write_text(render(), encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()
