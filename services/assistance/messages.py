"""Translation between assistance protobuf messages and domain objects."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from rogatory.assistance.v1 import assistance_pb2 as pb
from rogatory.delegation.v1 import delegation_pb2 as dpb

from assistance.notice_lifecycle import AnswerObjection, ObjectToNotice, ReceiveNotice, ReplyNotice
from assistance.notice_targets import DepositAccount, Equity, Income, NoticeTarget, RegisteredProperty, Subject
from assistance.notices import AssistanceNotice, CreateNotice, NoticeResult, Objection
from assistance.seizures import Seizure
from services.contract.attachments import attachment_to_proto, attachments_from_proto
from services.plumbing.fields import enum_name, etag_of, parse_decimal, parse_etag
from services.plumbing.times import timestamp, utc

__all__ = ["etag_of", "parse_etag"]


# --- domain → protobuf ---------------------------------------------------------------------------


def notice_to_proto(notice: AssistanceNotice) -> pb.AssistanceNotice:
    message = pb.AssistanceNotice(
        name=notice.name,
        case=notice.case_name,
        agency=f"agencies/{notice.agency_id}",
        kind=pb.AssistanceNotice.Kind.Value(str(notice.kind)),
        target=notice.target,
        state=pb.AssistanceNotice.State.Value(str(notice.state)),
        create_time=timestamp(notice.created_at),
        update_time=timestamp(notice.updated_at),
        etag=etag_of(notice.version),
        documents=[attachment_to_proto(a) for a in notice.documents],
        seizure=notice.seizure_name,
        resulting_seizure=notice.resulting_seizure,
    )
    if notice.target_details is not None:
        message.target_details.CopyFrom(target_to_proto(notice.target_details))
    _set_time(message, "receive_time", notice.received_at)
    _set_time(message, "service_time", notice.served_at)
    _set_time(message, "reply_time", notice.replied_at)
    if notice.result is not None:
        message.result.CopyFrom(result_to_proto(notice.result))
    if notice.objection is not None:
        message.objection.CopyFrom(objection_to_proto(notice.objection))
    return message


def _set_time(message: Any, field: str, value: datetime | None) -> None:
    if value is not None:
        getattr(message, field).CopyFrom(timestamp(value))


def target_to_proto(target: NoticeTarget) -> pb.NoticeTarget:
    message = pb.NoticeTarget(debtor=target.debtor)
    s = target.subject
    if isinstance(s, DepositAccount):
        message.deposit_account.CopyFrom(
            pb.NoticeTarget.DepositAccount(account_number=s.account_number, amount_fen=s.amount_fen or 0)
        )
    elif isinstance(s, RegisteredProperty):
        message.registered_property.CopyFrom(
            pb.NoticeTarget.RegisteredProperty(
                property_kind=dpb.RegisteredPropertyDetails.PropertyKind.Value(str(s.property_kind)),
                location=s.location,
                certificate_number=s.certificate_number,
                unit_number=s.unit_number,
                plate=s.plate,
                vin=s.vin,
                registration_number=s.registration_number,
            )
        )
    elif isinstance(s, Equity):
        message.equity.CopyFrom(
            pb.NoticeTarget.Equity(
                company_name=s.company_name,
                credit_code=s.credit_code,
                share_amount_fen=s.share_amount_fen or 0,
                share_percent=format(s.share_percent, "f") if s.share_percent is not None else "",
            )
        )
    elif isinstance(s, Income):
        message.income.CopyFrom(
            pb.NoticeTarget.Income(
                payer=s.payer, amount_fen=s.amount_fen or 0, percent=format(s.percent, "f") if s.percent is not None else ""
            )
        )
    return message


def result_to_proto(r: NoticeResult) -> pb.NoticeResult:
    message = pb.NoticeResult(
        kind=pb.NoticeResult.Kind.Value(str(r.kind)),
        amount_fen=r.amount_fen or 0,
        queue_position=r.queue_position,
        reference=r.reference,
        documents=[attachment_to_proto(a) for a in r.documents],
        note=r.note,
    )
    _set_time(message, "effective_time", r.effective_at)
    return message


def objection_to_proto(o: Objection, now: datetime | None = None) -> pb.Objection:
    message = pb.Objection(
        reason=pb.Objection.Reason.Value(str(o.reason)),
        note=o.note,
        object_time=timestamp(o.objected_at),
        answer_due_time=timestamp(o.answer_due),
        answer_overdue=o.overdue_flagged_at is not None or (now is not None and o.is_overdue(now)),
    )
    if o.answer is not None:
        message.answer.CopyFrom(
            pb.ObjectionAnswer(
                decision=pb.ObjectionAnswer.Decision.Value(str(o.answer.decision)),
                note=o.answer.note,
                answer_time=timestamp(o.answer.answered_at),
            )
        )
    return message


def seizure_to_proto(s: Seizure) -> pb.Seizure:
    message = pb.Seizure(
        name=s.name,
        case=s.case_name,
        agency=f"agencies/{s.agency_id}",
        notice=s.notice_name,
        target=target_to_proto(s.target),
        asset_class=pb.Seizure.AssetClass.Value(str(s.asset_class)),
        state=pb.Seizure.State.Value(str(s.state)),
        amount_fen=s.amount_fen or 0,
        effective_time=timestamp(s.effective_at),
        expire_time=timestamp(s.expires_at),
        renewal_count=s.renewal_count,
        etag=etag_of(s.version),
    )
    _set_time(message, "end_time", s.ended_at)
    return message


# --- protobuf → domain ------------------------------------------------------------------------------


def _amount(value: int) -> int | None:
    return value if value else None


def target_from_proto(message: pb.NoticeTarget) -> NoticeTarget:
    path = "assistance_notice.target_details"
    which = message.WhichOneof("subject")
    subject: Subject | None = None
    if which == "deposit_account":
        d = message.deposit_account
        subject = DepositAccount(d.account_number, _amount(d.amount_fen))
    elif which == "registered_property":
        p = message.registered_property
        kind = enum_name(dpb.RegisteredPropertyDetails.PropertyKind, p.property_kind)
        subject = RegisteredProperty(kind, p.location, p.certificate_number, p.unit_number, p.plate, p.vin, p.registration_number)
    elif which == "equity":
        e = message.equity
        subject = Equity(
            e.company_name,
            e.credit_code,
            _amount(e.share_amount_fen),
            parse_decimal(e.share_percent, f"{path}.equity.share_percent", "BAD_DECIMAL"),
        )
    elif which == "income":
        i = message.income
        subject = Income(i.payer, _amount(i.amount_fen), parse_decimal(i.percent, f"{path}.income.percent", "BAD_DECIMAL"))
    return NoticeTarget(message.debtor, subject)


def create_command(request: pb.CreateAssistanceNoticeRequest) -> CreateNotice:
    notice = request.assistance_notice
    return CreateNotice(
        parent=request.parent,
        case=notice.case,
        agency=notice.agency,
        kind=enum_name(pb.AssistanceNotice.Kind, notice.kind),
        target=notice.target,
        target_details=target_from_proto(notice.target_details) if notice.HasField("target_details") else None,
        documents=attachments_from_proto(notice.documents),
        seizure=notice.seizure,
    )


def receive_command(request: pb.ReceiveAssistanceNoticeRequest) -> ReceiveNotice:
    return ReceiveNotice(request.note, parse_etag(request.etag))


def reply_command(request: pb.ReplyAssistanceNoticeRequest) -> ReplyNotice:
    r = request.result
    return ReplyNotice(
        kind=enum_name(pb.NoticeResult.Kind, r.kind),
        amount_fen=_amount(r.amount_fen),
        queue_position=r.queue_position,
        reference=r.reference,
        documents=attachments_from_proto(r.documents),
        note=r.note,
        expected_version=parse_etag(request.etag),
    )


def object_command(request: pb.ObjectToAssistanceNoticeRequest) -> ObjectToNotice:
    o = request.objection
    return ObjectToNotice(enum_name(pb.Objection.Reason, o.reason), o.note, parse_etag(request.etag))


def answer_objection_command(request: pb.AnswerAssistanceNoticeObjectionRequest) -> AnswerObjection:
    a = request.answer
    return AnswerObjection(enum_name(pb.ObjectionAnswer.Decision, a.decision), a.note, parse_etag(request.etag))


# --- timeline ----------------------------------------------------------------------------------------


def entry_to_proto(row: Any, sent_at: datetime) -> pb.AssistanceNoticeTimeline.Entry:
    at = utc(row["at"])
    entry = pb.AssistanceNoticeTimeline.Entry(
        action=row["action"],
        from_state=pb.AssistanceNotice.State.Value(row["from_state"]) if row["from_state"] else 0,
        to_state=pb.AssistanceNotice.State.Value(row["to_state"]),
        actor=row["actor"],
        time=timestamp(at),
        reason_code=row["reason_code"],
        note=row["note"],
        trace_id=row["trace_id"],
    )
    entry.elapsed.FromTimedelta(max(at - sent_at, timedelta(0)))
    return entry
