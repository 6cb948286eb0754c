"""Which protobuf payload each delegation event carries, for code that reads them generically
(span attributes, metrics). Every one carries the matter in field `delegation`."""

from __future__ import annotations

from google.protobuf.message import Message
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


def verb_of(event_type: str) -> str:
    """`acknowledged` for `rogatory.delegation.acknowledged.v1`."""
    return event_type.split(".")[2]


def parse(event_type: str, payload: bytes) -> Message | None:
    """The payload of a delegation or supervision event; None for other events."""
    if not event_type.startswith(PREFIXES):
        return None
    return PAYLOADS.get(verb_of(event_type), events_pb2.DelegationTransitioned).FromString(payload)
