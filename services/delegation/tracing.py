"""One delegated matter, one trace.

The call that creates a matter starts its trace; the trace context is stored with the
matter's row. Every later write — a lifecycle transition, an urge, an extension, a scanner
action days later — runs in a span that continues that stored context and links to the
call that caused it, so the outbox rows it writes, the relay's send spans and every
consumer's process spans all land in the matter's trace. Every such span carries the
matter, its case number and both courts (`matter_attributes`), so an admin can find the
trace from a matter name or a case number.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry.trace import SpanKind
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.matters import Delegation
from services.delegation import event_payloads
from services.plumbing.telemetry import continuing_trace

MATTER_NAME = "rogatory.delegation.name"
MATTER_ID = "rogatory.delegation.id"
MATTER_KIND = "rogatory.delegation.matter_kind"
CASE_NAME = "rogatory.case.name"
CASE_NUMBER = "rogatory.case.number"
REQUESTING_COURT = "rogatory.court.requesting"
ENTRUSTED_COURT = "rogatory.court.entrusted"


def matter_attributes(delegation: Delegation) -> dict[str, str]:
    return {
        MATTER_NAME: delegation.name,
        MATTER_ID: delegation.id,
        MATTER_KIND: str(delegation.matter_kind),
        CASE_NAME: delegation.case_name,
        CASE_NUMBER: delegation.case_number,
        REQUESTING_COURT: delegation.requesting_court_id,
        ENTRUSTED_COURT: delegation.entrusted_court_id,
    }


def message_attributes(message: pb.Delegation) -> dict[str, str]:
    """The same attributes, from the matter as an event carries it."""
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
    message = event_payloads.parse(event_type, payload)
    return {} if message is None else message_attributes(message.delegation)  # type: ignore[attr-defined]


def trace_id_of(traceparent: str) -> str:
    """The 32-hex trace id of a W3C traceparent; "" when there is none."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else ""


@contextmanager
def in_matter_trace(
    operation: str, delegation: Delegation, traceparent: str, kind: SpanKind = SpanKind.INTERNAL
) -> Iterator[None]:
    """Runs a write on `delegation` in a span of the matter's trace, linked both ways to the caller's."""
    with continuing_trace(f"delegation.{operation}", matter_attributes(delegation), traceparent, kind):
        yield
