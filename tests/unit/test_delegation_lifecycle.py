"""The lifecycle of a delegation (delegation/lifecycle.py): every transition, allowed or not."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from delegation.details import MAX_ATTACHMENTS, Attachment, Officer
from delegation.lifecycle import (
    FINAL_STATES,
    RULES,
    SYSTEM_ACTOR,
    AcknowledgeDelegation,
    Actor,
    CompleteDelegation,
    CourtRole,
    DeemDelegationWithdrawn,
    DelegationAcknowledged,
    DelegationCompleted,
    DelegationReturned,
    DelegationReturnedForSupplement,
    DelegationStarted,
    DelegationSupplemented,
    DelegationWithdrawn,
    LifecycleEvent,
    ReturnDelegation,
    ReturnDelegationForSupplement,
    StartDelegation,
    SupplementDelegation,
    UpdateDelegation,
    WithdrawDelegation,
    acknowledge,
    allowed_actions,
    complete,
    court_roles,
    deem_withdrawn,
    is_final,
    return_delegation,
    return_for_supplement,
    start,
    supplement,
    update,
    withdraw,
)
from delegation.matters import (
    Action,
    Delegation,
    DelegationState,
    MatterKind,
    Outcome,
    ReturnApproval,
    ReturnReason,
    SupplementReason,
    Transition,
    WithdrawReason,
)
from registry.courts import CourtCatalog
from registry.errors import Aborted, DomainError, FailedPrecondition, InvalidArgument, PermissionDenied

S = DelegationState
A = Action
CREATED = datetime(2020, 4, 20, 9, 30, tzinfo=UTC)
NOW = datetime(2020, 4, 20, 15, 0, tzinfo=UTC)
COURTS = CourtCatalog.default()
REQUESTING = Actor("gd0112", "张三")  # 广州市黄埔区法院
ENTRUSTED = Actor("ha0122", "李四")  # 中牟县法院, Henan
ENTRUSTED_SUPERIOR = Actor("ha01", "赵六")  # 郑州中院
STRANGER = Actor("zj0326", "钱七")  # 平阳县法院
OFFICER = Officer(name="李四", phone="0371-62171234")
DOCUMENT = Attachment(kind="RULING", name="补充裁定书.pdf", size_bytes=2048, sha256="cd" * 32)
RECEIPT = Attachment(kind="ASSISTANCE_RECEIPT", name="协助冻结回执.pdf", size_bytes=4096, sha256="ef" * 32)

SUBMITTED = Delegation(
    id="0171964c-5a00-7000-8000-000000000001",
    requesting_court_id="gd0112",
    case_name="courts/gd0112/cases/2020-enf-1",
    entrusted_court_id="ha0122",
    matter_kind=MatterKind.DEPOSITS,
    description="冻结被执行人应收账款 7,000,000 元",
    created_at=CREATED,
    updated_at=CREATED,
)

#: The specification, written out independently of RULES: (state, action) → next state.
ALLOWED: dict[tuple[DelegationState, Action], DelegationState] = {
    (S.SUBMITTED, A.ACKNOWLEDGE): S.ACKNOWLEDGED,
    (S.ACKNOWLEDGED, A.START): S.IN_PROGRESS,
    (S.ACKNOWLEDGED, A.COMPLETE): S.COMPLETED,
    (S.IN_PROGRESS, A.COMPLETE): S.COMPLETED,
    (S.ACKNOWLEDGED, A.RETURN_FOR_SUPPLEMENT): S.RETURNED_FOR_SUPPLEMENT,
    (S.IN_PROGRESS, A.RETURN_FOR_SUPPLEMENT): S.RETURNED_FOR_SUPPLEMENT,
    (S.RETURNED_FOR_SUPPLEMENT, A.SUPPLEMENT): S.IN_PROGRESS,
    (S.RETURNED_FOR_SUPPLEMENT, A.DEEM_WITHDRAWN): S.WITHDRAWN,
    (S.SUBMITTED, A.RETURN): S.RETURNED,
    (S.ACKNOWLEDGED, A.RETURN): S.RETURNED,
    (S.IN_PROGRESS, A.RETURN): S.RETURNED,
    (S.SUBMITTED, A.WITHDRAW): S.WITHDRAWN,
    (S.ACKNOWLEDGED, A.WITHDRAW): S.WITHDRAWN,
    (S.IN_PROGRESS, A.WITHDRAW): S.WITHDRAWN,
    (S.RETURNED_FOR_SUPPLEMENT, A.WITHDRAW): S.WITHDRAWN,
}
FORBIDDEN = [(state, action) for state in S for action in A if (state, action) not in ALLOWED]
ACTOR_OF: dict[Action, Actor] = {
    A.ACKNOWLEDGE: ENTRUSTED,
    A.START: ENTRUSTED,
    A.COMPLETE: ENTRUSTED,
    A.RETURN_FOR_SUPPLEMENT: ENTRUSTED,
    A.RETURN: ENTRUSTED,
    A.SUPPLEMENT: REQUESTING,
    A.WITHDRAW: REQUESTING,
    A.DEEM_WITHDRAWN: SYSTEM_ACTOR,
}
EVENT_OF: dict[Action, type[LifecycleEvent]] = {
    A.ACKNOWLEDGE: DelegationAcknowledged,
    A.START: DelegationStarted,
    A.COMPLETE: DelegationCompleted,
    A.RETURN_FOR_SUPPLEMENT: DelegationReturnedForSupplement,
    A.SUPPLEMENT: DelegationSupplemented,
    A.RETURN: DelegationReturned,
    A.WITHDRAW: DelegationWithdrawn,
    A.DEEM_WITHDRAWN: DelegationWithdrawn,
}
#: A valid command for each action.
COMMANDS: dict[Action, Any] = {
    A.ACKNOWLEDGE: AcknowledgeDelegation(officer=OFFICER),
    A.START: StartDelegation(),
    A.COMPLETE: CompleteDelegation(outcome="EXECUTED", amount_fen=700_000_000, result_documents=(RECEIPT,)),
    A.RETURN_FOR_SUPPLEMENT: ReturnDelegationForSupplement(reason="MISSING_EFFECTIVE_DATE", missing_items=("生效证明",)),
    A.SUPPLEMENT: SupplementDelegation(attachments=(DOCUMENT,), note="补充生效证明"),
    A.RETURN: ReturnDelegation(reason="NOT_WITHIN_JURISDICTION"),
    A.WITHDRAW: WithdrawDelegation(reason="SETTLED"),
    A.DEEM_WITHDRAWN: DeemDelegationWithdrawn(supplement_deadline=NOW - timedelta(seconds=1)),
}
COURT_ACTIONS = [a for a in A if a is not A.DEEM_WITHDRAWN]


def run(action: Action, delegation: Delegation, command: Any = None, actor: Actor | None = None, now: datetime = NOW):  # type: ignore[no-untyped-def]
    """Calls the custom method of `action` with a valid command unless one is given."""
    command = COMMANDS[action] if command is None else command
    actor = ACTOR_OF[action] if actor is None else actor
    methods: dict[Action, Callable[..., Any]] = {
        A.ACKNOWLEDGE: acknowledge,
        A.START: start,
        A.COMPLETE: complete,
        A.RETURN_FOR_SUPPLEMENT: return_for_supplement,
        A.SUPPLEMENT: supplement,
        A.WITHDRAW: withdraw,
    }
    if action is A.RETURN:
        return return_delegation(delegation, command, actor, now, courts=COURTS)
    if action is A.DEEM_WITHDRAWN:
        return deem_withdrawn(delegation, command, now)
    return methods[action](delegation, command, actor, now)


def in_state(state: DelegationState) -> Delegation:
    return replace(SUBMITTED, state=state, version=4)


def violations(action: Action, command: Any, delegation: Delegation | None = None) -> set[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as raised:
        run(action, delegation or in_state(next(s for (s, a) in ALLOWED if a is action)), command)
    return {(v.field, v.reason) for v in raised.value.violations}


# --- the state machine ----------------------------------------------------------------------------------


def test_rules_match_the_specification() -> None:
    assert {(s, a): RULES[a].to_state for a in A for s in RULES[a].from_states} == ALLOWED


@pytest.mark.parametrize(("state", "action"), list(ALLOWED))
def test_allowed_transition(state: DelegationState, action: Action) -> None:
    before = in_state(state)
    after, events = run(action, before)
    actor = ACTOR_OF[action]
    assert after.state is ALLOWED[(state, action)]
    assert (after.version, after.updated_at) == (before.version + 1, NOW)
    transition = after.history[-1]
    assert after.history == (*before.history, transition)
    assert (transition.action, transition.from_state, transition.to_state) == (action, state, after.state)
    assert (transition.actor_court_id, transition.officer, transition.at) == (actor.court_id, actor.officer, NOW)
    assert events == [EVENT_OF[action](after, transition)]
    assert type(events[0]) is EVENT_OF[action]


@pytest.mark.parametrize(("state", "action"), FORBIDDEN)
def test_forbidden_transition(state: DelegationState, action: Action) -> None:
    delegation = in_state(state)
    with pytest.raises(FailedPrecondition) as raised:
        run(action, delegation)
    assert raised.value.reason == "INVALID_TRANSITION"
    assert raised.value.metadata == {"delegation": delegation.name, "state": state.value, "action": action.value}


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_final_states_are_final(state: DelegationState) -> None:
    assert is_final(state) and allowed_actions(state) == frozenset()
    for action in A:
        with pytest.raises(FailedPrecondition):
            run(action, in_state(state))


def test_open_states_are_not_final_and_can_always_be_withdrawn() -> None:
    for state in set(S) - FINAL_STATES:
        assert not is_final(state) and A.WITHDRAW in allowed_actions(state)


# --- who may act -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", COURT_ACTIONS)
@pytest.mark.parametrize("actor", [REQUESTING, ENTRUSTED, ENTRUSTED_SUPERIOR, STRANGER, SYSTEM_ACTOR])
def test_only_the_right_court_may_act(action: Action, actor: Actor) -> None:
    right = ACTOR_OF[action]
    state = next(s for (s, a) in ALLOWED if a is action)
    if actor.court_id == right.court_id:
        assert run(action, in_state(state), actor=actor)[0].state is ALLOWED[(state, action)]
        return
    with pytest.raises(PermissionDenied) as raised:
        run(action, in_state(state), actor=actor)
    expected = "NOT_ENTRUSTED_COURT" if right is ENTRUSTED else "NOT_REQUESTING_COURT"
    assert raised.value.reason == expected
    assert raised.value.metadata["action"] == action.value


@pytest.mark.parametrize("action", COURT_ACTIONS)
def test_the_actor_is_checked_before_arguments_version_and_state(action: Action) -> None:
    wrong = REQUESTING if ACTOR_OF[action] is ENTRUSTED else ENTRUSTED
    with pytest.raises(PermissionDenied):
        run(action, in_state(S.COMPLETED), CompleteDelegation(outcome=""), actor=wrong)  # every check would fail


def test_court_roles_include_superiors() -> None:
    assert court_roles(SUBMITTED, "gd0112", COURTS) == {CourtRole.REQUESTING_COURT}
    assert court_roles(SUBMITTED, "ha0122", COURTS) == {CourtRole.ENTRUSTED_COURT}
    assert court_roles(SUBMITTED, "ha01", COURTS) == {CourtRole.SUPERIOR_OF_ENTRUSTED_COURT}
    assert court_roles(SUBMITTED, "gd", COURTS) == {CourtRole.SUPERIOR_OF_REQUESTING_COURT}
    assert court_roles(SUBMITTED, "spc", COURTS) == {
        CourtRole.SUPERIOR_OF_REQUESTING_COURT,
        CourtRole.SUPERIOR_OF_ENTRUSTED_COURT,
    }
    assert court_roles(SUBMITTED, "zj0326", COURTS) == frozenset()
    assert court_roles(SUBMITTED, "nowhere", COURTS) == frozenset()


# --- optimistic concurrency ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", list(A))
def test_a_stale_version_is_aborted(action: Action) -> None:
    state = next(s for (s, a) in ALLOWED if a is action)
    delegation = in_state(state)
    with pytest.raises(Aborted) as raised:
        run(action, delegation, replace(COMMANDS[action], expected_version=3))
    assert isinstance(raised.value, DomainError) and not isinstance(raised.value, FailedPrecondition)
    assert raised.value.reason == "VERSION_MISMATCH"
    assert raised.value.metadata == {"delegation": delegation.name, "expected_version": "3", "current_version": "4"}


@pytest.mark.parametrize("action", list(A))
def test_the_current_version_or_none_passes(action: Action) -> None:
    state = next(s for (s, a) in ALLOWED if a is action)
    assert run(action, in_state(state), replace(COMMANDS[action], expected_version=4))[0].version == 5
    assert run(action, in_state(state), replace(COMMANDS[action], expected_version=None))[0].version == 5


def test_a_stale_version_is_reported_before_the_state() -> None:
    with pytest.raises(Aborted):
        run(A.START, in_state(S.COMPLETED), StartDelegation(expected_version=1))


def test_arguments_are_checked_before_version_and_state() -> None:
    with pytest.raises(InvalidArgument):
        run(A.COMPLETE, in_state(S.COMPLETED), CompleteDelegation(outcome="", expected_version=1))


# --- the whole story and its bookkeeping -----------------------------------------------------------------


def at(hours: float) -> datetime:
    return CREATED + timedelta(hours=hours)


def test_history_versions_and_turnaround_timestamps_over_a_whole_life() -> None:
    d, _ = run(A.ACKNOWLEDGE, SUBMITTED, now=at(1))
    d, _ = run(A.START, d, now=at(2))
    d, _ = run(A.RETURN_FOR_SUPPLEMENT, d, now=at(3))
    d, _ = run(A.SUPPLEMENT, d, now=at(30))
    d, events = run(A.COMPLETE, d, now=at(31))
    assert d.state is S.COMPLETED and d.version == 6 and d.updated_at == at(31)
    assert [(t.action, t.from_state, t.to_state, t.at) for t in d.history] == [
        (A.ACKNOWLEDGE, S.SUBMITTED, S.ACKNOWLEDGED, at(1)),
        (A.START, S.ACKNOWLEDGED, S.IN_PROGRESS, at(2)),
        (A.RETURN_FOR_SUPPLEMENT, S.IN_PROGRESS, S.RETURNED_FOR_SUPPLEMENT, at(3)),
        (A.SUPPLEMENT, S.RETURNED_FOR_SUPPLEMENT, S.IN_PROGRESS, at(30)),
        (A.COMPLETE, S.IN_PROGRESS, S.COMPLETED, at(31)),
    ]
    assert [t.actor_court_id for t in d.history] == ["ha0122", "ha0122", "ha0122", "gd0112", "ha0122"]
    assert (d.created_at, d.acknowledged_at, d.started_at, d.completed_at) == (CREATED, at(1), at(2), at(31))
    assert d.returned_at is None and d.withdrawn_at is None
    assert events[0].delegation is d and events[0].transition is d.history[-1]


def test_acknowledging_names_the_entrusted_officer() -> None:
    d, _ = run(A.ACKNOWLEDGE, SUBMITTED, AcknowledgeDelegation(officer=Officer(" 李四 ", "138 1234 5678"), note=" 已收 "))
    assert d.entrusted_officer == Officer("李四", "13812345678")
    assert d.history[-1].note == "已收"


def test_acknowledging_needs_a_reachable_officer() -> None:
    command = AcknowledgeDelegation(officer=Officer("", "123"))
    assert violations(A.ACKNOWLEDGE, command) == {("officer.name", "REQUIRED"), ("officer.phone", "BAD_PHONE")}


def test_completing_on_the_spot_counts_as_started_then() -> None:
    acknowledged, _ = run(A.ACKNOWLEDGE, SUBMITTED, now=at(1))
    d, _ = run(A.COMPLETE, acknowledged, now=at(2))
    assert d.started_at == d.completed_at == at(2)
    assert d.completion is not None
    assert (d.completion.outcome, d.completion.amount_fen, d.completion.result_documents) == (
        Outcome.EXECUTED,
        700_000_000,
        (RECEIPT,),
    )
    assert d.history[-1].reason_code == "EXECUTED"


def test_a_supplement_before_the_start_starts_the_work() -> None:
    d, _ = run(A.ACKNOWLEDGE, SUBMITTED, now=at(1))
    d, _ = run(A.RETURN_FOR_SUPPLEMENT, d, now=at(2))
    assert d.started_at is None
    d, _ = run(A.SUPPLEMENT, d, now=at(5))
    assert d.state is S.IN_PROGRESS and d.started_at == at(5)


# --- completing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "outcome", "ok"),
    [
        (MatterKind.DEPOSITS, "PARTLY_EXECUTED", True),
        (MatterKind.DEPOSITS, "PROPERTY_NOT_FOUND", True),
        (MatterKind.DEPOSITS, "SERVED", False),
        (MatterKind.SERVICE_OF_DOCUMENTS, "EXECUTED", False),
        (MatterKind.PROPERTY_INVESTIGATION, "PROPERTY_FOUND", True),
        (MatterKind.PROPERTY_INVESTIGATION, "EXECUTED", False),
        (MatterKind.CONTROL_MEASURES, "PERSON_NOT_FOUND", True),
        (MatterKind.OTHER, "PROPERTY_FOUND", False),
    ],
)
def test_the_outcome_must_fit_the_matter_kind(kind: MatterKind, outcome: str, ok: bool) -> None:
    delegation = replace(in_state(S.IN_PROGRESS), matter_kind=kind)
    command = CompleteDelegation(outcome=outcome)
    if ok:
        assert run(A.COMPLETE, delegation, command)[0].state is S.COMPLETED
    else:
        assert violations(A.COMPLETE, command, delegation) == {("outcome", "OUTCOME_NOT_FOR_KIND")}


def test_completing_needs_a_known_outcome() -> None:
    assert violations(A.COMPLETE, CompleteDelegation(outcome="")) == {("outcome", "REQUIRED")}
    assert violations(A.COMPLETE, CompleteDelegation(outcome="DONE")) == {("outcome", "BAD_VALUE")}


def test_amounts_belong_to_executed_outcomes_only() -> None:
    assert violations(A.COMPLETE, CompleteDelegation(outcome="PROPERTY_NOT_FOUND", amount_fen=1)) == {
        ("amount_fen", "NOT_APPLICABLE")
    }
    assert violations(A.COMPLETE, CompleteDelegation(outcome="EXECUTED", amount_fen=0)) == {("amount_fen", "NOT_POSITIVE")}


def test_not_done_must_say_why() -> None:
    assert violations(A.COMPLETE, CompleteDelegation(outcome="NOT_EXECUTED")) == {("note", "REQUIRED")}
    d, _ = run(A.COMPLETE, in_state(S.IN_PROGRESS), CompleteDelegation(outcome="NOT_EXECUTED", note="账户已销户"))
    assert d.history[-1].note == "账户已销户"


def test_served_needs_the_service_receipt() -> None:
    delegation = replace(in_state(S.IN_PROGRESS), matter_kind=MatterKind.SERVICE_OF_DOCUMENTS)
    assert violations(A.COMPLETE, CompleteDelegation(outcome="SERVED"), delegation) == {
        ("result_documents", "MISSING_ATTACHMENT")
    }
    receipt = replace(RECEIPT, kind="SERVICE_RECEIPT")
    assert run(A.COMPLETE, delegation, CompleteDelegation(outcome="SERVED", result_documents=(receipt,)))[0].completion


def test_result_documents_are_validated() -> None:
    bad = replace(RECEIPT, sha256="nope")
    assert violations(A.COMPLETE, CompleteDelegation(outcome="EXECUTED", result_documents=(bad,))) == {
        ("result_documents[0].sha256", "BAD_SHA256")
    }


# --- returning for supplement and supplementing ----------------------------------------------------------


def test_returning_for_supplement_records_reason_and_missing_items() -> None:
    command = ReturnDelegationForSupplement(reason="UNCLEAR_PROPERTY", missing_items=(" 账号 ", "开户行"), note="账号不全")
    d, events = run(A.RETURN_FOR_SUPPLEMENT, in_state(S.IN_PROGRESS), command)
    assert d.supplement_request is not None
    assert (d.supplement_request.reason, d.supplement_request.missing_items) == (
        SupplementReason.UNCLEAR_PROPERTY,
        ("账号", "开户行"),
    )
    assert d.supplement_request.requested_at == NOW
    assert (d.history[-1].reason_code, d.history[-1].note) == ("UNCLEAR_PROPERTY", "账号不全")
    assert events[0].delegation.supplement_request == d.supplement_request


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (ReturnDelegationForSupplement(reason="", missing_items=("x",)), {("reason", "REQUIRED")}),
        (ReturnDelegationForSupplement(reason="LATE", missing_items=("x",)), {("reason", "BAD_VALUE")}),
        (ReturnDelegationForSupplement(reason="MISSING_RULING", missing_items=()), {("missing_items", "REQUIRED")}),
        (ReturnDelegationForSupplement(reason="MISSING_RULING", missing_items=("x", "")), {("missing_items[1]", "REQUIRED")}),
        (ReturnDelegationForSupplement(reason="MISSING_RULING", missing_items=("x",) * 51), {("missing_items", "TOO_MANY")}),
        (ReturnDelegationForSupplement(reason="OTHER", missing_items=("x",)), {("note", "REQUIRED")}),
    ],
)
def test_returning_for_supplement_rules(command: ReturnDelegationForSupplement, expected: set[tuple[str, str]]) -> None:
    assert violations(A.RETURN_FOR_SUPPLEMENT, command) == expected


def test_a_supplement_adds_attachments_to_those_submitted() -> None:
    delegation = replace(in_state(S.RETURNED_FOR_SUPPLEMENT), attachments=(RECEIPT,))
    d, _ = run(A.SUPPLEMENT, delegation)
    assert d.attachments == (RECEIPT, DOCUMENT)
    assert d.history[-1].note == "补充生效证明"


def test_a_supplement_brings_something() -> None:
    assert violations(A.SUPPLEMENT, SupplementDelegation()) == {("attachments", "REQUIRED")}
    assert run(A.SUPPLEMENT, in_state(S.RETURNED_FOR_SUPPLEMENT), SupplementDelegation(note="生效日期为2020-03-01"))[0]


def test_a_supplement_keeps_within_the_attachment_limit() -> None:
    delegation = replace(in_state(S.RETURNED_FOR_SUPPLEMENT), attachments=(RECEIPT,) * MAX_ATTACHMENTS)
    assert violations(A.SUPPLEMENT, COMMANDS[A.SUPPLEMENT], delegation) == {("attachments", "TOO_MANY")}


def test_a_supplement_for_a_missing_ruling_brings_a_ruling() -> None:
    returned, _ = run(
        A.RETURN_FOR_SUPPLEMENT, in_state(S.IN_PROGRESS), ReturnDelegationForSupplement("MISSING_RULING", ("执行裁定书",))
    )
    assert violations(A.SUPPLEMENT, SupplementDelegation(attachments=(RECEIPT,)), returned) == {
        ("attachments", "MISSING_ATTACHMENT")
    }
    assert run(A.SUPPLEMENT, returned, SupplementDelegation(attachments=(DOCUMENT,)))[0].state is S.IN_PROGRESS


# --- returning, withdrawing, deemed withdrawal ----------------------------------------------------------


def test_returning_records_reason_and_time() -> None:
    d, _ = run(A.RETURN, in_state(S.SUBMITTED), ReturnDelegation(reason="DUPLICATE", note="重复委托"))
    assert (d.return_reason, d.returned_at, d.return_approval) == (ReturnReason.DUPLICATE, NOW, None)
    assert (d.history[-1].reason_code, d.history[-1].note) == ("DUPLICATE", "重复委托")


@pytest.mark.parametrize("approver", ["courts/ha", "courts/spc"])
def test_returning_may_record_the_high_courts_approval(approver: str) -> None:
    command = ReturnDelegation(reason="MATERIALS_INCOMPLETE", approval_court=approver, approval_reference="豫高法〔2020〕12号")
    d, _ = run(A.RETURN, in_state(S.IN_PROGRESS), command)
    assert d.return_approval == ReturnApproval(approver.removeprefix("courts/"), "豫高法〔2020〕12号")


@pytest.mark.parametrize(
    ("court", "reference", "expected"),
    [
        ("courts/ha01", "ref", {("approval_court", "NOT_SUPERIOR_COURT")}),  # intermediate, not high
        ("courts/gd", "ref", {("approval_court", "NOT_SUPERIOR_COURT")}),  # another province's high court
        ("courts/ha0122", "ref", {("approval_court", "NOT_SUPERIOR_COURT")}),  # itself
        ("courts/xx", "ref", {("approval_court", "UNKNOWN_COURT")}),
        ("", "ref", {("approval_court", "REQUIRED")}),
        ("courts/ha", "", {("approval_reference", "REQUIRED")}),
    ],
)
def test_an_approval_must_come_from_the_entrusted_courts_high_court(court: str, reference: str, expected: set) -> None:  # type: ignore[type-arg]
    command = ReturnDelegation(reason="DUPLICATE", approval_court=court, approval_reference=reference)
    assert violations(A.RETURN, command) == expected


def test_returning_needs_a_reason_and_other_needs_a_note() -> None:
    assert violations(A.RETURN, ReturnDelegation(reason="")) == {("reason", "REQUIRED")}
    assert violations(A.RETURN, ReturnDelegation(reason="OTHER")) == {("note", "REQUIRED")}


def test_withdrawing_records_reason_and_time() -> None:
    d, _ = run(A.WITHDRAW, in_state(S.IN_PROGRESS))
    assert (d.withdraw_reason, d.withdrawn_at, d.history[-1].reason_code) == (WithdrawReason.SETTLED, NOW, "SETTLED")


def test_a_court_cannot_claim_deemed_withdrawal() -> None:
    assert violations(A.WITHDRAW, WithdrawDelegation(reason="DEEMED_WITHDRAWN")) == {("reason", "RESERVED")}
    assert violations(A.WITHDRAW, WithdrawDelegation(reason="OTHER", note=" ")) == {("note", "REQUIRED")}


def test_deemed_withdrawal_is_recorded_as_the_system() -> None:
    d, events = run(A.DEEM_WITHDRAWN, in_state(S.RETURNED_FOR_SUPPLEMENT))
    assert (d.state, d.withdraw_reason, d.withdrawn_at) == (S.WITHDRAWN, WithdrawReason.DEEMED_WITHDRAWN, NOW)
    assert d.history[-1] == Transition(
        A.DEEM_WITHDRAWN, S.RETURNED_FOR_SUPPLEMENT, S.WITHDRAWN, "", "system", NOW, "DEEMED_WITHDRAWN", ""
    )
    assert isinstance(events[0], DelegationWithdrawn)


def test_deemed_withdrawal_waits_for_the_deadline() -> None:
    delegation = in_state(S.RETURNED_FOR_SUPPLEMENT)
    with pytest.raises(FailedPrecondition) as raised:
        run(A.DEEM_WITHDRAWN, delegation, DeemDelegationWithdrawn(supplement_deadline=NOW + timedelta(seconds=1)))
    assert raised.value.reason == "SUPPLEMENT_DEADLINE_NOT_PASSED"
    assert run(A.DEEM_WITHDRAWN, delegation, DeemDelegationWithdrawn(supplement_deadline=NOW))[0].state is S.WITHDRAWN


def test_a_supplement_that_wins_the_race_stops_the_deemed_withdrawal() -> None:
    supplemented, _ = run(A.SUPPLEMENT, in_state(S.RETURNED_FOR_SUPPLEMENT))
    with pytest.raises(FailedPrecondition) as raised:
        run(A.DEEM_WITHDRAWN, supplemented)
    assert raised.value.reason == "INVALID_TRANSITION"


def test_transitions_leave_the_input_unchanged() -> None:
    before = in_state(S.SUBMITTED)
    run(A.ACKNOWLEDGE, before)
    assert before == in_state(S.SUBMITTED)


# --- UpdateDelegation (AIP-134) ------------------------------------------------------------------

NEW_OFFICER = Officer("王法官", "020-82112345")


def test_update_changes_only_the_masked_fields_and_bumps_the_version() -> None:
    before = replace(in_state(S.IN_PROGRESS), requesting_officer=Officer("张三", "020-82110000"))
    command = UpdateDelegation(("requesting_officer.display_name",), description="ignored", officer=NEW_OFFICER)
    after = update(before, command, REQUESTING, NOW)
    assert after.requesting_officer == Officer("王法官", "020-82110000")
    assert after.description == before.description and after.state == before.state and after.history == before.history
    assert after.version == before.version + 1 and after.updated_at == NOW


def test_update_replaces_the_whole_officer_and_the_description() -> None:
    command = UpdateDelegation(
        ("requesting_officer", "description"), description=" 更正 ", officer=NEW_OFFICER, expected_version=4
    )
    after = update(in_state(S.SUBMITTED), command, REQUESTING, NOW)
    assert (after.requesting_officer, after.description) == (NEW_OFFICER, "更正")


@pytest.mark.parametrize(
    ("paths", "reason"),
    [((), "REQUIRED"), (("entrusted_court",), "FIELD_NOT_MUTABLE"), (("description", "state"), "FIELD_NOT_MUTABLE")],
)
def test_update_refuses_a_mask_outside_the_mutable_fields(paths: tuple[str, ...], reason: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        update(in_state(S.SUBMITTED), UpdateDelegation(paths, description="x"), REQUESTING, NOW)
    assert {(v.field, v.reason) for v in raised.value.violations} == {("update_mask", reason)}


def test_update_validates_the_new_officer() -> None:
    with pytest.raises(InvalidArgument) as raised:
        update(in_state(S.SUBMITTED), UpdateDelegation(("requesting_officer",), officer=Officer("", "12")), REQUESTING, NOW)
    assert {v.field for v in raised.value.violations} >= {
        "delegation.requesting_officer.name",
        "delegation.requesting_officer.phone",
    }


def test_only_the_requesting_court_updates() -> None:
    with pytest.raises(PermissionDenied) as raised:
        update(in_state(S.SUBMITTED), UpdateDelegation(("description",)), ENTRUSTED, NOW)
    assert raised.value.reason == "NOT_REQUESTING_COURT"


def test_update_with_a_stale_etag_is_aborted() -> None:
    with pytest.raises(Aborted) as raised:
        update(in_state(S.SUBMITTED), UpdateDelegation(("description",), expected_version=3), REQUESTING, NOW)
    assert raised.value.reason == "VERSION_MISMATCH"


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_an_ended_matter_is_not_updated(state: DelegationState) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        update(in_state(state), UpdateDelegation(("description",)), REQUESTING, NOW)
    assert raised.value.reason == "INVALID_TRANSITION"
