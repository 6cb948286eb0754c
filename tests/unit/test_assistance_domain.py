"""Sending an assistance notice (assistance/notices.py): every refusal rule and the happy path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from rogatory.assistance.v1 import assistance_pb2

from assistance.notices import (
    ACCEPTING_AGENCY_KINDS,
    MAX_TARGET_LENGTH,
    TARGET_OPTIONAL,
    AssistanceNoticeSent,
    CreateNotice,
    NoticeKind,
    NoticeState,
    create_notice,
)
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, InvalidArgument, PermissionDenied

NOW = datetime(2020, 4, 20, 9, 30, tzinfo=UTC)
NOTICE_ID = "0171964c-5a00-7000-8000-000000000002"
CASE = "courts/gd0112/cases/2020-enf-1"
COMMAND = CreateNotice(
    parent="courts/gd0112",
    case=CASE,
    agency="agencies/bank-icbc",
    kind="FREEZE_DEPOSITS",
    target="  账户 6222 0000 0000 0000  ",
)
# One agency of each kind from registry/data/agencies.csv.
BANK, REAL_ESTATE, TRAFFIC, MARKET, HOUSING_FUND = "bank-icbc", "re-440112", "tp-440100", "mr-440100", "hf-440100"
DEPOSIT_KINDS = [k for k in NoticeKind if k.name.endswith("_DEPOSITS")]
PROPERTY_KINDS = [k for k in NoticeKind if k.name.endswith("_PROPERTY")]


@pytest.fixture(scope="module")
def courts() -> CourtCatalog:
    return CourtCatalog.default()


@pytest.fixture(scope="module")
def agencies() -> AgencyCatalog:
    return AgencyCatalog.default()


def send(courts: CourtCatalog, agencies: AgencyCatalog, command: CreateNotice = COMMAND, case_court_id: str | None = "gd0112"):  # type: ignore[no-untyped-def]
    return create_notice(command, courts, agencies, case_court_id, NOW, notice_id=NOTICE_ID)


def violations_of(courts: CourtCatalog, agencies: AgencyCatalog, command: CreateNotice) -> set[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as raised:
        send(courts, agencies, command)
    return {(v.field, v.reason) for v in raised.value.violations}


def fitting(kind: NoticeKind, agency_id: str, target: str = "某物") -> CreateNotice:
    return replace(COMMAND, kind=str(kind), agency=f"agencies/{agency_id}", target=target)


def test_sends_the_notice_and_records_its_event(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    notice, events = send(courts, agencies)
    assert notice.id == NOTICE_ID
    assert notice.name == f"courts/gd0112/assistanceNotices/{NOTICE_ID}"
    assert (notice.court_id, notice.case_name, notice.agency_id) == ("gd0112", CASE, "bank-icbc")
    assert notice.kind is NoticeKind.FREEZE_DEPOSITS
    assert notice.target == "账户 6222 0000 0000 0000"
    assert notice.state is NoticeState.SENT
    assert notice.version == 1
    assert notice.created_at == notice.updated_at == NOW
    assert events == [AssistanceNoticeSent(notice)]


def test_a_deposit_query_needs_no_target(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    assert TARGET_OPTIONAL == {NoticeKind.QUERY_DEPOSITS}
    notice, _ = send(courts, agencies, fitting(NoticeKind.QUERY_DEPOSITS, BANK, target=""))
    assert notice.target == ""


@pytest.mark.parametrize("kind", [k for k in NoticeKind if k is not NoticeKind.QUERY_DEPOSITS])
def test_every_other_kind_needs_a_target(courts: CourtCatalog, agencies: AgencyCatalog, kind: NoticeKind) -> None:
    agency = {NoticeKind.FREEZE_EQUITY: MARKET}.get(kind, REAL_ESTATE if kind in PROPERTY_KINDS else BANK)
    assert send(courts, agencies, fitting(kind, agency))[0].kind is kind
    for blank in ("", "   "):
        assert violations_of(courts, agencies, fitting(kind, agency, blank)) == {("assistance_notice.target", "REQUIRED")}


def test_refuses_a_target_that_is_too_long(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
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
    assert send(courts, agencies, fitting(kind, agency))[0].agency_id == agency


@pytest.mark.parametrize(
    ("kind", "agency"),
    [(k, a) for k in DEPOSIT_KINDS for a in (REAL_ESTATE, TRAFFIC, MARKET, HOUSING_FUND)]
    + [(k, a) for k in PROPERTY_KINDS for a in (BANK, MARKET, HOUSING_FUND)]
    + [(NoticeKind.FREEZE_EQUITY, a) for a in (BANK, REAL_ESTATE, TRAFFIC, HOUSING_FUND)],
)
def test_refuses_an_agency_of_the_wrong_kind(
    courts: CourtCatalog, agencies: AgencyCatalog, kind: NoticeKind, agency: str
) -> None:
    assert violations_of(courts, agencies, fitting(kind, agency)) == {("assistance_notice.agency", "AGENCY_KIND_MISMATCH")}


def test_every_kind_has_an_agency_rule() -> None:
    assert set(ACCEPTING_AGENCY_KINDS) == set(NoticeKind)


@pytest.mark.parametrize(
    ("agency", "reason"),
    [("agencies/no-such-bank", "UNKNOWN_AGENCY"), ("bank-icbc", "RESOURCE_NAME"), ("courts/gd0112", "RESOURCE_NAME")],
)
def test_refuses_an_unknown_or_malformed_agency(courts: CourtCatalog, agencies: AgencyCatalog, agency: str, reason: str) -> None:
    assert violations_of(courts, agencies, replace(COMMAND, agency=agency)) == {("assistance_notice.agency", reason)}


@pytest.mark.parametrize(("parent", "reason"), [("courts/xx9999", "UNKNOWN_COURT"), ("gd0112", "RESOURCE_NAME")])
def test_refuses_an_unknown_or_malformed_court(courts: CourtCatalog, agencies: AgencyCatalog, parent: str, reason: str) -> None:
    assert violations_of(courts, agencies, replace(COMMAND, parent=parent)) == {("parent", reason)}


def test_refuses_a_malformed_case_name(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    command = replace(COMMAND, case="courts/gd0112/2020-enf-1")
    assert violations_of(courts, agencies, command) == {("assistance_notice.case", "RESOURCE_NAME")}


@pytest.mark.parametrize(("kind", "reason"), [("", "REQUIRED"), ("SEIZE_VEHICLE", "BAD_VALUE")])
def test_refuses_an_unspecified_or_unknown_kind(courts: CourtCatalog, agencies: AgencyCatalog, kind: str, reason: str) -> None:
    assert violations_of(courts, agencies, replace(COMMAND, kind=kind)) == {("assistance_notice.kind", reason)}


def test_reports_every_field_violation_at_once(courts: CourtCatalog, agencies: AgencyCatalog) -> None:
    command = CreateNotice(parent="courts/xx9999", case="x", agency="agencies/nobody", kind="", target="x" * 501)
    assert violations_of(courts, agencies, command) == {
        ("parent", "UNKNOWN_COURT"),
        ("assistance_notice.case", "RESOURCE_NAME"),
        ("assistance_notice.agency", "UNKNOWN_AGENCY"),
        ("assistance_notice.kind", "REQUIRED"),
        ("assistance_notice.target", "TOO_LONG"),
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
    assert {k.value for k in NoticeKind} == set(assistance_pb2.AssistanceNotice.Kind.keys()) - {"KIND_UNSPECIFIED"}
    assert {s.value for s in NoticeState} == set(assistance_pb2.AssistanceNotice.State.keys()) - {"STATE_UNSPECIFIED"}
