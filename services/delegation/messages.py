"""Translation between delegation protobuf messages and domain objects.

Matter details are copied field by field by name: each `details` dataclass has exactly the
fields of its protobuf message (checked by the tests), enums travel as names, absent amounts
as 0. Every message built here masks the ID number of control-measure details.

Domain validation reports paths of the domain's commands ("delegation.details.amount_fen",
"officer.name"); `proto_paths` rewrites them to the request's field paths for BadRequest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from google.protobuf.duration_pb2 import Duration
from google.protobuf.message import Message
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.calendar import WorkingCalendar
from delegation.details import DETAILS_TYPES, MatterDetails, MatterKind, Officer
from delegation.lifecycle import (
    AcknowledgeDelegation,
    CompleteDelegation,
    ReturnDelegation,
    ReturnDelegationForSupplement,
    StartDelegation,
    SupplementDelegation,
    WithdrawDelegation,
)
from delegation.matters import Completion, CreateDelegation, Delegation, SupplementRequest
from registry.cases import mask_id_number
from registry.errors import FieldViolation, InvalidArgument
from services.contract.attachments import attachment_to_proto, attachments_from_proto
from services.delegation.schedule import TrackedDeadline, ordered
from services.delegation.store import StoredDelegation, TimelineEntry
from services.plumbing.fields import enum_name, etag_of, parse_decimal, parse_etag
from services.plumbing.times import timestamp

#: The `details` oneof field of each kind.
DETAILS_FIELDS: dict[MatterKind, str] = {
    MatterKind.DEPOSITS: "deposits",
    MatterKind.EQUITY: "equity",
    MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES: "registered_property",
    MatterKind.PROPERTY_INVESTIGATION: "property_investigation",
    MatterKind.SERVICE_OF_DOCUMENTS: "service_of_documents",
    MatterKind.CONTROL_MEASURES: "control_measures",
    MatterKind.OTHER: "other",
}
KIND_OF_FIELD = {name: kind for kind, name in DETAILS_FIELDS.items()}
#: Optional amounts: 0 on the wire means "not stated".
_OPTIONAL_AMOUNTS = frozenset({"amount_fen", "share_amount_fen"})
#: Domain reason names that the protobuf enums prefix (top-level enum values must be unique).
_RETURN_REASON_OTHER = ("OTHER", "RETURN_REASON_OTHER")
_WITHDRAW_REASON_OTHER = ("OTHER", "WITHDRAW_REASON_OTHER")


# --- domain → protobuf -------------------------------------------------------------------------------


def stored_to_proto(stored: StoredDelegation) -> pb.Delegation:
    if stored.rendered is not None:
        return stored.rendered  # type: ignore[no-any-return]
    return delegation_to_proto(
        stored.delegation, stored.deadlines, urge_count=stored.urge_count, escalated_at=stored.escalated_at
    )


def delegation_to_proto(
    delegation: Delegation,
    deadlines: Iterable[TrackedDeadline] = (),
    *,
    urge_count: int = 0,
    escalated_at: datetime | None = None,
) -> pb.Delegation:
    d = delegation
    message = pb.Delegation(
        name=d.name,
        case=d.case_name,
        entrusted_court=f"courts/{d.entrusted_court_id}",
        matter_kind=pb.Delegation.MatterKind.Value(str(d.matter_kind)),
        description=d.description,
        state=pb.Delegation.State.Value(str(d.state)),
        create_time=timestamp(d.created_at),
        update_time=timestamp(d.updated_at),
        etag=etag_of(d.version),
        attachments=[attachment_to_proto(a) for a in d.attachments],
        requesting_court=f"courts/{d.requesting_court_id}",
        deadlines=[deadline_to_proto(x) for x in ordered(deadlines)],
        urge_count=urge_count,
        case_number=d.case_number,
    )
    _set_details(message, d.details)
    _set_times(message, d, escalated_at)
    _set_outcomes(message, d)
    if d.requesting_officer:
        message.requesting_officer.CopyFrom(officer_to_proto(d.requesting_officer))
    if d.entrusted_officer:
        message.entrusted_officer.CopyFrom(officer_to_proto(d.entrusted_officer))
    return message


def _set_times(message: pb.Delegation, d: Delegation, escalated_at: datetime | None) -> None:
    for field_name, value in (
        ("acknowledge_time", d.acknowledged_at),
        ("start_time", d.started_at),
        ("complete_time", d.completed_at),
        ("return_time", d.returned_at),
        ("withdraw_time", d.withdrawn_at),
        ("escalate_time", escalated_at),
    ):
        if value is not None:
            getattr(message, field_name).CopyFrom(timestamp(value))


def _set_outcomes(message: pb.Delegation, d: Delegation) -> None:
    if d.completion:
        message.completion.CopyFrom(completion_to_proto(d.completion))
    if d.supplement_request:
        message.supplement_request.CopyFrom(supplement_request_to_proto(d.supplement_request))
    if d.return_reason:
        message.return_reason = pb.ReturnReason.Value(_alias(str(d.return_reason), _RETURN_REASON_OTHER))
    if d.withdraw_reason:
        message.withdraw_reason = pb.WithdrawReason.Value(_alias(str(d.withdraw_reason), _WITHDRAW_REASON_OTHER))


def _set_details(message: pb.Delegation, details: MatterDetails | None) -> None:
    if details is None:
        return
    target = getattr(message, DETAILS_FIELDS[details.matter_kind])
    for item in fields(details):
        value = getattr(details, item.name)
        if item.name == "id_number":
            value = mask_id_number(value)  # every response and event; the document keeps it whole
        _set_field(target, item.name, value)
    target.SetInParent()  # a details message whose fields are all defaults is still "set"


def _set_field(target: Message, name: str, value: Any) -> None:
    descriptor = target.DESCRIPTOR.fields_by_name[name]
    if value is None:
        return
    if descriptor.enum_type is not None:
        setattr(target, name, descriptor.enum_type.values_by_name[str(value)].number)
    elif isinstance(value, tuple):
        getattr(target, name).extend(str(v) for v in value)
    elif isinstance(value, Decimal):
        setattr(target, name, format(value, "f"))
    else:
        setattr(target, name, value)


def officer_to_proto(officer: Officer) -> pb.Officer:
    return pb.Officer(display_name=officer.name, phone=officer.phone)


def completion_to_proto(c: Completion) -> pb.Completion:
    return pb.Completion(
        outcome=pb.Completion.Outcome.Value(str(c.outcome)),
        amount_fen=c.amount_fen or 0,
        result_documents=[attachment_to_proto(a) for a in c.result_documents],
        note=c.note,
    )


def supplement_request_to_proto(r: SupplementRequest) -> pb.SupplementRequest:
    return pb.SupplementRequest(
        reason=pb.SupplementRequest.Reason.Value(str(r.reason)),
        missing_items=list(r.missing_items),
        note=r.note,
        request_time=timestamp(r.requested_at),
    )


def deadline_to_proto(deadline: TrackedDeadline) -> pb.Deadline:
    return pb.Deadline(
        step=pb.Deadline.Step.Value(str(deadline.step)),
        due_time=timestamp(deadline.due_at),
        provisional=deadline.provisional,
        status=pb.Deadline.Status.Value(str(deadline.status)),
        source=deadline.rule.source,
        extensions=[e.describe() for e in deadline.extensions],
    )


def entry_to_proto(entry: TimelineEntry, submitted_at: datetime, calendar: WorkingCalendar) -> pb.DelegationTimeline.Entry:
    """`calendar` must tolerate unknown years (`with_weekend_fallback`): a timeline always answers."""
    at = max(entry.at, submitted_at)  # a clock step backwards must not make elapsed negative
    elapsed = Duration()
    elapsed.FromTimedelta(at - submitted_at)
    return pb.DelegationTimeline.Entry(
        action=entry.action,
        from_state=pb.Delegation.State.Value(str(entry.from_state)) if entry.from_state else 0,
        to_state=pb.Delegation.State.Value(str(entry.to_state)) if entry.to_state else 0,
        actor_court=f"courts/{entry.actor_court_id}" if entry.actor_court_id else "",
        officer=entry.officer,
        time=timestamp(entry.at),
        elapsed=elapsed,
        elapsed_working_days=calendar.working_days_between(submitted_at, at),
        reason_code=entry.reason_code,
        note=entry.note,
        trace_id=entry.trace_id,
    )


# --- protobuf → domain ------------------------------------------------------------------------------


def create_command(request: pb.CreateDelegationRequest) -> CreateDelegation:
    d = request.delegation
    return CreateDelegation(
        parent=request.parent,
        case=d.case,
        entrusted_court=d.entrusted_court,
        matter_kind=enum_name(pb.Delegation.MatterKind, d.matter_kind),
        description=d.description,
        details=details_from_proto(d),
        attachments=attachments_from_proto(d.attachments),
        officer=officer_from_proto(d.requesting_officer) if d.HasField("requesting_officer") else None,
        property_division_code=d.property_division_code,
    )


def details_from_proto(message: pb.Delegation) -> MatterDetails | None:
    field_name = message.WhichOneof("details")
    if field_name is None:
        return None
    source = getattr(message, field_name)
    details_type = DETAILS_TYPES[KIND_OF_FIELD[field_name]]
    path = f"delegation.{field_name}"
    return details_type(**{f.name: _field_value(source, f.name, f"{path}.{f.name}") for f in fields(details_type)})


def _field_value(source: Message, name: str, path: str) -> Any:
    descriptor = source.DESCRIPTOR.fields_by_name[name]
    value = getattr(source, name)
    if descriptor.enum_type is not None:
        member = descriptor.enum_type.values_by_number.get(value)
        return "" if value == 0 else member.name if member else str(value)  # like enum_name
    if name in _OPTIONAL_AMOUNTS:
        return value or None
    if name == "share_percent":
        return parse_decimal(value, path, "BAD_PERCENT")
    # Repeated fields are the only non-scalar values here (FieldDescriptor.label is gone in protobuf 7).
    return value if isinstance(value, str | int) else tuple(value)


def officer_from_proto(officer: pb.Officer) -> Officer:
    return Officer(name=officer.display_name, phone=officer.phone)


def acknowledge_command(request: pb.AcknowledgeDelegationRequest) -> AcknowledgeDelegation:
    return AcknowledgeDelegation(officer_from_proto(request.officer), request.note, parse_etag(request.etag))


def start_command(request: pb.StartDelegationRequest) -> StartDelegation:
    return StartDelegation(request.note, parse_etag(request.etag))


def complete_command(request: pb.CompleteDelegationRequest) -> CompleteDelegation:
    c = request.completion
    return CompleteDelegation(
        outcome=enum_name(pb.Completion.Outcome, c.outcome),
        amount_fen=c.amount_fen or None,
        result_documents=attachments_from_proto(c.result_documents),
        note=c.note,
        expected_version=parse_etag(request.etag),
    )


def return_for_supplement_command(request: pb.ReturnDelegationForSupplementRequest) -> ReturnDelegationForSupplement:
    r = request.supplement_request
    return ReturnDelegationForSupplement(
        reason=enum_name(pb.SupplementRequest.Reason, r.reason),
        missing_items=tuple(r.missing_items),
        note=r.note,
        expected_version=parse_etag(request.etag),
    )


def supplement_command(request: pb.SupplementDelegationRequest) -> SupplementDelegation:
    return SupplementDelegation(attachments_from_proto(request.attachments), request.note, parse_etag(request.etag))


def return_command(request: pb.ReturnDelegationRequest) -> ReturnDelegation:
    return ReturnDelegation(
        reason=_unalias(enum_name(pb.ReturnReason, request.reason), _RETURN_REASON_OTHER),
        note=request.note,
        approval_court=request.approval_court,
        approval_reference=request.approval_reference,
        expected_version=parse_etag(request.etag),
    )


def withdraw_command(request: pb.WithdrawDelegationRequest) -> WithdrawDelegation:
    reason = _unalias(enum_name(pb.WithdrawReason, request.reason), _WITHDRAW_REASON_OTHER)
    return WithdrawDelegation(reason, request.note, parse_etag(request.etag))


def _alias(name: str, pair: tuple[str, str]) -> str:
    return pair[1] if name == pair[0] else name


def _unalias(name: str, pair: tuple[str, str]) -> str:
    return pair[0] if name == pair[1] else name


# --- field paths -------------------------------------------------------------------------------------

#: Domain paths → request paths, per method; the first matching prefix wins.
OFFICER_PATHS = (("officer.name", "officer.display_name"),)
COMPLETION_PATHS = tuple((p, f"completion.{p}") for p in ("outcome", "amount_fen", "result_documents", "note"))
SUPPLEMENT_REQUEST_PATHS = tuple((p, f"supplement_request.{p}") for p in ("reason", "missing_items", "note"))


def create_paths(request: pb.CreateDelegationRequest) -> tuple[tuple[str, str], ...]:
    details_field = request.delegation.WhichOneof("details") or "details"
    return (
        ("delegation.officer.name", "delegation.requesting_officer.display_name"),
        ("delegation.officer", "delegation.requesting_officer"),
        ("delegation.details", f"delegation.{details_field}"),
    )


@contextmanager
def proto_paths(renames: tuple[tuple[str, str], ...]) -> Iterator[None]:
    """Re-raises an InvalidArgument with its field paths renamed to the request's."""
    try:
        yield
    except InvalidArgument as error:
        if not error.violations:
            raise
        renamed = [FieldViolation(_renamed(v.field, renames), v.description, v.reason) for v in error.violations]
        raise InvalidArgument.of(renamed, reason=error.reason) from None


def _renamed(path: str, renames: tuple[tuple[str, str], ...]) -> str:
    for old, new in renames:
        if path == old or path.startswith((f"{old}.", f"{old}[")):
            return new + path[len(old) :]
    return path
