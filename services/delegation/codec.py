"""The JSON document of a delegation (`delegation.document`) and of its deadline rows.

The aggregate is read and written whole, so it is stored as one JSON document; only what is
filtered or guarded on (state, version, courts, times) also has a column of its own. The
document is internal: the ID numbers of control-measure details are kept in full here (the
officers who act need them) and masked in every message built from it (messages.py).

Explicit rather than reflective where types matter (enums, datetimes, Decimal, tuples), so a
renamed domain field fails the round-trip test instead of silently dropping data. `SCHEMA`
is written into every document; bump it and convert on read if the layout ever changes.
"""

from __future__ import annotations

from dataclasses import fields
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from delegation.deadlines import DeadlineRule, Step, Unit
from delegation.details import DETAILS_TYPES, Attachment, AttachmentKind, MatterDetails, MatterKind, Officer
from delegation.matters import (
    Action,
    Completion,
    Delegation,
    DelegationState,
    Outcome,
    ReturnApproval,
    ReturnReason,
    SupplementReason,
    SupplementRequest,
    Transition,
    WithdrawReason,
)
from services.delegation.schedule import GrantedExtension
from services.plumbing.times import required_time_from_json, time_from_json, time_to_json

SCHEMA = 1
Json = dict[str, Any]
E = TypeVar("E", bound=StrEnum)


# --- the delegation ------------------------------------------------------------------------------


def delegation_to_json(delegation: Delegation) -> Json:
    d = delegation
    return {
        "schema": SCHEMA,
        "id": d.id,
        "requesting_court_id": d.requesting_court_id,
        "case_name": d.case_name,
        "entrusted_court_id": d.entrusted_court_id,
        "matter_kind": str(d.matter_kind),
        "description": d.description,
        "created_at": time_to_json(d.created_at),
        "updated_at": time_to_json(d.updated_at),
        "state": str(d.state),
        "version": d.version,
        "details": _details_to_json(d.details),
        "attachments": [_attachment_to_json(a) for a in d.attachments],
        "requesting_officer": _officer_to_json(d.requesting_officer),
        "entrusted_officer": _officer_to_json(d.entrusted_officer),
        "acknowledged_at": time_to_json(d.acknowledged_at),
        "started_at": time_to_json(d.started_at),
        "completed_at": time_to_json(d.completed_at),
        "returned_at": time_to_json(d.returned_at),
        "withdrawn_at": time_to_json(d.withdrawn_at),
        "completion": _completion_to_json(d.completion),
        "supplement_request": _supplement_request_to_json(d.supplement_request),
        "return_reason": _name(d.return_reason),
        "return_approval": _approval_to_json(d.return_approval),
        "withdraw_reason": _name(d.withdraw_reason),
        "history": [_transition_to_json(t) for t in d.history],
        "case_number": d.case_number,
    }


def delegation_from_json(data: Json) -> Delegation:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"unknown delegation document schema {data.get('schema')!r}")
    return Delegation(
        id=data["id"],
        requesting_court_id=data["requesting_court_id"],
        case_name=data["case_name"],
        entrusted_court_id=data["entrusted_court_id"],
        matter_kind=MatterKind(data["matter_kind"]),
        description=data["description"],
        created_at=required_time_from_json(data["created_at"]),
        updated_at=required_time_from_json(data["updated_at"]),
        state=DelegationState(data["state"]),
        version=int(data["version"]),
        details=_details_from_json(data["details"]),
        attachments=tuple(_attachment_from_json(a) for a in data["attachments"]),
        requesting_officer=_officer_from_json(data["requesting_officer"]),
        entrusted_officer=_officer_from_json(data["entrusted_officer"]),
        acknowledged_at=time_from_json(data["acknowledged_at"]),
        started_at=time_from_json(data["started_at"]),
        completed_at=time_from_json(data["completed_at"]),
        returned_at=time_from_json(data["returned_at"]),
        withdrawn_at=time_from_json(data["withdrawn_at"]),
        completion=_completion_from_json(data["completion"]),
        supplement_request=_supplement_request_from_json(data["supplement_request"]),
        return_reason=_enum(ReturnReason, data["return_reason"]),
        return_approval=_approval_from_json(data["return_approval"]),
        withdraw_reason=_enum(WithdrawReason, data["withdraw_reason"]),
        history=tuple(_transition_from_json(t) for t in data["history"]),
        case_number=data.get("case_number", ""),  # documents written before it was kept have none
    )


# --- matter details: one dataclass per kind, tagged by kind ----------------------------------------

#: Detail fields whose JSON form is not the value itself; every other field is text, a
#: number or an enum name that the dataclass turns back into its member on construction.
_DETAIL_DECODERS: dict[str, Any] = {
    "share_percent": lambda v: None if v is None else Decimal(v),
    "scope": tuple,
    "documents": tuple,
}


def _details_to_json(details: MatterDetails | None) -> Json | None:
    if details is None:
        return None
    values = {f.name: _plain(getattr(details, f.name)) for f in fields(details)}
    return {"kind": str(details.matter_kind), **values}


def _details_from_json(data: Json | None) -> MatterDetails | None:
    if data is None:
        return None
    values = dict(data)
    details_type = DETAILS_TYPES[MatterKind(values.pop("kind"))]
    return details_type(**{k: _DETAIL_DECODERS.get(k, _same)(v) for k, v in values.items()})


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, StrEnum):
        return value.value
    return value


def _same(value: Any) -> Any:
    return value


# --- value objects ---------------------------------------------------------------------------------


def _attachment_to_json(a: Attachment) -> Json:
    return {"kind": _plain(a.kind), "name": a.name, "size_bytes": a.size_bytes, "sha256": a.sha256}


def _attachment_from_json(data: Json) -> Attachment:
    return Attachment(AttachmentKind(data["kind"]), data["name"], int(data["size_bytes"]), data["sha256"])


def _officer_to_json(officer: Officer | None) -> Json | None:
    return None if officer is None else {"name": officer.name, "phone": officer.phone}


def _officer_from_json(data: Json | None) -> Officer | None:
    return None if data is None else Officer(name=data["name"], phone=data["phone"])


def _completion_to_json(c: Completion | None) -> Json | None:
    if c is None:
        return None
    documents = [_attachment_to_json(a) for a in c.result_documents]
    return {"outcome": c.outcome.value, "amount_fen": c.amount_fen, "result_documents": documents, "note": c.note}


def _completion_from_json(data: Json | None) -> Completion | None:
    if data is None:
        return None
    documents = tuple(_attachment_from_json(a) for a in data["result_documents"])
    return Completion(Outcome(data["outcome"]), data["amount_fen"], documents, data["note"])


def _supplement_request_to_json(r: SupplementRequest | None) -> Json | None:
    if r is None:
        return None
    return {
        "reason": r.reason.value,
        "missing_items": list(r.missing_items),
        "note": r.note,
        "requested_at": time_to_json(r.requested_at),
    }


def _supplement_request_from_json(data: Json | None) -> SupplementRequest | None:
    if data is None:
        return None
    return SupplementRequest(
        SupplementReason(data["reason"]),
        tuple(data["missing_items"]),
        data["note"],
        required_time_from_json(data["requested_at"]),
    )


def _approval_to_json(a: ReturnApproval | None) -> Json | None:
    return None if a is None else {"court_id": a.court_id, "reference": a.reference}


def _approval_from_json(data: Json | None) -> ReturnApproval | None:
    return None if data is None else ReturnApproval(data["court_id"], data["reference"])


def _transition_to_json(t: Transition) -> Json:
    return {
        "action": t.action.value,
        "from_state": t.from_state.value,
        "to_state": t.to_state.value,
        "actor_court_id": t.actor_court_id,
        "officer": t.officer,
        "at": time_to_json(t.at),
        "reason_code": t.reason_code,
        "note": t.note,
    }


def _transition_from_json(data: Json) -> Transition:
    return Transition(
        action=Action(data["action"]),
        from_state=DelegationState(data["from_state"]),
        to_state=DelegationState(data["to_state"]),
        actor_court_id=data["actor_court_id"],
        officer=data["officer"],
        at=required_time_from_json(data["at"]),
        reason_code=data["reason_code"],
        note=data["note"],
    )


# --- deadline rows: the rule and the extensions columns ----------------------------------------------


def rule_to_json(rule: DeadlineRule) -> Json:
    return {
        "kind": _name(rule.kind),
        "step": rule.step.value,
        "amount": rule.amount,
        "unit": rule.unit.value,
        "source": rule.source,
        "province": rule.province,
    }


def rule_from_json(data: Json) -> DeadlineRule:
    kind = _enum(MatterKind, data["kind"])
    return DeadlineRule(kind, Step(data["step"]), int(data["amount"]), Unit(data["unit"]), data["source"], data["province"])


def extensions_to_json(extensions: tuple[GrantedExtension, ...]) -> list[Json]:
    return [
        {"amount": e.amount, "unit": e.unit.value, "reason": e.reason, "court_id": e.court_id, "at": time_to_json(e.at)}
        for e in extensions
    ]


def extensions_from_json(data: list[Json]) -> tuple[GrantedExtension, ...]:
    return tuple(
        GrantedExtension(int(e["amount"]), Unit(e["unit"]), e["reason"], e["court_id"], required_time_from_json(e["at"]))
        for e in data
    )


# --- scalars -------------------------------------------------------------------------------------


def _name(member: StrEnum | None) -> str | None:
    return None if member is None else member.value


def _enum(kind: type[E], value: str | None) -> E | None:
    return None if value is None else kind(value)
