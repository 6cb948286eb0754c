"""Which protobuf payload each delegation event carries, for code that reads them generically
(span attributes, metrics). Every one carries the matter in field `delegation`.

The span attributes of a delegation event live here too, because more than one service
reads them: the delegation service names the matter on its relay and consumer spans, and
the registry hosts the audit appender, whose spans do the same for every delegation event."""

from __future__ import annotations

from typing import Any

from google.protobuf.message import Message
from rogatory.delegation.v1 import delegation_pb2 as pb
from rogatory.events.v1 import events_pb2

#: Payload type by event verb (`rogatory.delegation.{verb}.v1`); lifecycle verbs not listed
#: (acknowledged, started, completed, returned…) carry DelegationTransitioned.
PAYLOADS: dict[str, type[Message]] = {
    "submitted": events_pb2.DelegationSubmitted,
    "urged": events_pb2.DelegationUrged,
    "due-soon": events_pb2.DelegationDeadlineReached,
    "overdue": events_pb2.DelegationDeadlineReached,
    "escalated": events_pb2.DelegationEscalated,
    "deadline-extended": events_pb2.DelegationDeadlineExtended,
}
PREFIXES = ("rogatory.delegation.", "rogatory.supervision.")

#: Span attribute names of a delegated matter (services/delegation/tracing.py sets them from the domain object).
MATTER_NAME = "rogatory.delegation.name"
MATTER_ID = "rogatory.delegation.id"
MATTER_KIND = "rogatory.delegation.matter_kind"
CASE_NAME = "rogatory.case.name"
CASE_NUMBER = "rogatory.case.number"
REQUESTING_COURT = "rogatory.court.requesting"
ENTRUSTED_COURT = "rogatory.court.entrusted"


def verb_of(event_type: str) -> str:
    """`acknowledged` for `rogatory.delegation.acknowledged.v1`."""
    return event_type.split(".")[2]


def parse(event_type: str, payload: bytes) -> Message | None:
    """The payload of a delegation or supervision event; None for other events."""
    if not event_type.startswith(PREFIXES):
        return None
    return PAYLOADS.get(verb_of(event_type), events_pb2.DelegationTransitioned).FromString(payload)


def message_attributes(message: pb.Delegation) -> dict[str, str]:
    """The matter's span attributes, from the matter as an event carries it."""
    parts = message.name.split("/")  # courts/{requesting}/delegations/{id}
    return {
        MATTER_NAME: message.name,
        MATTER_ID: parts[-1],
        MATTER_KIND: pb.Delegation.MatterKind.Name(message.matter_kind),
        CASE_NAME: message.case,
        CASE_NUMBER: message.case_number,
        REQUESTING_COURT: parts[1] if len(parts) > 1 else "",
        ENTRUSTED_COURT: message.entrusted_court.removeprefix("courts/"),
    }


def event_attributes(event_type: str, payload: bytes) -> dict[str, Any]:
    """For the relay's and consumers' spans (services.plumbing.telemetry.add_event_attributes)."""
    message = parse(event_type, payload)
    return {} if message is None else message_attributes(message.delegation)  # type: ignore[attr-defined]
