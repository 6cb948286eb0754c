"""Creating a delegation (delegation/matters.py): every refusal rule and the happy path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from rogatory.delegation.v1 import delegation_pb2

from delegation.details import Attachment, DepositDetails, Officer, OtherDetails, RegisteredPropertyDetails
from delegation.matters import (
    MAX_DESCRIPTION_LENGTH,
    CreateDelegation,
    DelegationState,
    DelegationSubmitted,
    MatterKind,
    create_delegation,
)
from registry.courts import CourtCatalog, SpecialKind
from registry.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from registry.jurisdictions import JurisdictionTable

NOW = datetime(2020, 4, 20, 9, 30, tzinfo=UTC)
DELEGATION_ID = "0171964c-5a00-7000-8000-000000000001"
CASE = "courts/gd0112/cases/2020-enf-1"  # （2020）粤0112执1号, 广州市黄埔区法院
COMMAND = CreateDelegation(
    parent="courts/gd0112",
    case=CASE,
    entrusted_court="courts/ha0122",  # 中牟县法院, Henan
    matter_kind="DEPOSITS",
    description="  冻结被执行人应收账款 7,000,000 元  ",
)


DETAILS = DepositDetails(
    bank_name="中国工商银行中牟支行",
    account_number="6222021001123456789",
    account_holder="河南某建材有限公司",
    measure="FREEZE",
    amount_fen=700_000_000,
)
ATTACHMENTS = tuple(
    Attachment(kind=kind, name=f"{kind}.pdf", size_bytes=1024, sha256=f"{i:064x}")
    for i, kind in enumerate(("DELEGATION_LETTER", "RULING", "ASSISTANCE_NOTICE"), start=1)
)
OFFICER = Officer(name="张三", phone="020-82212345")
FULL_COMMAND = replace(COMMAND, details=DETAILS, attachments=ATTACHMENTS, officer=OFFICER)


@pytest.fixture(scope="module")
def courts() -> CourtCatalog:
    return CourtCatalog.default()


def create(courts: CourtCatalog, command: CreateDelegation = COMMAND, case_court_id: str | None = "gd0112"):  # type: ignore[no-untyped-def]
    return create_delegation(command, courts, case_court_id, NOW, delegation_id=DELEGATION_ID)


def violations_of(courts: CourtCatalog, command: CreateDelegation) -> set[tuple[str, str]]:
    with pytest.raises(InvalidArgument) as raised:
        create(courts, command)
    return {(v.field, v.reason) for v in raised.value.violations}


def test_submits_the_delegation_and_records_its_event(courts: CourtCatalog) -> None:
    delegation, events = create(courts)
    assert delegation.id == DELEGATION_ID
    assert delegation.name == f"courts/gd0112/delegations/{DELEGATION_ID}"
    assert (delegation.requesting_court_id, delegation.entrusted_court_id) == ("gd0112", "ha0122")
    assert delegation.case_name == CASE
    assert delegation.matter_kind is MatterKind.DEPOSITS
    assert delegation.description == "冻结被执行人应收账款 7,000,000 元"
    assert delegation.state is DelegationState.SUBMITTED
    assert delegation.version == 1
    assert delegation.created_at == delegation.updated_at == NOW
    assert events == [DelegationSubmitted(delegation)]


def test_description_is_optional_and_may_be_exactly_the_maximum(courts: CourtCatalog) -> None:
    assert create(courts, replace(COMMAND, description=""))[0].description == ""
    longest = "x" * MAX_DESCRIPTION_LENGTH
    assert create(courts, replace(COMMAND, description=longest))[0].description == longest


@pytest.mark.parametrize(
    ("parent", "reason"),
    [("courts/xx9999", "UNKNOWN_COURT"), ("gd0112", "RESOURCE_NAME"), ("courts/", "RESOURCE_NAME"), ("", "RESOURCE_NAME")],
)
def test_refuses_an_unknown_or_malformed_requesting_court(courts: CourtCatalog, parent: str, reason: str) -> None:
    assert violations_of(courts, replace(COMMAND, parent=parent)) == {("parent", reason)}


@pytest.mark.parametrize("case", ["", "courts/gd0112", "courts/gd0112/cases/", "courts/gd0112/matters/2020-enf-1"])
def test_refuses_a_malformed_case_name(courts: CourtCatalog, case: str) -> None:
    assert violations_of(courts, replace(COMMAND, case=case)) == {("delegation.case", "RESOURCE_NAME")}


@pytest.mark.parametrize(("entrusted", "reason"), [("courts/ha9999", "UNKNOWN_COURT"), ("ha0122", "RESOURCE_NAME")])
def test_refuses_an_unknown_or_malformed_entrusted_court(courts: CourtCatalog, entrusted: str, reason: str) -> None:
    assert violations_of(courts, replace(COMMAND, entrusted_court=entrusted)) == {("delegation.entrusted_court", reason)}


def test_refuses_delegating_to_itself(courts: CourtCatalog) -> None:
    command = replace(COMMAND, entrusted_court="courts/gd0112")
    assert violations_of(courts, command) == {("delegation.entrusted_court", "SELF_DELEGATION")}


@pytest.mark.parametrize(("kind", "reason"), [("", "REQUIRED"), ("FREEZE", "BAD_VALUE"), ("7", "BAD_VALUE")])
def test_refuses_an_unspecified_or_unknown_matter_kind(courts: CourtCatalog, kind: str, reason: str) -> None:
    assert violations_of(courts, replace(COMMAND, matter_kind=kind)) == {("delegation.matter_kind", reason)}


def test_refuses_a_description_that_is_too_long(courts: CourtCatalog) -> None:
    command = replace(COMMAND, description="x" * (MAX_DESCRIPTION_LENGTH + 1))
    assert violations_of(courts, command) == {("delegation.description", "TOO_LONG")}


def test_reports_every_field_violation_at_once(courts: CourtCatalog) -> None:
    command = CreateDelegation(
        parent="courts/xx9999", case="nope", entrusted_court="courts/ha9999", matter_kind="", description="x" * 2001
    )
    assert violations_of(courts, command) == {
        ("parent", "UNKNOWN_COURT"),
        ("delegation.case", "RESOURCE_NAME"),
        ("delegation.entrusted_court", "UNKNOWN_COURT"),
        ("delegation.matter_kind", "REQUIRED"),
        ("delegation.description", "TOO_LONG"),
    }


def test_refuses_a_case_the_replica_has_not_seen(courts: CourtCatalog) -> None:
    with pytest.raises(FailedPrecondition) as raised:
        create(courts, case_court_id=None)
    assert raised.value.reason == "CASE_NOT_REGISTERED"
    assert raised.value.metadata["case"] == CASE


def test_refuses_another_courts_case(courts: CourtCatalog) -> None:
    command = replace(COMMAND, case="courts/zj0326/cases/2023-enf-1234")
    with pytest.raises(PermissionDenied) as raised:
        create(courts, command, case_court_id="zj0326")
    assert raised.value.reason == "NOT_CASE_OWNER"


def test_another_courts_unknown_case_is_refused_as_not_owned_so_existence_does_not_leak(courts: CourtCatalog) -> None:
    command = replace(COMMAND, case="courts/zj0326/cases/2023-enf-9999")
    with pytest.raises(PermissionDenied) as raised:
        create(courts, command, case_court_id=None)
    assert raised.value.reason == "NOT_CASE_OWNER"


def test_field_violations_come_before_case_checks(courts: CourtCatalog) -> None:
    with pytest.raises(InvalidArgument):
        create(courts, replace(COMMAND, matter_kind=""), case_court_id=None)


def test_enums_match_the_proto_names() -> None:
    kinds = set(delegation_pb2.Delegation.MatterKind.keys()) - {"MATTER_KIND_UNSPECIFIED"}
    states = set(delegation_pb2.Delegation.State.keys()) - {"STATE_UNSPECIFIED"}
    assert {k.value for k in MatterKind} == kinds
    assert {s.value for s in DelegationState} == states


# --- details, attachments and officer ----------------------------------------------------------------


def test_keeps_details_attachments_and_officer(courts: CourtCatalog) -> None:
    delegation, _ = create(courts, FULL_COMMAND)
    assert (delegation.details, delegation.attachments, delegation.requesting_officer) == (DETAILS, ATTACHMENTS, OFFICER)
    assert delegation.entrusted_officer is None and delegation.history == ()
    assert delegation.acknowledged_at is delegation.completed_at is None


def test_old_callers_without_details_attachments_or_officer_still_work(courts: CourtCatalog) -> None:
    delegation, _ = create(courts)
    assert (delegation.details, delegation.attachments, delegation.requesting_officer) == (None, (), None)


def test_refuses_details_of_another_kind(courts: CourtCatalog) -> None:
    command = replace(FULL_COMMAND, details=OtherDetails(description="x"))
    assert violations_of(courts, command) == {("delegation.details", "KIND_MISMATCH")}


def test_reports_detail_violations_under_delegation_details(courts: CourtCatalog) -> None:
    command = replace(FULL_COMMAND, details=replace(DETAILS, amount_fen=None, account_holder=""))
    assert violations_of(courts, command) == {
        ("delegation.details.amount_fen", "REQUIRED"),
        ("delegation.details.account_holder", "REQUIRED"),
    }


def test_details_are_not_judged_without_a_kind(courts: CourtCatalog) -> None:
    command = replace(FULL_COMMAND, matter_kind="", details=OtherDetails(description=""))
    assert violations_of(courts, command) == {("delegation.matter_kind", "REQUIRED")}


def test_names_every_missing_attachment(courts: CourtCatalog) -> None:
    with pytest.raises(InvalidArgument) as raised:
        create(courts, replace(FULL_COMMAND, attachments=ATTACHMENTS[:1]))
    missing = [v for v in raised.value.violations if v.reason == "MISSING_ATTACHMENT"]
    assert [v.field for v in missing] == ["delegation.attachments"] * 2
    assert ["ASSISTANCE_NOTICE" in missing[0].description, "RULING" in missing[1].description] == [True, True]


def test_an_empty_attachment_list_is_checked_against_the_required_ones(courts: CourtCatalog) -> None:
    with pytest.raises(InvalidArgument) as raised:
        create(courts, replace(FULL_COMMAND, attachments=()))
    assert len(raised.value.violations) == 3


def test_reports_a_bad_attachment_at_its_index(courts: CourtCatalog) -> None:
    bad = replace(ATTACHMENTS[2], size_bytes=0)
    command = replace(FULL_COMMAND, attachments=(*ATTACHMENTS[:2], bad))
    assert violations_of(courts, command) == {("delegation.attachments[2].size_bytes", "BAD_SIZE")}


def test_refuses_an_unreachable_officer(courts: CourtCatalog) -> None:
    command = replace(FULL_COMMAND, officer=Officer(name="张三", phone="82212345"))
    assert violations_of(courts, command) == {("delegation.officer.phone", "BAD_PHONE")}


def test_a_matter_is_routed_to_the_basic_court_of_the_property_location(courts: CourtCatalog) -> None:
    routed = replace(FULL_COMMAND, entrusted_court="", property_division_code="410122")
    delegation, _ = create(courts, routed)
    assert delegation.entrusted_court_id == "ha0122"  # 中牟县人民法院


@pytest.mark.parametrize(("code", "reason"), [("41012", "BAD_DIVISION_CODE"), ("419999", "UNROUTABLE")])
def test_an_unroutable_location_is_refused(courts: CourtCatalog, code: str, reason: str) -> None:
    routed = replace(FULL_COMMAND, entrusted_court="", property_division_code=code)
    with pytest.raises(InvalidArgument) as caught:
        create(courts, routed)
    assert {v.field: v.reason for v in caught.value.violations}["delegation.property_division_code"] == reason


SHIP = RegisteredPropertyDetails(property_kind="SHIP", measure="SEAL", owner="温州某航运公司", registration_number="070015000123")


def ship_seizure(division_code: str) -> CreateDelegation:
    return replace(
        FULL_COMMAND, entrusted_court="", property_division_code=division_code, matter_kind="REAL_ESTATE_OR_REGISTERED_MOVABLES",
        details=SHIP,
    )  # fmt: skip


def test_a_ships_seizure_goes_to_the_maritime_court_of_those_waters(courts: CourtCatalog) -> None:
    delegation, _ = create(courts, ship_seizure("330326"))  # 平阳县, Wenzhou's coast
    assert delegation.entrusted_court_id == "zj72"  # 宁波海事法院, not 平阳县法院
    delegation, _ = create(courts, ship_seizure("440112"))
    assert delegation.entrusted_court_id == "gd72"  # 广州海事法院


def test_a_vehicle_in_the_same_place_goes_to_the_basic_court(courts: CourtCatalog) -> None:
    vehicle = RegisteredPropertyDetails(property_kind="VEHICLE", measure="SEAL", owner="王五", plate="浙C·12345")
    command = replace(ship_seizure("330326"), details=vehicle)
    delegation, _ = create(courts, command)
    assert delegation.entrusted_court_id == "zj0326"


def test_a_ship_where_no_maritime_court_is_registered_is_refused(courts: CourtCatalog) -> None:
    with pytest.raises(InvalidArgument) as caught:
        create(courts, ship_seizure("410122"))  # Henan: no maritime court in the table
    (violation,) = [v for v in caught.value.violations if v.field == "delegation.property_division_code"]
    assert violation.reason == "UNROUTABLE" and "maritime" in violation.description


def test_the_special_jurisdictions_name_special_courts_of_their_kind(courts: CourtCatalog) -> None:
    table = JurisdictionTable.default()
    assert table.problems(courts) == []
    assert table.court_for(SpecialKind.MARITIME, "330100") == "zj72" and table.court_for(SpecialKind.INTERNET, "330100") is None
