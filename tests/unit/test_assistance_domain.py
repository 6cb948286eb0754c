"""Assistance notices (assistance/notices.py, notice_targets.py, notice_lifecycle.py): every
refusal rule of sending, the typed targets and documents, and the lifecycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from rogatory.assistance.v1 import assistance_pb2

from assistance import notice_lifecycle as lc
from assistance.notice_lifecycle import Actor, Party
from assistance.notice_targets import DepositAccount, Equity, Income, NoticeTarget, RegisteredProperty, asset_key
from assistance.notices import (
    ACCEPTING_AGENCY_KINDS,
    KIND_RULES,
    MAX_TARGET_LENGTH,
    SEIZURE_REFERENCE_REQUIRED,
    TARGET_OPTIONAL,
    AssistanceNotice,
    AssistanceNoticeSent,
    CreateNotice,
    NoticeKind,
    NoticeState,
    ObjectionDecision,
    ResultKind,
    create_notice,
)
from assistance.seizures import AssetClass, Seizure, take_effect
from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.details import Attachment
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied

NOW = datetime(2020, 4, 20, 9, 30, tzinfo=UTC)
NOTICE_ID = "0171964c-5a00-7000-8000-000000000002"
CASE = "courts/gd0112/cases/2020-enf-1"
DEBTOR = "河南某建设工程有限公司"
RESPONDENTS = (DEBTOR, "张三")
# One agency of each kind from registry/data/agencies.csv.
BANK, REAL_ESTATE, TRAFFIC, MARKET, HOUSING_FUND = "bank-icbc", "re-440100", "tp-440100", "mr-440100", "hf-440100"
DEPOSIT_KINDS = [k for k in NoticeKind if k.name.endswith("_DEPOSITS")]
PROPERTY_KINDS = [k for k in NoticeKind if k.name.endswith("_PROPERTY")]


def doc(kind: str, byte: str = "a") -> Attachment:
    return Attachment(kind, f"{kind.lower()}.pdf", 1024, byte * 64)


DOCUMENTS = (doc("RULING"), doc("ASSISTANCE_NOTICE", "b"), doc("OFFICER_CREDENTIALS", "c"))
ACCOUNT = DepositAccount("6222 0000 0000 0000", 700_000_000)
HOUSE = RegisteredProperty("REAL_ESTATE", location="广州市黄埔区某路1号", certificate_number="粤(2019)广州市不动产权第0001234号")
CAR = RegisteredProperty("VEHICLE", plate="粤A12345")
SHARE = Equity("广州某科技有限公司", "91110000600037341L", share_percent=Decimal("10"))
WAGES = Income("广州某科技有限公司", percent=Decimal("30"))


def subject_for(kind: NoticeKind, agency: str):  # type: ignore[no-untyped-def]
    if kind in PROPERTY_KINDS:
        return CAR if agency == TRAFFIC else HOUSE
    return {NoticeKind.FREEZE_EQUITY: SHARE, NoticeKind.WITHHOLD_INCOME: WAGES}.get(kind, ACCOUNT)


def command_for(kind: NoticeKind, agency: str, seizure: str = "") -> CreateNotice:
    return CreateNotice(
        parent="courts/gd0112",
        case=CASE,
        agency=f"agencies/{agency}",
        kind=str(kind),
        target_details=NoticeTarget(DEBTOR, subject_for(kind, agency)),
        documents=DOCUMENTS,
        seizure=seizure,
    )


COMMAND = command_for(NoticeKind.FREEZE_DEPOSITS, BANK)


def seizure_at(agency: str, subject, asset_class: AssetClass, court: str = "gd0112") -> Seizure:  # type: ignore[no-untyped-def]
    target = NoticeTarget(DEBTOR, subject)
    return take_effect(
        seizure_id="s1",
        court_id=court,
        case_name=CASE,
        agency_id=agency,
        notice_name="courts/gd0112/assistanceNotices/n0",
        target=target,
        asset_class=asset_class,
        asset_key=asset_key(agency, target),
        amount_fen=None,
        now=NOW - timedelta(days=100),
    )


def seizure_for(kind: NoticeKind, agency: str) -> Seizure | None:
    if kind not in SEIZURE_REFERENCE_REQUIRED:
        return None
    cls = AssetClass.DEPOSITS if kind in DEPOSIT_KINDS else AssetClass.REAL_ESTATE
    return seizure_at(agency, subject_for(kind, agency), cls)


@pytest.fixture(scope="module")
def courts() -> CourtCatalog:
    return CourtCatalog.default()


@pytest.fixture(scope="module")
def agencies() -> AgencyCatalog:
    return AgencyCatalog.default()


def send(  # type: ignore[no-untyped-def]
    courts: CourtCatalog,
    agencies: AgencyCatalog,
    command: CreateNotice = COMMAND,
    case_court_id: str | None = "gd0112",
    seizure: Seizure | None = None,
    respondents: tuple[str, ...] = RESPONDENTS,
):
    return create_notice(
        command, courts, agencies, case_court_id, NOW, notice_id=NOTICE_ID, respondents=respondents, seizure=seizure
    )


def violations_of(courts: CourtCatalog, agencies: AgencyCatalog, command: CreateNotice, **kw) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidArgument) as raised:
        send(courts, agencies, command, **kw)
    return {(v.field, v.reason) for v in raised.value.violations}


def fitting(kind: NoticeKind, agency_id: str) -> tuple[CreateNotice, Seizure | None]:
    seizure = seizure_for(kind, agency_id)
    return command_for(kind, agency_id, seizure.name if seizure else ""), seizure


# --- sending -----------------------------------------------------------------------------------------


def test_sends_the_notice_and_records_its_event(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    notice, events = send(courts, agencies)
    assert notice.name == f"courts/gd0112/assistanceNotices/{NOTICE_ID}"
    assert (notice.court_id, notice.case_name, notice.agency_id) == ("gd0112", CASE, "bank-icbc")
    assert notice.kind is NoticeKind.FREEZE_DEPOSITS
    assert notice.target_details == NoticeTarget(DEBTOR, DepositAccount("6222000000000000", 700_000_000))
    assert notice.documents == DOCUMENTS
    assert (notice.state, notice.version, notice.created_at) == (NoticeState.SENT, 1, NOW)
    assert events == [AssistanceNoticeSent(notice)]


def test_a_deposit_query_needs_no_account_nor_ruling(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    assert TARGET_OPTIONAL == {NoticeKind.QUERY_DEPOSITS}
    command = replace(command_for(NoticeKind.QUERY_DEPOSITS, BANK), target_details=NoticeTarget(DEBTOR), documents=DOCUMENTS[1:])
    notice, _ = send(courts, agencies, command)
    assert notice.target_details == NoticeTarget(DEBTOR, None)


@pytest.mark.parametrize("kind", [k for k in NoticeKind if k is not NoticeKind.QUERY_DEPOSITS])
def test_every_other_kind_needs_its_subject_and_full_document_set(
    courts: CourtCatalog, agencies: AgencyCatalog, kind: NoticeKind
) -> None:
    agency = {NoticeKind.FREEZE_EQUITY: MARKET}.get(kind, REAL_ESTATE if kind in PROPERTY_KINDS else BANK)
    command, seizure = fitting(kind, agency)
    assert send(courts, agencies, command, seizure=seizure)[0].kind is kind
    if seizure is None:  # a renewal or release may take its subject from the seizure
        subject_field = f"assistance_notice.target_details.{KIND_RULES[kind].subject.subject}"
        blank = replace(command, target_details=NoticeTarget(DEBTOR))
        assert violations_of(courts, agencies, blank) == {(subject_field, "REQUIRED")}
    missing = violations_of(courts, agencies, replace(command, documents=()), seizure=seizure)
    assert missing == {("assistance_notice.documents", "MISSING_ATTACHMENT")}


def test_a_renewal_takes_its_target_from_the_seizure(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    command, seizure = fitting(NoticeKind.RENEW_FREEZE_DEPOSITS, BANK)
    assert seizure is not None
    notice, _ = send(courts, agencies, replace(command, target_details=None), seizure=seizure)
    assert notice.target_details == seizure.target
    assert notice.seizure_name == seizure.name


def test_renewals_and_releases_must_name_an_active_seizure_of_the_court_at_that_agency(
    courts: CourtCatalog, agencies: AgencyCatalog
) -> None:
    command, seizure = fitting(NoticeKind.UNSEAL_PROPERTY, REAL_ESTATE)
    assert seizure is not None
    assert violations_of(courts, agencies, replace(command, seizure="")) == {("assistance_notice.seizure", "REQUIRED")}
    assert violations_of(courts, agencies, command, seizure=None) == {("assistance_notice.seizure", "UNKNOWN_SEIZURE")}
    other_court = replace(seizure, court_id="zj0326")
    assert violations_of(courts, agencies, command, seizure=other_court) == {("assistance_notice.seizure", "UNKNOWN_SEIZURE")}
    with pytest.raises(FailedPrecondition) as raised:
        send(courts, agencies, command, seizure=replace(seizure, agency_id="re-440300"))
    assert raised.value.reason == "SEIZURE_AT_OTHER_AGENCY"
    from assistance.seizures import release  # noqa: PLC0415

    with pytest.raises(FailedPrecondition) as raised:
        send(courts, agencies, command, seizure=release(seizure, NOW))
    assert raised.value.reason == "SEIZURE_NOT_ACTIVE"
    freeze = replace(COMMAND, seizure=seizure.name)
    assert violations_of(courts, agencies, freeze, seizure=seizure) == {("assistance_notice.seizure", "NOT_APPLICABLE")}


def test_refuses_a_subject_of_the_wrong_type_and_checks_it_like_a_delegation(
    courts: CourtCatalog, agencies: AgencyCatalog
) -> None:
    wrong = replace(COMMAND, target_details=NoticeTarget(DEBTOR, HOUSE))
    assert violations_of(courts, agencies, wrong) == {("assistance_notice.target_details.registered_property", "KIND_MISMATCH")}
    no_amount = replace(COMMAND, target_details=NoticeTarget(DEBTOR, DepositAccount("6222000000000000")))
    assert violations_of(courts, agencies, no_amount) == {
        ("assistance_notice.target_details.deposit_account.amount_fen", "REQUIRED")
    }
    bad_plate = command_for(NoticeKind.SEAL_PROPERTY, TRAFFIC)
    bad_plate = replace(bad_plate, target_details=NoticeTarget(DEBTOR, RegisteredProperty("VEHICLE", plate="XX")))
    assert violations_of(courts, agencies, bad_plate) == {
        ("assistance_notice.target_details.registered_property.plate", "BAD_PLATE")
    }
    no_share = command_for(NoticeKind.WITHHOLD_INCOME, BANK)
    no_share = replace(no_share, target_details=NoticeTarget(DEBTOR, Income("某公司")))
    assert violations_of(courts, agencies, no_share) == {("assistance_notice.target_details.income.amount_fen", "REQUIRED")}


def test_refuses_measures_against_anyone_who_is_not_a_debtor(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    stranger = replace(COMMAND, target_details=NoticeTarget("李四", ACCOUNT))
    with pytest.raises(FailedPrecondition) as raised:
        send(courts, agencies, stranger)
    assert raised.value.reason == "NOT_A_DEBTOR"
    # Blanks (full-width too) around or inside a name do not make another person.
    spaced = replace(COMMAND, target_details=NoticeTarget(" 张\u3000三 ", ACCOUNT))
    assert send(courts, agencies, spaced)[0].target_details.debtor == "张\u3000三"  # type: ignore[union-attr]


def test_refuses_a_target_text_that_is_too_long(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    assert send(courts, agencies, replace(COMMAND, target="x" * MAX_TARGET_LENGTH))[0].target
    command = replace(COMMAND, target="x" * (MAX_TARGET_LENGTH + 1))
    assert violations_of(courts, agencies, command) == {("assistance_notice.target", "TOO_LONG")}


@pytest.mark.parametrize(
    ("kind", "agency"),
    [(k, a) for k in DEPOSIT_KINDS for a in (BANK,)]
    + [(k, a) for k in PROPERTY_KINDS for a in (REAL_ESTATE, TRAFFIC)]
    + [(NoticeKind.FREEZE_EQUITY, MARKET)]
    + [(NoticeKind.WITHHOLD_INCOME, a) for a in (BANK, REAL_ESTATE, TRAFFIC, MARKET, HOUSING_FUND)],
)
def test_accepts_an_agency_that_can_carry_out_the_measure(
    courts: CourtCatalog, agencies: AgencyCatalog, kind: NoticeKind, agency: str
) -> None:
    command, seizure = fitting(kind, agency)
    assert send(courts, agencies, command, seizure=seizure)[0].agency_id == agency


@pytest.mark.parametrize(
    ("kind", "agency"),
    [(NoticeKind.FREEZE_DEPOSITS, a) for a in (REAL_ESTATE, TRAFFIC, MARKET, HOUSING_FUND)]
    + [(NoticeKind.SEAL_PROPERTY, a) for a in (BANK, MARKET, HOUSING_FUND)]
    + [(NoticeKind.FREEZE_EQUITY, a) for a in (BANK, REAL_ESTATE, TRAFFIC, HOUSING_FUND)],
)
def test_refuses_an_agency_of_the_wrong_kind(
    courts: CourtCatalog, agencies: AgencyCatalog, kind: NoticeKind, agency: str
) -> None:
    command = replace(
        command_for(kind, BANK if kind is not NoticeKind.SEAL_PROPERTY else REAL_ESTATE), agency=f"agencies/{agency}"
    )
    assert violations_of(courts, agencies, command) == {("assistance_notice.agency", "AGENCY_KIND_MISMATCH")}


def test_every_kind_has_its_rules() -> None:
    assert set(ACCEPTING_AGENCY_KINDS) == set(KIND_RULES) == set(NoticeKind)


def test_reports_every_field_violation_at_once(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    command = CreateNotice(parent="courts/xx9999", case="x", agency="agencies/nobody", kind="", target="x" * 501)
    assert violations_of(courts, agencies, command) == {
        ("parent", "UNKNOWN_COURT"),
        ("assistance_notice.case", "RESOURCE_NAME"),
        ("assistance_notice.agency", "UNKNOWN_AGENCY"),
        ("assistance_notice.kind", "REQUIRED"),
        ("assistance_notice.target", "TOO_LONG"),
        ("assistance_notice.target_details", "REQUIRED"),
    }


def test_refuses_a_case_the_replica_has_not_seen(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        send(courts, agencies, case_court_id=None)
    assert raised.value.reason == "CASE_NOT_REGISTERED"


@pytest.mark.parametrize("case_court_id", ["zj0326", None])
def test_refuses_another_courts_case(courts: CourtCatalog, agencies: AgencyCatalog, case_court_id: str | None) -> None:
    command = replace(COMMAND, case="courts/zj0326/cases/2023-enf-1234")
    with pytest.raises(PermissionDenied) as raised:
        send(courts, agencies, command, case_court_id=case_court_id)
    assert raised.value.reason == "NOT_CASE_OWNER"


def test_enums_match_the_proto_names() -> None:
    pb = assistance_pb2
    assert {k.value for k in NoticeKind} == set(pb.AssistanceNotice.Kind.keys()) - {"KIND_UNSPECIFIED"}
    assert {s.value for s in NoticeState} == set(pb.AssistanceNotice.State.keys()) - {"STATE_UNSPECIFIED"}
    assert {r.value for r in ResultKind} == set(pb.NoticeResult.Kind.keys()) - {"KIND_UNSPECIFIED"}
    assert {c.value for c in AssetClass} == set(pb.Seizure.AssetClass.keys()) - {"ASSET_CLASS_UNSPECIFIED"}


# --- the lifecycle ------------------------------------------------------------------------------------

BANK_ACTOR = Actor(Party.AGENCY, BANK)
COURT_ACTOR = Actor(Party.COURT, "gd0112")
LATER = NOW + timedelta(hours=3)


@pytest.fixture
def sent(courts: CourtCatalog, agencies: AgencyCatalog) -> AssistanceNotice:
    return send(courts, agencies)[0]


def test_receipt_by_a_registry_is_service(sent: AssistanceNotice) -> None:
    bank, t = lc.receive(sent, lc.ReceiveNotice(), BANK_ACTOR, LATER, serves=False)
    assert (bank.state, bank.received_at, bank.served_at, bank.version) == (NoticeState.RECEIVED, LATER, None, 2)
    assert (t.action, t.from_state, t.to_state, t.actor) == (
        lc.Action.RECEIVE,
        NoticeState.SENT,
        NoticeState.RECEIVED,
        "agencies/bank-icbc",
    )
    registry, _ = lc.receive(sent, lc.ReceiveNotice(), BANK_ACTOR, LATER, serves=True)
    assert registry.served_at == LATER


def test_only_the_addressed_agency_acts_and_only_the_court_answers(sent: AssistanceNotice) -> None:
    for actor in (Actor(Party.AGENCY, "bank-ccb"), COURT_ACTOR):
        with pytest.raises(PermissionDenied) as raised:
            lc.receive(sent, lc.ReceiveNotice(), actor, LATER, serves=False)
        assert raised.value.reason == "NOT_ADDRESSED_AGENCY"
    objected, _ = lc.object_to(sent, lc.ObjectToNotice("EXEMPT_PROPERTY"), BANK_ACTOR, LATER, calendar=WorkingCalendar.default())
    with pytest.raises(PermissionDenied) as raised:
        lc.answer_objection(objected, lc.AnswerObjection("WITHDRAW"), BANK_ACTOR, LATER)
    assert raised.value.reason == "NOT_SENDING_COURT"


def test_stale_etag_is_aborted_and_wrong_state_is_a_failed_precondition(sent: AssistanceNotice) -> None:
    with pytest.raises(Aborted):
        lc.receive(sent, lc.ReceiveNotice(expected_version=7), BANK_ACTOR, LATER, serves=False)
    received, _ = lc.receive(sent, lc.ReceiveNotice(expected_version=1), BANK_ACTOR, LATER, serves=False)
    with pytest.raises(FailedPrecondition) as raised:
        lc.receive(received, lc.ReceiveNotice(), BANK_ACTOR, LATER, serves=False)
    assert raised.value.reason == "INVALID_TRANSITION"
    with pytest.raises(FailedPrecondition):
        lc.answer_objection(received, lc.AnswerObjection("MAINTAIN", "理由"), COURT_ACTOR, LATER)


def test_a_reply_is_typed_by_the_kind_of_notice(sent: AssistanceNotice) -> None:
    frozen, t = lc.reply(sent, lc.ReplyNotice("FROZEN", amount_fen=500_000_000), BANK_ACTOR, LATER, serves=False)
    assert frozen.state is NoticeState.ANSWERED and frozen.result is not None
    assert (frozen.result.kind, frozen.result.amount_fen, frozen.received_at) == (ResultKind.FROZEN, 500_000_000, LATER)
    assert t.reason_code == "FROZEN"

    def refused(command: lc.ReplyNotice) -> set[tuple[str, str]]:
        with pytest.raises(InvalidArgument) as raised:
            lc.reply(sent, command, BANK_ACTOR, LATER, serves=False)
        return {(v.field, v.reason) for v in raised.value.violations}

    assert refused(lc.ReplyNotice("REGISTERED")) == {("result.kind", "RESULT_NOT_FOR_KIND")}
    assert refused(lc.ReplyNotice("FROZEN")) == {("result.amount_fen", "REQUIRED")}
    assert refused(lc.ReplyNotice("QUEUED")) == {("result.queue_position", "BAD_POSITION")}
    assert refused(lc.ReplyNotice("NOT_FOUND", queue_position=2)) == {("result.queue_position", "NOT_APPLICABLE")}
    assert refused(lc.ReplyNotice("")) == {("result.kind", "REQUIRED")}


def test_an_objection_is_answered_within_15_days_counted_past_a_holiday(sent: AssistanceNotice) -> None:
    calendar = WorkingCalendar.default()
    # 2023-09-20 + 15 days = 10-05, inside 国庆 (09-29..10-06): the period ends on 10-07.
    at = datetime(2023, 9, 20, 10, 0, tzinfo=CHINA_TZ)
    objected, t = lc.object_to(sent, lc.ObjectToNotice("NOT_DEBTORS_PROPERTY", "账户属案外人"), BANK_ACTOR, at, calendar=calendar)
    assert objected.state is NoticeState.OBJECTED and objected.objection is not None
    assert objected.objection.answer_due.date().isoformat() == "2023-10-07"
    assert t.reason_code == "NOT_DEBTORS_PROPERTY"
    due = objected.objection.answer_due
    assert not objected.objection.is_overdue(due) and objected.objection.is_overdue(due + timedelta(seconds=1))
    with pytest.raises(FailedPrecondition):
        lc.flag_objection_overdue(objected, due)
    flagged, mark = lc.flag_objection_overdue(objected, due + timedelta(days=1))
    assert flagged.version == objected.version and flagged.objection.overdue_flagged_at is not None  # type: ignore[union-attr]
    assert mark.action is lc.Action.OBJECTION_OVERDUE
    with pytest.raises(InvalidArgument):
        lc.object_to(sent, lc.ObjectToNotice("OTHER"), BANK_ACTOR, at, calendar=calendar)  # OTHER needs a note

    maintained, _ = lc.answer_objection(objected, lc.AnswerObjection("MAINTAIN", "账户登记为被执行人"), COURT_ACTOR, at)
    assert maintained.state is NoticeState.RECEIVED
    assert maintained.objection.answer.decision is ObjectionDecision.MAINTAIN  # type: ignore[union-attr]
    withdrawn, _ = lc.answer_objection(objected, lc.AnswerObjection("WITHDRAW"), COURT_ACTOR, at)
    assert withdrawn.state is NoticeState.WITHDRAWN


def test_a_queued_measure_moves_up_and_takes_effect_at_the_front(sent: AssistanceNotice) -> None:
    queued, _ = lc.reply(sent, lc.ReplyNotice("QUEUED", queue_position=2), BANK_ACTOR, LATER, serves=False)
    assert queued.waiting_in_queue
    second, t = lc.advance_queue(queued, LATER + timedelta(days=1))
    assert (t.action, second.result.queue_position, second.waiting_in_queue) == (lc.Action.ADVANCE_QUEUE, 1, True)  # type: ignore[union-attr]
    effective, t = lc.advance_queue(second, LATER + timedelta(days=2))
    assert t.action is lc.Action.TAKE_EFFECT and not effective.waiting_in_queue
    assert effective.result.effective_at == LATER + timedelta(days=2)  # type: ignore[union-attr]
    with pytest.raises(FailedPrecondition):
        lc.advance_queue(effective, LATER)


def test_a_seizure_whose_term_ended_is_not_renewed_even_before_the_scanner_lapses_it(
    courts: CourtCatalog, agencies: AgencyCatalog
) -> None:
    command, seizure = fitting(NoticeKind.RENEW_FREEZE_DEPOSITS, BANK)
    assert seizure is not None
    ended = replace(seizure, expires_at=NOW - timedelta(seconds=1))
    with pytest.raises(FailedPrecondition) as raised:
        send(courts, agencies, command, seizure=ended)
    assert raised.value.reason == "SEIZURE_EXPIRED"
