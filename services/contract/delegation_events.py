"""The span attributes of a delegated matter, as a delegation event's payload carries it (field
`delegation`): the event catalog (services/contract/events.py) gives them to the relay's and
consumers' spans of every delegation and supervision event, and services/delegation/tracing.py
sets the same names from the domain object on the calls' spans."""

from __future__ import annotations

from rogatory.delegation.v1 import delegation_pb2 as pb

#: Span attribute names of a delegated matter (services/delegation/tracing.py sets them from the domain object).
MATTER_NAME = "rogatory.delegation.name"
MATTER_ID = "rogatory.delegation.id"
MATTER_KIND = "rogatory.delegation.matter_kind"
CASE_NAME = "rogatory.case.name"
CASE_NUMBER = "rogatory.case.number"
REQUESTING_COURT = "rogatory.court.requesting"
ENTRUSTED_COURT = "rogatory.court.entrusted"


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
