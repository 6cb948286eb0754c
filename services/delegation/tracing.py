"""One delegated matter, one trace.

The call that creates a matter starts its trace; the trace context is stored with the
matter's row. Every later write — a lifecycle transition, an urge, an extension, a scanner
action days later — runs in a span that continues that stored context and links to the
call that caused it, so the outbox rows it writes, the relay's send spans and every
consumer's process spans all land in the matter's trace. Every such span carries the
matter, its case number and both courts (`matter_attributes`), so an admin can find the
trace from a matter name or a case number. The same attributes, read from a delegation
event's payload, come from services.contract.span_attributes.
"""

from __future__ import annotations

from delegation.matters import Delegation
from services.contract.span_attributes import (
    CASE_NAME,
    CASE_NUMBER,
    ENTRUSTED_COURT,
    MATTER_ID,
    MATTER_KIND,
    MATTER_NAME,
    REQUESTING_COURT,
)


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


def trace_id_of(traceparent: str) -> str:
    """The 32-hex trace id of a W3C traceparent; "" when there is none."""
    parts = traceparent.split("-")
    return parts[1] if len(parts) == 4 else ""
