"""Delegation metrics, recorded from the delegation events (`rogatory.v1.delegation.>`).

Recording from events rather than in the handlers keeps one place that knows them, counts
each event once (the consumer's inbox) whichever replica or job — the scanner included —
made it, and leaves the write path alone. An escalation is counted on the delegation
subject only, not again on the supervising court's. Durations are in seconds (OpenTelemetry
convention; Prometheus shows `…_seconds`), with buckets from an hour to half a year.

- `rogatory.delegation.time_to_acknowledge`, `rogatory.delegation.time_to_complete`:
  histograms from creation, per matter kind, entrusted court and requesting court;
- `rogatory.delegation.overdue` (per deadline step), `.urged` (automatic or by hand),
  `.escalated`, `.returned` (per reason), `.returned_for_supplement`: counters with the
  same attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.protobuf.message import Message
from rogatory.delegation.v1 import delegation_pb2 as pb

from services.contract.events import in_aggregate
from services.plumbing.events import ReceivedEvent
from services.plumbing.metrics import TURNAROUND_BUCKETS, meter

_meter = meter(__name__)
TIME_TO_ACKNOWLEDGE = _meter.create_histogram(
    "rogatory.delegation.time_to_acknowledge",
    unit="s",
    description="From a matter's creation to its acknowledgement by the entrusted court",
    explicit_bucket_boundaries_advisory=TURNAROUND_BUCKETS,
)
TIME_TO_COMPLETE = _meter.create_histogram(
    "rogatory.delegation.time_to_complete",
    unit="s",
    description="From a matter's creation to its completion",
    explicit_bucket_boundaries_advisory=TURNAROUND_BUCKETS,
)
OVERDUE = _meter.create_counter("rogatory.delegation.overdue", unit="{matter}", description="Deadlines missed")
URGED = _meter.create_counter("rogatory.delegation.urged", unit="{urge}", description="Urges (催办), automatic or by hand")
ESCALATED = _meter.create_counter("rogatory.delegation.escalated", unit="{matter}", description="Escalations (督办)")
RETURNED = _meter.create_counter("rogatory.delegation.returned", unit="{matter}", description="Matters returned or refused")
RETURNED_FOR_SUPPLEMENT = _meter.create_counter(
    "rogatory.delegation.returned_for_supplement", unit="{matter}", description="Matters sent back for supplementary materials"
)


def matter_labels(delegation: pb.Delegation) -> dict[str, str]:
    return {
        "matter_kind": pb.Delegation.MatterKind.Name(delegation.matter_kind),
        "entrusted_court": delegation.entrusted_court.removeprefix("courts/"),
        "requesting_court": delegation.requesting_court.removeprefix("courts/"),
    }


DELEGATION_EVENTS = {kind.type: kind for kind in in_aggregate("delegation")}


def _seconds_between(start: Any, end: Any) -> float:
    return max(0.0, (end.ToDatetime() - start.ToDatetime()).total_seconds())


def record(verb: str, message: Message) -> None:
    """Records what one delegation event says (`rogatory.delegation.{verb}.v1`); other verbs record nothing."""
    delegation: pb.Delegation = message.delegation  # type: ignore[attr-defined]
    labels = matter_labels(delegation)
    if verb == "acknowledged" and delegation.HasField("acknowledge_time"):
        TIME_TO_ACKNOWLEDGE.record(_seconds_between(delegation.create_time, delegation.acknowledge_time), labels)
    elif verb == "completed" and delegation.HasField("complete_time"):
        TIME_TO_COMPLETE.record(_seconds_between(delegation.create_time, delegation.complete_time), labels)
    elif verb == "overdue":
        OVERDUE.add(1, {**labels, "step": pb.Deadline.Step.Name(message.deadline.step)})  # type: ignore[attr-defined]
    elif verb == "urged":
        URGED.add(1, {**labels, "automatic": str(message.automatic).lower()})  # type: ignore[attr-defined]
    elif verb == "escalated":
        ESCALATED.add(1, labels)
    elif verb == "returned":
        RETURNED.add(1, {**labels, "reason": pb.ReturnReason.Name(delegation.return_reason)})
    elif verb == "returned-for-supplement":
        RETURNED_FOR_SUPPLEMENT.add(1, labels)


def record_events(events: Sequence[ReceivedEvent]) -> None:
    """Records the events applied by a consumer of the delegation events (the turnaround
    projection's, after its commit), so they are not read and deduplicated twice."""
    for event in events:
        kind = DELEGATION_EVENTS.get(event.event_type)
        if kind is not None:
            record(kind.verb, kind.parse(event.data))
