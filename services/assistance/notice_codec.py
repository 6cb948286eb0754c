"""The JSON documents of a notice (`assistance_notice.document`) and a seizure (`seizure.document`).

Like `services/delegation/codec.py`: the aggregate is read and written whole, so its
details live in one document; columns beside it hold what lists filter and guards compare
(state, version, asset key, objection due time). Explicit field by field, so a renamed
domain field fails the round-trip test instead of silently dropping data.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from assistance.notice_targets import DepositAccount, Equity, Income, NoticeTarget, RegisteredProperty, Subject
from assistance.notices import (
    AssistanceNotice,
    NoticeKind,
    NoticeResult,
    NoticeState,
    Objection,
    ObjectionAnswer,
    ObjectionDecision,
    ObjectionReason,
    ResultKind,
)
from assistance.seizures import AssetClass, Seizure, SeizureState
from delegation.details import Attachment, AttachmentKind
from services.plumbing.times import time_from_json, time_to_json

SCHEMA = 1
Json = dict[str, Any]


def notice_to_json(n: AssistanceNotice) -> Json:
    return {
        "schema": SCHEMA,
        "id": n.id,
        "court_id": n.court_id,
        "case_name": n.case_name,
        "agency_id": n.agency_id,
        "kind": str(n.kind),
        "target": n.target,
        "created_at": time_to_json(n.created_at),
        "updated_at": time_to_json(n.updated_at),
        "state": str(n.state),
        "version": n.version,
        "target_details": target_to_json(n.target_details),
        "documents": [attachment_to_json(a) for a in n.documents],
        "seizure_name": n.seizure_name,
        "received_at": time_to_json(n.received_at),
        "served_at": time_to_json(n.served_at),
        "result": _result_to_json(n.result),
        "replied_at": time_to_json(n.replied_at),
        "objection": _objection_to_json(n.objection),
        "resulting_seizure": n.resulting_seizure,
    }


def notice_from_json(data: Json) -> AssistanceNotice:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"unknown notice document schema {data.get('schema')!r}")
    return AssistanceNotice(
        id=data["id"],
        court_id=data["court_id"],
        case_name=data["case_name"],
        agency_id=data["agency_id"],
        kind=NoticeKind(data["kind"]),
        target=data["target"],
        created_at=_time(data["created_at"]),
        updated_at=_time(data["updated_at"]),
        state=NoticeState(data["state"]),
        version=int(data["version"]),
        target_details=target_from_json(data["target_details"]),
        documents=tuple(attachment_from_json(a) for a in data["documents"]),
        seizure_name=data["seizure_name"],
        received_at=time_from_json(data["received_at"]),
        served_at=time_from_json(data["served_at"]),
        result=_result_from_json(data["result"]),
        replied_at=time_from_json(data["replied_at"]),
        objection=_objection_from_json(data["objection"]),
        resulting_seizure=data["resulting_seizure"],
    )


def _time(value: Any) -> Any:
    parsed = time_from_json(value)
    assert parsed is not None
    return parsed


# --- values ---------------------------------------------------------------------------------------


def attachment_to_json(a: Attachment) -> Json:
    return {"kind": str(a.kind), "name": a.name, "size_bytes": a.size_bytes, "sha256": a.sha256}


def attachment_from_json(data: Json) -> Attachment:
    return Attachment(AttachmentKind(data["kind"]), data["name"], int(data["size_bytes"]), data["sha256"])


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _undecimal(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def target_to_json(t: NoticeTarget | None) -> Json | None:
    if t is None:
        return None
    return {"debtor": t.debtor, "subject": _subject_to_json(t.subject)}


def target_from_json(data: Json | None) -> NoticeTarget | None:
    if data is None:
        return None
    return NoticeTarget(data["debtor"], _subject_from_json(data["subject"]))


def _subject_to_json(s: Subject | None) -> Json | None:
    if s is None:
        return None
    if isinstance(s, DepositAccount):
        return {"type": s.subject, "account_number": s.account_number, "amount_fen": s.amount_fen}
    if isinstance(s, RegisteredProperty):
        return {
            "type": s.subject,
            "property_kind": str(s.property_kind),
            "location": s.location,
            "certificate_number": s.certificate_number,
            "unit_number": s.unit_number,
            "plate": s.plate,
            "vin": s.vin,
            "registration_number": s.registration_number,
        }
    if isinstance(s, Equity):
        return {
            "type": s.subject,
            "company_name": s.company_name,
            "credit_code": s.credit_code,
            "share_amount_fen": s.share_amount_fen,
            "share_percent": _decimal(s.share_percent),
        }
    return {"type": s.subject, "payer": s.payer, "amount_fen": s.amount_fen, "percent": _decimal(s.percent)}


def _subject_from_json(data: Json | None) -> Subject | None:
    if data is None:
        return None
    kind = data["type"]
    if kind == DepositAccount.subject:
        return DepositAccount(data["account_number"], data["amount_fen"])
    if kind == RegisteredProperty.subject:
        return RegisteredProperty(
            data["property_kind"],
            data["location"],
            data["certificate_number"],
            data["unit_number"],
            data["plate"],
            data["vin"],
            data["registration_number"],
        )
    if kind == Equity.subject:
        return Equity(data["company_name"], data["credit_code"], data["share_amount_fen"], _undecimal(data["share_percent"]))
    if kind == Income.subject:
        return Income(data["payer"], data["amount_fen"], _undecimal(data["percent"]))
    raise ValueError(f"unknown target subject {kind!r}")


def _result_to_json(r: NoticeResult | None) -> Json | None:
    if r is None:
        return None
    return {
        "kind": str(r.kind),
        "amount_fen": r.amount_fen,
        "queue_position": r.queue_position,
        "reference": r.reference,
        "documents": [attachment_to_json(a) for a in r.documents],
        "note": r.note,
        "effective_at": time_to_json(r.effective_at),
    }


def _result_from_json(data: Json | None) -> NoticeResult | None:
    if data is None:
        return None
    return NoticeResult(
        kind=ResultKind(data["kind"]),
        amount_fen=data["amount_fen"],
        queue_position=int(data["queue_position"]),
        reference=data["reference"],
        documents=tuple(attachment_from_json(a) for a in data["documents"]),
        note=data["note"],
        effective_at=time_from_json(data["effective_at"]),
    )


def _objection_to_json(o: Objection | None) -> Json | None:
    if o is None:
        return None
    answer = o.answer
    return {
        "reason": str(o.reason),
        "note": o.note,
        "objected_at": time_to_json(o.objected_at),
        "answer_due": time_to_json(o.answer_due),
        "overdue_flagged_at": time_to_json(o.overdue_flagged_at),
        "answer": None
        if answer is None
        else {"decision": str(answer.decision), "note": answer.note, "answered_at": time_to_json(answer.answered_at)},
    }


def _objection_from_json(data: Json | None) -> Objection | None:
    if data is None:
        return None
    answer = data["answer"]
    return Objection(
        reason=ObjectionReason(data["reason"]),
        note=data["note"],
        objected_at=_time(data["objected_at"]),
        answer_due=_time(data["answer_due"]),
        overdue_flagged_at=time_from_json(data["overdue_flagged_at"]),
        answer=None
        if answer is None
        else ObjectionAnswer(ObjectionDecision(answer["decision"]), answer["note"], _time(answer["answered_at"])),
    )


# --- seizures -----------------------------------------------------------------------------------------


def seizure_to_json(s: Seizure) -> Json:
    return {
        "schema": SCHEMA,
        "id": s.id,
        "court_id": s.court_id,
        "case_name": s.case_name,
        "agency_id": s.agency_id,
        "notice_name": s.notice_name,
        "target": target_to_json(s.target),
        "asset_class": str(s.asset_class),
        "asset_key": s.asset_key,
        "effective_at": time_to_json(s.effective_at),
        "expires_at": time_to_json(s.expires_at),
        "amount_fen": s.amount_fen,
        "state": str(s.state),
        "renewal_count": s.renewal_count,
        "ended_at": time_to_json(s.ended_at),
        "reminded_for": time_to_json(s.reminded_for),
        "version": s.version,
        "updated_at": time_to_json(s.updated_at),
    }


def seizure_from_json(data: Json) -> Seizure:
    if data.get("schema") != SCHEMA:
        raise ValueError(f"unknown seizure document schema {data.get('schema')!r}")
    target = target_from_json(data["target"])
    assert target is not None
    return Seizure(
        id=data["id"],
        court_id=data["court_id"],
        case_name=data["case_name"],
        agency_id=data["agency_id"],
        notice_name=data["notice_name"],
        target=target,
        asset_class=AssetClass(data["asset_class"]),
        asset_key=data["asset_key"],
        effective_at=_time(data["effective_at"]),
        expires_at=_time(data["expires_at"]),
        amount_fen=data["amount_fen"],
        state=SeizureState(data["state"]),
        renewal_count=int(data["renewal_count"]),
        ended_at=time_from_json(data["ended_at"]),
        reminded_for=time_from_json(data["reminded_for"]),
        version=int(data["version"]),
        updated_at=time_from_json(data["updated_at"]),
    )
