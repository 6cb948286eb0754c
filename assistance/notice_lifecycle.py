"""The life of an assistance notice after it is sent: the custom methods as pure functions.

    SENT ─receive→ RECEIVED ─reply→ ANSWERED
    SENT ─reply→ ANSWERED                (replying implies receipt)
    SENT | RECEIVED ─object→ OBJECTED ─answer_objection(MAINTAIN)→ RECEIVED
                                      ─answer_objection(WITHDRAW)→ WITHDRAWN
    ANSWERED(QUEUED) ─advance_queue→ ANSWERED (position - 1; at 0 it takes effect)

Checks run in the order of `delegation.lifecycle`: the actor (only the addressed agency
receives, replies and objects; only the sending court answers an objection:
PermissionDenied NOT_ADDRESSED_AGENCY / NOT_SENDING_COURT), then the arguments
(InvalidArgument, every violation at once), then the etag (Aborted VERSION_MISMATCH), then
the state (FailedPrecondition INVALID_TRANSITION).

Decisions:
- Receipt by a real-estate registry is service of the notice (送达): `served_at` is set
  with `received_at`, so the seal's effect can be dated from it.
- A reply to a notice never acknowledged counts as its receipt at the same instant.
- The objection period is 15 days (网络查询冻结存款规定 art. 6), counted like every court
  period (CPL art. 85: the day of the objection not counted, a period ending on a statutory
  holiday ends on the next day after it) on the working-day calendar.
- MAINTAIN puts the notice back to RECEIVED: the agency must now reply with a result.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta
from enum import StrEnum
from typing import Any, NoReturn

from assistance.notices import (
    AssistanceNotice,
    NoticeResult,
    NoticeState,
    Objection,
    ObjectionAnswer,
    ObjectionDecision,
    ObjectionReason,
    ResultKind,
    check_note,
)
from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.details import MAX_CODE_LENGTH, Attachment, check_amount, check_attachments
from registry.errors import Aborted, FailedPrecondition, PermissionDenied, Violations, parse_enum
from registry.text import check_text

S = NoticeState
#: 网络查询冻结存款规定 art. 6: the court answers a bank's objection within 15 days.
OBJECTION_ANSWER_DAYS = 15
MAX_QUEUE_POSITION = 1000


class Action(StrEnum):
    SEND = "SEND"
    RECEIVE = "RECEIVE"
    REPLY = "REPLY"
    OBJECT = "OBJECT"
    ANSWER_OBJECTION = "ANSWER_OBJECTION"
    ADVANCE_QUEUE = "ADVANCE_QUEUE"
    TAKE_EFFECT = "TAKE_EFFECT"
    OBJECTION_OVERDUE = "OBJECTION_OVERDUE"


class Party(StrEnum):
    COURT = "COURT"
    AGENCY = "AGENCY"
    SYSTEM = "SYSTEM"


@dataclass(frozen=True)
class Actor:
    party: Party
    id: str  # court or agency id; "" for the system

    @property
    def name(self) -> str:
        if self.party is Party.COURT:
            return f"courts/{self.id}"
        if self.party is Party.AGENCY:
            return f"agencies/{self.id}"
        return ""


SYSTEM = Actor(Party.SYSTEM, "")

#: Who may take each action and from which states.
RULES: dict[Action, tuple[Party, frozenset[NoticeState]]] = {
    Action.RECEIVE: (Party.AGENCY, frozenset({S.SENT})),
    Action.REPLY: (Party.AGENCY, frozenset({S.SENT, S.RECEIVED})),
    Action.OBJECT: (Party.AGENCY, frozenset({S.SENT, S.RECEIVED})),
    Action.ANSWER_OBJECTION: (Party.COURT, frozenset({S.OBJECTED})),
}


@dataclass(frozen=True)
class Transition:
    action: Action
    from_state: NoticeState | None
    to_state: NoticeState
    actor: str  # courts/{court}, agencies/{agency} or "" (system)
    at: datetime
    reason_code: str = ""
    note: str = ""


Result = tuple[AssistanceNotice, Transition]


# --- commands -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiveNotice:
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class ReplyNotice:
    kind: str  # a ResultKind name
    amount_fen: int | None = None
    queue_position: int = 0
    reference: str = ""
    documents: tuple[Attachment, ...] = ()
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class ObjectToNotice:
    reason: str  # an ObjectionReason name
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class AnswerObjection:
    decision: str  # an ObjectionDecision name
    note: str = ""
    expected_version: int | None = None


# --- the custom methods ---------------------------------------------------------------------------------


def receive(notice: AssistanceNotice, command: ReceiveNotice, actor: Actor, now: datetime, *, serves: bool) -> Result:
    """The addressed agency has the notice; `serves`: its receipt is service (real-estate registries)."""
    _check_actor(notice, Action.RECEIVE, actor)
    violations = Violations()
    note = check_note(command.note, "note", violations)
    violations.raise_if_any()
    _check_transition(notice, Action.RECEIVE, command.expected_version)
    changes: dict[str, Any] = {"received_at": now, "served_at": now if serves else None}
    return _apply(notice, Action.RECEIVE, S.RECEIVED, actor, now, note=note, changes=changes)


def reply(notice: AssistanceNotice, command: ReplyNotice, actor: Actor, now: datetime, *, serves: bool) -> Result:
    """The addressed agency reports the result, typed by kind of notice."""
    _check_actor(notice, Action.REPLY, actor)
    violations = Violations()
    kind = _check_result(notice, command, violations)
    note = check_note(command.note, "result.note", violations)
    violations.raise_if_any()
    assert kind is not None
    _check_transition(notice, Action.REPLY, command.expected_version)
    result = NoticeResult(
        kind=kind,
        amount_fen=command.amount_fen,
        queue_position=command.queue_position if kind is ResultKind.QUEUED else 0,
        reference=command.reference.strip(),
        documents=command.documents,
        note=note,
    )
    changes: dict[str, Any] = {"result": result, "replied_at": now}
    if notice.received_at is None:
        changes.update(received_at=now, served_at=now if serves else None)
    return _apply(notice, Action.REPLY, S.ANSWERED, actor, now, reason_code=kind, note=note, changes=changes)


def object_to(
    notice: AssistanceNotice, command: ObjectToNotice, actor: Actor, now: datetime, *, calendar: WorkingCalendar
) -> Result:
    """The addressed agency objects; the court's answer is due in 15 days."""
    _check_actor(notice, Action.OBJECT, actor)
    violations = Violations()
    reason = parse_enum(ObjectionReason, command.reason, "objection.reason", violations)
    note = check_note(command.note, "objection.note", violations, required=reason is ObjectionReason.OTHER)
    violations.raise_if_any()
    assert reason is not None
    _check_transition(notice, Action.OBJECT, command.expected_version)
    objection = Objection(reason, note, now, objection_answer_due(now, calendar))
    changes: dict[str, Any] = {"objection": objection, "received_at": notice.received_at or now}
    return _apply(notice, Action.OBJECT, S.OBJECTED, actor, now, reason_code=reason, note=note, changes=changes)


def answer_objection(notice: AssistanceNotice, command: AnswerObjection, actor: Actor, now: datetime) -> Result:
    """The sending court maintains the measure or withdraws the notice."""
    _check_actor(notice, Action.ANSWER_OBJECTION, actor)
    violations = Violations()
    decision = parse_enum(ObjectionDecision, command.decision, "answer.decision", violations)
    note = check_note(command.note, "answer.note", violations, required=decision is ObjectionDecision.MAINTAIN)
    violations.raise_if_any()
    assert decision is not None
    _check_transition(notice, Action.ANSWER_OBJECTION, command.expected_version)
    assert notice.objection is not None
    objection = replace(notice.objection, answer=ObjectionAnswer(decision, note, now))
    to_state = S.RECEIVED if decision is ObjectionDecision.MAINTAIN else S.WITHDRAWN
    return _apply(
        notice, Action.ANSWER_OBJECTION, to_state, actor, now, reason_code=decision, note=note, changes={"objection": objection}
    )


def advance_queue(notice: AssistanceNotice, now: datetime) -> Result:
    """An earlier seizure on the same asset was lifted or lapsed: one place forward; at the
    front the queued measure takes effect (the service then creates its seizure)."""
    if not notice.waiting_in_queue:
        raise FailedPrecondition(f"{notice.name} is not waiting in a seizure queue", reason="NOT_QUEUED")
    assert notice.result is not None
    position = max(notice.result.queue_position - 1, 0)
    if position == 0:
        result = replace(notice.result, queue_position=0, effective_at=now)
        return _apply(notice, Action.TAKE_EFFECT, S.ANSWERED, SYSTEM, now, reason_code="QUEUED", changes={"result": result})
    result = replace(notice.result, queue_position=position)
    return _apply(notice, Action.ADVANCE_QUEUE, S.ANSWERED, SYSTEM, now, note=f"position {position}", changes={"result": result})


def flag_objection_overdue(notice: AssistanceNotice, now: datetime) -> Result:
    """The scanner's mark on an objection left unanswered past its due time. It records a
    timeline step but does not change the state or the etag: the court may still answer."""
    objection = notice.objection
    if notice.state is not S.OBJECTED or objection is None or not objection.is_overdue(now) or objection.overdue_flagged_at:
        raise FailedPrecondition(f"{notice.name} has no unflagged overdue objection", reason="NOT_OVERDUE")
    updated = replace(notice, objection=replace(objection, overdue_flagged_at=now))
    transition = Transition(
        Action.OBJECTION_OVERDUE, S.OBJECTED, S.OBJECTED, "", now, note=f"due {objection.answer_due.isoformat()}"
    )
    return updated, transition


def objection_answer_due(objected_at: datetime, calendar: WorkingCalendar) -> datetime:
    """15 calendar days, the objection's day not counted, moved past a statutory holiday (CPL art. 85)."""
    start_day = objected_at.astimezone(CHINA_TZ).date()
    last_day = calendar.with_weekend_fallback().end_of_period(start_day + timedelta(days=OBJECTION_ANSWER_DAYS))
    return datetime.combine(last_day, time.max, tzinfo=CHINA_TZ)


# --- checks ---------------------------------------------------------------------------------------------


def _check_actor(notice: AssistanceNotice, action: Action, actor: Actor) -> None:
    party = RULES[action][0]
    if party is Party.AGENCY and (actor.party is not Party.AGENCY or actor.id != notice.agency_id):
        _deny(notice, action, actor, "NOT_ADDRESSED_AGENCY", f"agencies/{notice.agency_id}")
    if party is Party.COURT and (actor.party is not Party.COURT or actor.id != notice.court_id):
        _deny(notice, action, actor, "NOT_SENDING_COURT", f"courts/{notice.court_id}")


def _deny(notice: AssistanceNotice, action: Action, actor: Actor, reason: str, who: str) -> NoReturn:
    raise PermissionDenied(
        f"only {who} may {action.lower().replace('_', ' ')} {notice.name}",
        reason=reason,
        metadata={"assistance_notice": notice.name, "action": str(action), "caller": actor.name},
    )


def _check_transition(notice: AssistanceNotice, action: Action, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != notice.version:
        raise Aborted(
            f"{notice.name} changed: it is at version {notice.version}, the request expected {expected_version}",
            reason="VERSION_MISMATCH",
            metadata={
                "assistance_notice": notice.name,
                "expected_version": str(expected_version),
                "current_version": str(notice.version),
            },
        )
    if notice.state not in RULES[action][1]:
        raise FailedPrecondition(
            f"cannot {action.lower().replace('_', ' ')} {notice.name}: it is {notice.state}",
            reason="INVALID_TRANSITION",
            metadata={"assistance_notice": notice.name, "state": str(notice.state), "action": str(action)},
        )


#: Results that must state an amount, and those that may.
_AMOUNT_REQUIRED = frozenset({ResultKind.FROZEN, ResultKind.DEDUCTED, ResultKind.FOUND})


def _check_result(notice: AssistanceNotice, command: ReplyNotice, violations: Violations) -> ResultKind | None:
    kind = parse_enum(ResultKind, command.kind, "result.kind", violations)
    check_attachments(command.documents, "result.documents", violations)
    check_text(command.reference.strip(), "result.reference", violations, max_length=MAX_CODE_LENGTH, required=False)
    if kind is None:
        return None
    allowed = notice.rule.results
    if kind not in allowed:
        violations.add("result.kind", f"a {notice.kind} notice is answered {', '.join(sorted(allowed))}", "RESULT_NOT_FOR_KIND")
        return kind
    if kind in _AMOUNT_REQUIRED:
        check_amount(command.amount_fen, "result.amount_fen", violations, required=True)
    elif command.amount_fen is not None and kind is not ResultKind.QUEUED:
        check_amount(command.amount_fen, "result.amount_fen", violations, required=False)
    if kind is ResultKind.QUEUED and not 1 <= command.queue_position <= MAX_QUEUE_POSITION:
        violations.add("result.queue_position", f"1 (next) to {MAX_QUEUE_POSITION}", "BAD_POSITION")
    elif kind is not ResultKind.QUEUED and command.queue_position:
        violations.add("result.queue_position", "only a QUEUED result has a position", "NOT_APPLICABLE")
    return kind


def _apply(
    notice: AssistanceNotice,
    action: Action,
    to_state: NoticeState,
    actor: Actor,
    now: datetime,
    *,
    reason_code: str = "",
    note: str = "",
    changes: dict[str, Any],
) -> Result:
    transition = Transition(action, notice.state, to_state, actor.name, now, str(reason_code), note)
    updated = replace(notice, state=to_state, version=notice.version + 1, updated_at=now, **changes)
    return updated, transition
