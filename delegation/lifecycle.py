"""The life of a delegation after it is submitted: the AIP-136 custom methods as pure functions.

Each function takes the current `Delegation`, a command, the acting court (`Actor`) and the
time, and returns the next version of the delegation with the event it records. Checks run
in this order, so the cheapest answer that is true regardless of timing comes first:

1. the actor: only the requesting court or only the entrusted court may take each action
   (PermissionDenied NOT_REQUESTING_COURT / NOT_ENTRUSTED_COURT); nothing else is told to
   a court that is neither, not even whether its request was well-formed;
2. the arguments (InvalidArgument, every violation at once), which do not depend on state;
3. the etag: `expected_version` other than the current version raises `Aborted`
   (VERSION_MISMATCH): the caller decided on a stale copy, so re-read before anything else;
4. the state (FailedPrecondition INVALID_TRANSITION, metadata `state` and `action`).

The state machine (`RULES`):

    SUBMITTED ─acknowledge→ ACKNOWLEDGED ─start→ IN_PROGRESS ─complete→ COMPLETED
    ACKNOWLEDGED ─complete→ COMPLETED          (done on the spot: started_at = completed_at)
    ACKNOWLEDGED | IN_PROGRESS ─return_for_supplement→ RETURNED_FOR_SUPPLEMENT
    RETURNED_FOR_SUPPLEMENT ─supplement→ IN_PROGRESS   (by the requesting court)
    RETURNED_FOR_SUPPLEMENT ─deem_withdrawn→ WITHDRAWN (system, after the supplement deadline)
    SUBMITTED | ACKNOWLEDGED | IN_PROGRESS ─return→ RETURNED
    any non-final state ─withdraw→ WITHDRAWN           (by the requesting court)

Decisions:
- Acknowledging never starts the work: it names the entrusted officer and is the
  "time to acknowledge" of the statistics; `start` marks the CPL art. 240 start. A matter
  done on the spot (the 7,000,000 元 freeze of the seed article) may go ACKNOWLEDGED →
  COMPLETED, which counts as started at completion.
- A supplement puts the matter straight back IN_PROGRESS, even if it was returned before it
  was started: the entrusted court has examined the file and asked for exactly what it
  needed to proceed, so the arrival of the supplement is when work (re)starts.
- RETURNED_FOR_SUPPLEMENT is not a state the entrusted court can close the matter from: the
  requesting court supplies, withdraws, or the matter is deemed withdrawn (art. 8).
- Creation is not a transition: `created_at` and the requesting court record it.

A stale `expected_version` raises `registry.errors.Aborted` (gRPC ABORTED, AIP-154). The
store must still compare versions when it writes (`UPDATE … WHERE version = :old`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, NoReturn

from delegation.calendar import CHINA_TZ
from delegation.deadlines import add_months
from delegation.details import (
    MAX_LIST_ITEMS,
    MAX_TEXT_LENGTH,
    Attachment,
    AttachmentKind,
    MatterKind,
    Officer,
    check_amount,
    check_attachments,
    check_required_attachments,
    check_text_list,
)
from delegation.matters import (
    MAX_DESCRIPTION_LENGTH,
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
from registry.access import court_id_of
from registry.courts import CourtCatalog, CourtLevel
from registry.errors import Aborted, FailedPrecondition, PermissionDenied, Violations, parse_enum
from registry.text import check_text

MAX_ITEM_LENGTH = 200
S = DelegationState


# --- vocabulary (what a delegation records is in delegation.matters) -----------------------------------------------------------------------------------


class Role(StrEnum):
    REQUESTING_COURT = "REQUESTING_COURT"
    ENTRUSTED_COURT = "ENTRUSTED_COURT"
    SYSTEM = "SYSTEM"  # the deadline scanner


_PROPERTY_MEASURE_OUTCOMES = frozenset(
    {Outcome.EXECUTED, Outcome.PARTLY_EXECUTED, Outcome.NOT_EXECUTED, Outcome.PROPERTY_NOT_FOUND}
)
#: Which outcomes make sense for each kind: "served" says nothing about a freeze.
OUTCOMES_BY_KIND: dict[MatterKind, frozenset[Outcome]] = {
    MatterKind.DEPOSITS: _PROPERTY_MEASURE_OUTCOMES,
    MatterKind.EQUITY: _PROPERTY_MEASURE_OUTCOMES,
    MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES: _PROPERTY_MEASURE_OUTCOMES,
    MatterKind.PROPERTY_INVESTIGATION: frozenset({Outcome.PROPERTY_FOUND, Outcome.PROPERTY_NOT_FOUND}),
    MatterKind.SERVICE_OF_DOCUMENTS: frozenset({Outcome.SERVED, Outcome.NOT_SERVED}),
    MatterKind.CONTROL_MEASURES: frozenset({Outcome.EXECUTED, Outcome.NOT_EXECUTED, Outcome.PERSON_NOT_FOUND}),
    MatterKind.OTHER: frozenset({Outcome.EXECUTED, Outcome.PARTLY_EXECUTED, Outcome.NOT_EXECUTED}),
}
#: An amount is what was frozen, deducted or sealed; other outcomes have none.
AMOUNT_OUTCOMES = frozenset({Outcome.EXECUTED, Outcome.PARTLY_EXECUTED})
#: "Not done" must say why.
NOTE_REQUIRED_OUTCOMES = frozenset({Outcome.NOT_EXECUTED, Outcome.NOT_SERVED})
#: Proof the result documents must include.
RESULT_DOCUMENTS_REQUIRED: dict[Outcome, frozenset[AttachmentKind]] = {
    Outcome.SERVED: frozenset({AttachmentKind.SERVICE_RECEIPT}),
}
#: What a supplement must bring for the reason it was asked for.
SUPPLEMENT_REQUIRES: dict[SupplementReason, frozenset[AttachmentKind]] = {
    SupplementReason.MISSING_RULING: frozenset({AttachmentKind.RULING}),
}


# --- the state machine ---------------------------------------------------------------------------------

OPEN_STATES = frozenset({S.SUBMITTED, S.ACKNOWLEDGED, S.IN_PROGRESS, S.RETURNED_FOR_SUPPLEMENT})
FINAL_STATES = frozenset({S.COMPLETED, S.RETURNED, S.WITHDRAWN})


@dataclass(frozen=True)
class Rule:
    role: Role
    from_states: frozenset[DelegationState]
    to_state: DelegationState


RULES: dict[Action, Rule] = {
    Action.ACKNOWLEDGE: Rule(Role.ENTRUSTED_COURT, frozenset({S.SUBMITTED}), S.ACKNOWLEDGED),
    Action.START: Rule(Role.ENTRUSTED_COURT, frozenset({S.ACKNOWLEDGED}), S.IN_PROGRESS),
    Action.COMPLETE: Rule(Role.ENTRUSTED_COURT, frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS}), S.COMPLETED),
    Action.RETURN_FOR_SUPPLEMENT: Rule(
        Role.ENTRUSTED_COURT, frozenset({S.ACKNOWLEDGED, S.IN_PROGRESS}), S.RETURNED_FOR_SUPPLEMENT
    ),
    Action.SUPPLEMENT: Rule(Role.REQUESTING_COURT, frozenset({S.RETURNED_FOR_SUPPLEMENT}), S.IN_PROGRESS),
    Action.RETURN: Rule(Role.ENTRUSTED_COURT, frozenset({S.SUBMITTED, S.ACKNOWLEDGED, S.IN_PROGRESS}), S.RETURNED),
    Action.WITHDRAW: Rule(Role.REQUESTING_COURT, OPEN_STATES, S.WITHDRAWN),
    Action.DEEM_WITHDRAWN: Rule(Role.SYSTEM, frozenset({S.RETURNED_FOR_SUPPLEMENT}), S.WITHDRAWN),
}


def allowed_actions(state: DelegationState) -> frozenset[Action]:
    """What may happen next to a delegation in `state` (by someone)."""
    return frozenset(action for action, rule in RULES.items() if state in rule.from_states)


def is_final(state: DelegationState) -> bool:
    return state in FINAL_STATES


# --- who acts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Actor:
    """The authenticated court and the person acting for it; recorded in every transition."""

    court_id: str
    officer: str


SYSTEM_ACTOR = Actor(court_id="", officer="system")


class CourtRole(StrEnum):
    REQUESTING_COURT = "REQUESTING_COURT"
    ENTRUSTED_COURT = "ENTRUSTED_COURT"
    SUPERIOR_OF_REQUESTING_COURT = "SUPERIOR_OF_REQUESTING_COURT"
    SUPERIOR_OF_ENTRUSTED_COURT = "SUPERIOR_OF_ENTRUSTED_COURT"  # supervises (督办), may reassign (art. 11)


def court_roles(delegation: Delegation, court_id: str, courts: CourtCatalog) -> frozenset[CourtRole]:
    """How `court_id` relates to the delegation; empty for an unrelated or unknown court.

    Only the two parties change a delegation; superiors may read and supervise it.
    """
    if court_id not in courts:
        return frozenset()
    roles: set[CourtRole] = set()
    if court_id == delegation.requesting_court_id:
        roles.add(CourtRole.REQUESTING_COURT)
    if court_id == delegation.entrusted_court_id:
        roles.add(CourtRole.ENTRUSTED_COURT)
    if delegation.requesting_court_id in courts and courts.is_superior_of(court_id, delegation.requesting_court_id):
        roles.add(CourtRole.SUPERIOR_OF_REQUESTING_COURT)
    if delegation.entrusted_court_id in courts and courts.is_superior_of(court_id, delegation.entrusted_court_id):
        roles.add(CourtRole.SUPERIOR_OF_ENTRUSTED_COURT)
    return frozenset(roles)


# --- events ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LifecycleEvent:
    delegation: Delegation  # after the transition
    transition: Transition


@dataclass(frozen=True)
class DelegationAcknowledged(LifecycleEvent):
    pass


@dataclass(frozen=True)
class DelegationStarted(LifecycleEvent):
    pass


@dataclass(frozen=True)
class DelegationCompleted(LifecycleEvent):
    pass


@dataclass(frozen=True)
class DelegationReturnedForSupplement(LifecycleEvent):
    pass


@dataclass(frozen=True)
class DelegationSupplemented(LifecycleEvent):
    pass


@dataclass(frozen=True)
class DelegationReturned(LifecycleEvent):
    pass


@dataclass(frozen=True)
class DelegationWithdrawn(LifecycleEvent):
    """Withdrawn by the requesting court, or deemed withdrawn (action DEEM_WITHDRAWN)."""


EVENT_TYPES: dict[Action, type[LifecycleEvent]] = {
    Action.ACKNOWLEDGE: DelegationAcknowledged,
    Action.START: DelegationStarted,
    Action.COMPLETE: DelegationCompleted,
    Action.RETURN_FOR_SUPPLEMENT: DelegationReturnedForSupplement,
    Action.SUPPLEMENT: DelegationSupplemented,
    Action.RETURN: DelegationReturned,
    Action.WITHDRAW: DelegationWithdrawn,
    Action.DEEM_WITHDRAWN: DelegationWithdrawn,
}

Result = tuple[Delegation, list[LifecycleEvent]]


# --- commands ------------------------------------------------------------------------------------------
# Enum-valued fields are names as the wire layer has them ("" = unspecified), parsed here
# like CreateDelegation.matter_kind. `expected_version` comes from the request's etag; None
# skips the check (AIP-154 makes the etag optional).


@dataclass(frozen=True)
class AcknowledgeDelegation:
    officer: Officer  # the entrusted court's officer in charge
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class StartDelegation:
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class CompleteDelegation:
    outcome: str
    amount_fen: int | None = None
    result_documents: tuple[Attachment, ...] = ()
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class ReturnDelegationForSupplement:
    reason: str
    missing_items: tuple[str, ...]
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class SupplementDelegation:
    attachments: tuple[Attachment, ...] = ()
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class ReturnDelegation:
    reason: str
    note: str = ""
    approval_court: str = ""  # courts/{court}: with approval_reference, or neither
    approval_reference: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class WithdrawDelegation:
    reason: str
    note: str = ""
    expected_version: int | None = None


@dataclass(frozen=True)
class DeemDelegationWithdrawn:
    """From the deadline scanner, which computes the deadline (calendar, province rules)."""

    supplement_deadline: datetime  # the instant the supplement period ended
    expected_version: int | None = None


# --- the custom methods ---------------------------------------------------------------------------------


def acknowledge(delegation: Delegation, command: AcknowledgeDelegation, actor: Actor, now: datetime) -> Result:
    """The entrusted court has the matter and names its officer in charge."""
    _check_actor(delegation, Action.ACKNOWLEDGE, actor)
    violations = Violations()
    command.officer.validate("officer", violations)
    note = _note(command.note, violations)
    violations.raise_if_any()
    _check_transition(delegation, Action.ACKNOWLEDGE, command.expected_version)
    changes = {"entrusted_officer": command.officer, "acknowledged_at": now}
    return _apply(delegation, Action.ACKNOWLEDGE, actor, now, note=note, changes=changes)


def start(delegation: Delegation, command: StartDelegation, actor: Actor, now: datetime) -> Result:
    """The entrusted court starts executing (CPL art. 240: within 15 days of receipt)."""
    _check_actor(delegation, Action.START, actor)
    violations = Violations()
    note = _note(command.note, violations)
    violations.raise_if_any()
    _check_transition(delegation, Action.START, command.expected_version)
    return _apply(delegation, Action.START, actor, now, note=note, changes={"started_at": now})


def complete(delegation: Delegation, command: CompleteDelegation, actor: Actor, now: datetime) -> Result:
    """The entrusted court reports the outcome, the amount and the result documents."""
    _check_actor(delegation, Action.COMPLETE, actor)
    violations = Violations()
    outcome = _check_outcome(delegation.matter_kind, command, violations)
    note = _note(command.note, violations, required=outcome in NOTE_REQUIRED_OUTCOMES)
    violations.raise_if_any()
    assert outcome is not None
    _check_transition(delegation, Action.COMPLETE, command.expected_version)
    completion = Completion(outcome, command.amount_fen, command.result_documents, note)
    changes = {"completion": completion, "completed_at": now, "started_at": delegation.started_at or now}
    return _apply(delegation, Action.COMPLETE, actor, now, reason_code=outcome, note=note, changes=changes)


def return_for_supplement(delegation: Delegation, command: ReturnDelegationForSupplement, actor: Actor, now: datetime) -> Result:
    """The entrusted court asks the requesting court for what is missing (art. 8)."""
    _check_actor(delegation, Action.RETURN_FOR_SUPPLEMENT, actor)
    violations = Violations()
    reason = parse_enum(SupplementReason, command.reason, "reason", violations)
    missing_items = tuple(item.strip() for item in command.missing_items)
    check_text_list(missing_items, "missing_items", violations, max_length=MAX_ITEM_LENGTH)
    note = _note(command.note, violations, required=reason is SupplementReason.OTHER)
    violations.raise_if_any()
    assert reason is not None
    _check_transition(delegation, Action.RETURN_FOR_SUPPLEMENT, command.expected_version)
    request = SupplementRequest(reason, missing_items, note, requested_at=now)
    changes = {"supplement_request": request}
    return _apply(delegation, Action.RETURN_FOR_SUPPLEMENT, actor, now, reason_code=reason, note=note, changes=changes)


def supplement(delegation: Delegation, command: SupplementDelegation, actor: Actor, now: datetime) -> Result:
    """The requesting court supplies what was asked for; the matter goes back IN_PROGRESS."""
    _check_actor(delegation, Action.SUPPLEMENT, actor)
    violations = Violations()
    note = _note(command.note, violations)
    _check_supplement(delegation, command.attachments, note, violations)
    violations.raise_if_any()
    _check_transition(delegation, Action.SUPPLEMENT, command.expected_version)
    changes = {"attachments": delegation.attachments + command.attachments, "started_at": delegation.started_at or now}
    return _apply(delegation, Action.SUPPLEMENT, actor, now, note=note, changes=changes)


def return_delegation(
    delegation: Delegation, command: ReturnDelegation, actor: Actor, now: datetime, *, courts: CourtCatalog
) -> Result:
    """The entrusted court refuses or returns the matter with a reason (art. 9)."""
    _check_actor(delegation, Action.RETURN, actor)
    violations = Violations()
    reason = parse_enum(ReturnReason, command.reason, "reason", violations)
    note = _note(command.note, violations, required=reason is ReturnReason.OTHER)
    approval = _check_approval(delegation, command, courts, violations)
    violations.raise_if_any()
    assert reason is not None
    _check_transition(delegation, Action.RETURN, command.expected_version)
    changes = {"return_reason": reason, "return_approval": approval, "returned_at": now}
    return _apply(delegation, Action.RETURN, actor, now, reason_code=reason, note=note, changes=changes)


def withdraw(delegation: Delegation, command: WithdrawDelegation, actor: Actor, now: datetime) -> Result:
    """The requesting court takes the matter back, from any state that is not final."""
    _check_actor(delegation, Action.WITHDRAW, actor)
    violations = Violations()
    reason = parse_enum(WithdrawReason, command.reason, "reason", violations)
    if reason is WithdrawReason.DEEMED_WITHDRAWN:
        violations.add("reason", "DEEMED_WITHDRAWN is set by the system when the supplement deadline passes", "RESERVED")
    note = _note(command.note, violations, required=reason is WithdrawReason.OTHER)
    violations.raise_if_any()
    assert reason is not None
    _check_transition(delegation, Action.WITHDRAW, command.expected_version)
    changes = {"withdraw_reason": reason, "withdrawn_at": now}
    return _apply(delegation, Action.WITHDRAW, actor, now, reason_code=reason, note=note, changes=changes)


def deem_withdrawn(delegation: Delegation, command: DeemDelegationWithdrawn, now: datetime) -> Result:
    """The supplement deadline passed without a supplement (art. 8): deemed withdrawn.

    Only the system does this, so there is no actor to check; a scanner racing a supplement
    loses on the state (or the version) rather than withdrawing a supplemented matter.
    """
    _check_transition(delegation, Action.DEEM_WITHDRAWN, command.expected_version)
    if now < command.supplement_deadline:
        raise FailedPrecondition(
            f"the supplement deadline of {delegation.name} has not passed",
            reason="SUPPLEMENT_DEADLINE_NOT_PASSED",
            metadata={"delegation": delegation.name, "deadline": command.supplement_deadline.isoformat()},
        )
    reason = WithdrawReason.DEEMED_WITHDRAWN
    changes = {"withdraw_reason": reason, "withdrawn_at": now}
    return _apply(delegation, Action.DEEM_WITHDRAWN, SYSTEM_ACTOR, now, reason_code=reason, changes=changes)


# --- updating the requesting court's fields (UpdateDelegation, AIP-134) ---------------------------------

#: The paths of an update mask the requesting court may change, and nothing else.
MUTABLE_PATHS = frozenset({"description", "requesting_officer", "requesting_officer.display_name", "requesting_officer.phone"})


@dataclass(frozen=True)
class UpdateDelegation:
    """The fields named by `paths` (an update mask) take the values given; others are ignored."""

    paths: tuple[str, ...]
    description: str = ""
    officer: Officer | None = None  # the requesting court's officer, as the request carries it
    expected_version: int | None = None


def update(delegation: Delegation, command: UpdateDelegation, actor: Actor, now: datetime) -> Delegation:
    """The requesting court corrects its officer or the description while the matter is open.

    Not a transition: the state and history stay, the version is bumped so a concurrent
    writer that read the older one is ABORTED.
    """
    if actor.court_id != delegation.requesting_court_id:
        raise PermissionDenied(
            f"only the requesting court may update {delegation.name}",
            reason="NOT_REQUESTING_COURT",
            metadata={"delegation": delegation.name, "action": "UPDATE", "court": f"courts/{actor.court_id}"},
        )
    violations = Violations()
    changes = _masked_changes(delegation, command, violations)
    violations.raise_if_any()
    _check_version(delegation, command.expected_version)
    if is_final(delegation.state):
        raise FailedPrecondition(
            f"cannot update {delegation.name}: it is {delegation.state}",
            reason="INVALID_TRANSITION",
            metadata={"delegation": delegation.name, "state": str(delegation.state), "action": "UPDATE"},
        )
    return replace(delegation, **changes, version=delegation.version + 1, updated_at=now)


def _masked_changes(delegation: Delegation, command: UpdateDelegation, violations: Violations) -> dict[str, Any]:
    if not command.paths:
        violations.add("update_mask", "name the fields to change", "REQUIRED")
    for path in command.paths:
        if path not in MUTABLE_PATHS:
            allowed = ", ".join(sorted(MUTABLE_PATHS))
            violations.add("update_mask", f"{path!r} cannot be changed; the mutable fields are {allowed}", "FIELD_NOT_MUTABLE")
    paths = set(command.paths) & MUTABLE_PATHS
    changes: dict[str, Any] = {}
    if "description" in paths:
        changes["description"] = command.description.strip()
        check_text(
            changes["description"], "delegation.description", violations, max_length=MAX_DESCRIPTION_LENGTH, required=False
        )
    officer_paths = {p for p in paths if p.startswith("requesting_officer")}
    if officer_paths:
        given = command.officer or Officer("", "")
        current = delegation.requesting_officer or Officer("", "")
        whole = "requesting_officer" in officer_paths
        officer = Officer(
            given.name if whole or "requesting_officer.display_name" in officer_paths else current.name,
            given.phone if whole or "requesting_officer.phone" in officer_paths else current.phone,
        )
        officer.validate("delegation.requesting_officer", violations)
        changes["requesting_officer"] = officer
    return changes


# --- checks ---------------------------------------------------------------------------------------------


def _check_actor(delegation: Delegation, action: Action, actor: Actor) -> None:
    role = RULES[action].role
    if role is Role.REQUESTING_COURT and actor.court_id != delegation.requesting_court_id:
        _deny(delegation, action, actor, "NOT_REQUESTING_COURT", "the requesting court")
    if role is Role.ENTRUSTED_COURT and actor.court_id != delegation.entrusted_court_id:
        _deny(delegation, action, actor, "NOT_ENTRUSTED_COURT", "the entrusted court")


def _deny(delegation: Delegation, action: Action, actor: Actor, reason: str, who: str) -> NoReturn:
    raise PermissionDenied(
        f"only {who} may {action.lower().replace('_', ' ')} {delegation.name}",
        reason=reason,
        metadata={"delegation": delegation.name, "action": str(action), "court": f"courts/{actor.court_id}"},
    )


def _check_transition(delegation: Delegation, action: Action, expected_version: int | None) -> None:
    _check_version(delegation, expected_version)
    if delegation.state not in RULES[action].from_states:
        raise FailedPrecondition(
            f"cannot {action.lower().replace('_', ' ')} {delegation.name}: it is {delegation.state}",
            reason="INVALID_TRANSITION",
            metadata={"delegation": delegation.name, "state": str(delegation.state), "action": str(action)},
        )


def _check_version(delegation: Delegation, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != delegation.version:
        raise Aborted(
            f"{delegation.name} changed: it is at version {delegation.version}, the request expected {expected_version}",
            reason="VERSION_MISMATCH",
            metadata={
                "delegation": delegation.name,
                "expected_version": str(expected_version),
                "current_version": str(delegation.version),
            },
        )


def _note(note: str, violations: Violations, *, required: bool = False) -> str:
    note = note.strip()
    check_text(note, "note", violations, max_length=MAX_TEXT_LENGTH, required=required)
    return note


def _check_outcome(kind: MatterKind, command: CompleteDelegation, violations: Violations) -> Outcome | None:
    check_attachments(command.result_documents, "result_documents", violations)
    outcome = parse_enum(Outcome, command.outcome, "outcome", violations)
    if outcome is not None and outcome not in OUTCOMES_BY_KIND[kind]:
        # The rules below are about the outcome; for one that does not fit they would only add noise.
        allowed = ", ".join(sorted(OUTCOMES_BY_KIND[kind]))
        violations.add("outcome", f"a {kind} matter ends {allowed}", "OUTCOME_NOT_FOR_KIND")
        return outcome
    if command.amount_fen is not None and outcome is not None and outcome not in AMOUNT_OUTCOMES:
        violations.add("amount_fen", f"no amount for {outcome}", "NOT_APPLICABLE")
    else:
        check_amount(command.amount_fen, "amount_fen", violations, required=False)
    if outcome is not None:
        required = RESULT_DOCUMENTS_REQUIRED.get(outcome, frozenset())
        check_required_attachments(required, command.result_documents, "result_documents", violations, why=f"for {outcome}")
    return outcome


def _check_supplement(delegation: Delegation, attachments: tuple[Attachment, ...], note: str, violations: Violations) -> None:
    if not attachments and not note:
        violations.add("attachments", "a supplement adds attachments, a note or both", "REQUIRED")
    check_attachments(attachments, "attachments", violations, already=len(delegation.attachments))
    # What the request needs can only be judged while one is open; the state check reports the rest.
    request = delegation.supplement_request
    if request is not None and delegation.state is S.RETURNED_FOR_SUPPLEMENT:
        required = SUPPLEMENT_REQUIRES.get(request.reason, frozenset())
        check_required_attachments(required, attachments, "attachments", violations, why=f"for {request.reason}")


def _check_approval(
    delegation: Delegation, command: ReturnDelegation, courts: CourtCatalog, violations: Violations
) -> ReturnApproval | None:
    """Optional, but when given it must come from a superior court at high-court level or above."""
    court, reference = command.approval_court.strip(), command.approval_reference.strip()
    if not court and not reference:
        return None
    check_text(reference, "approval_reference", violations, max_length=MAX_ITEM_LENGTH)
    if not court:
        violations.add("approval_court", "required with an approval reference", "REQUIRED")
        return None
    court_id = court_id_of(court, "approval_court", courts, violations)
    if court_id is None:
        return None
    approver = courts.get(court_id)
    assert approver is not None
    if not courts.is_superior_of(court_id, delegation.entrusted_court_id) or approver.level.rank > CourtLevel.HIGH.rank:
        violations.add(
            "approval_court",
            f"returning needs the approval of courts/{delegation.entrusted_court_id}'s high court",
            "NOT_SUPERIOR_COURT",
        )
    return ReturnApproval(court_id, reference)


# --- applying ---------------------------------------------------------------------------------------


def _apply(
    delegation: Delegation,
    action: Action,
    actor: Actor,
    now: datetime,
    *,
    reason_code: str = "",
    note: str = "",
    changes: dict[str, Any],
) -> Result:
    """The next version: new state, the transition appended, version bumped, and its event."""
    rule = RULES[action]
    transition = Transition(
        action=action,
        from_state=delegation.state,
        to_state=rule.to_state,
        actor_court_id=actor.court_id,
        officer=actor.officer,
        at=now,
        reason_code=str(reason_code),
        note=note,
    )
    updated = replace(
        delegation,
        state=rule.to_state,
        version=delegation.version + 1,
        updated_at=now,
        history=(*delegation.history, transition),
        **changes,
    )
    return updated, [EVENT_TYPES[action](updated, transition)]


# --- seizures handed over with a matter (委托执行规定 art. 6) ---------------------------------------

#: Seized property is handed over only with at least this many months of its term left.
HANDOVER_MINIMUM_MONTHS = 1


@dataclass(frozen=True)
class HandedOverSeizure:
    """What the delegation service knows of a seizure, from the assistance service's events."""

    name: str  # courts/{court}/seizures/{seizure}
    court_id: str
    active: bool
    expires_at: datetime


def seizure_term_long_enough(expires_at: datetime, now: datetime) -> bool:
    """Whether the term still runs a full calendar month after `now` (China time): the term's
    last instant is no earlier than the end of the same day one month later."""
    today = now.astimezone(CHINA_TZ).date()
    last_day = add_months(today, HANDOVER_MINIMUM_MONTHS)
    return expires_at.astimezone(CHINA_TZ).date() >= last_day


def check_handed_over_seizures(
    names: tuple[str, ...], known: dict[str, HandedOverSeizure], requesting_court_id: str, now: datetime
) -> None:
    """Each named seizure is the requesting court's, in effect, with a month of its term left.

    InvalidArgument for malformed or repeated names; FailedPrecondition SEIZURE_NOT_FOUND (not
    the court's, or not replicated yet: retry shortly), SEIZURE_NOT_ACTIVE, or
    SEIZURE_TERM_TOO_SHORT (renew it first, then delegate).
    """
    violations = Violations()
    if len(names) > MAX_LIST_ITEMS:
        violations.add("handed_over_seizures", f"at most {MAX_LIST_ITEMS} seizures per delegation", "TOO_MANY")
        violations.raise_if_any()
    for i, name in enumerate(names):
        parts = name.split("/")
        if len(parts) != 4 or parts[0] != "courts" or parts[2] != "seizures" or not parts[1] or not parts[3]:
            violations.add(f"handed_over_seizures[{i}]", "must be courts/{court}/seizures/{seizure}", "RESOURCE_NAME")
        elif name in names[:i]:
            violations.add(f"handed_over_seizures[{i}]", "named twice", "DUPLICATE")
    violations.raise_if_any()
    for name in names:
        seizure = known.get(name)
        if seizure is None or seizure.court_id != requesting_court_id:
            raise FailedPrecondition(
                f"{name} is not a seizure of courts/{requesting_court_id} known here (yet); retry shortly",
                reason="SEIZURE_NOT_FOUND",
                metadata={"seizure": name},
            )
        if not seizure.active:
            raise FailedPrecondition(f"{name} is no longer in effect", reason="SEIZURE_NOT_ACTIVE", metadata={"seizure": name})
        if not seizure_term_long_enough(seizure.expires_at, now):
            raise FailedPrecondition(
                f"{name} ends {seizure.expires_at.isoformat()}, less than {HANDOVER_MINIMUM_MONTHS} month from now: renew it before delegating",
                reason="SEIZURE_TERM_TOO_SHORT",
                metadata={"seizure": name, "expire_time": seizure.expires_at.isoformat()},
            )
