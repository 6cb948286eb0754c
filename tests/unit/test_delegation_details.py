"""Matter details, attachments and officers (delegation/details.py): each kind's rules."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from delegation.details import (
    DETAILS_TYPES,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    REQUIRED_ATTACHMENTS,
    Attachment,
    AttachmentKind,
    ControlMeasure,
    ControlMeasureDetails,
    DepositDetails,
    DepositMeasure,
    EquityDetails,
    MatterDetails,
    MatterKind,
    Officer,
    OtherDetails,
    PropertyCategory,
    PropertyInvestigationDetails,
    PropertyKind,
    RegisteredPropertyDetails,
    ServiceOfDocumentsDetails,
    check_attachments,
    check_details,
    check_required_attachments,
)
from registry.errors import Violations

VALID_USCC = "91110000600037341L"
VALID_ID_NUMBER = "11010519491231002X"

DEPOSIT = DepositDetails(
    bank_name="中国工商银行中牟支行",
    account_number="6222 0210 0112 3456 789",
    account_holder="河南某建材有限公司",
    measure="FREEZE",
    amount_fen=700_000_000,
)
EQUITY = EquityDetails(
    company_name="郑州某科技有限公司",
    credit_code=VALID_USCC,
    shareholder="王五",
    measure="FREEZE",
    share_percent=Decimal("35"),
)
REAL_ESTATE = RegisteredPropertyDetails(
    property_kind="REAL_ESTATE",
    measure="SEAL",
    owner="王五",
    location="中牟县青年路 8 号 3 幢 201 室",
    certificate_number="豫(2019)中牟县不动产权第0001234号",
    unit_number="410122001001GB00001F00030201",
)
VEHICLE = RegisteredPropertyDetails(property_kind="VEHICLE", measure="SEAL", owner="王五", plate="浙C·12345")
PROPERTY_INVESTIGATION = PropertyInvestigationDetails(scope=("DEPOSITS", "VEHICLES"))
SERVICE = ServiceOfDocumentsDetails(documents=("执行通知书", "报告财产令"), addressee="王五", address="中牟县青年路 8 号")
CONTROL = ControlMeasureDetails(person="王五", id_number=VALID_ID_NUMBER.lower(), location="中牟县某宾馆", measure="DETENTION")
OTHER = OtherDetails(description="协助调取银行流水")

VALID_DETAILS: dict[MatterKind, MatterDetails] = {
    MatterKind.DEPOSITS: DEPOSIT,
    MatterKind.EQUITY: EQUITY,
    MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES: REAL_ESTATE,
    MatterKind.PROPERTY_INVESTIGATION: PROPERTY_INVESTIGATION,
    MatterKind.SERVICE_OF_DOCUMENTS: SERVICE,
    MatterKind.CONTROL_MEASURES: CONTROL,
    MatterKind.OTHER: OTHER,
}


def attachment(kind: str = "RULING", **changes: object) -> Attachment:
    base = Attachment(kind=kind, name="执行裁定书.pdf", size_bytes=120_000, sha256="ab" * 32)
    return replace(base, **changes)  # type: ignore[arg-type]


def violations_of(details: MatterDetails | Attachment | Officer) -> set[tuple[str, str]]:
    violations = Violations()
    details.validate("d", violations)
    return {(v.field, v.reason) for v in violations.items}


# --- every kind ---------------------------------------------------------------------------------------


def test_there_is_one_details_type_per_kind() -> None:
    assert set(DETAILS_TYPES) == set(MatterKind)
    assert all(cls.matter_kind is kind for kind, cls in DETAILS_TYPES.items())


@pytest.mark.parametrize("kind", list(MatterKind))
def test_valid_details_of_each_kind_pass(kind: MatterKind) -> None:
    violations = Violations()
    check_details(kind, VALID_DETAILS[kind], "d", violations)
    assert violations.items == []


def test_details_of_another_kind_are_reported_alone() -> None:
    violations = Violations()
    check_details(MatterKind.EQUITY, replace(DEPOSIT, bank_name=""), "delegation.details", violations)
    assert [(v.field, v.reason) for v in violations.items] == [("delegation.details", "KIND_MISMATCH")]
    assert "EquityDetails" in violations.items[0].description


def test_construction_normalises_text_codes_and_enum_names() -> None:
    assert DEPOSIT.account_number == "6222021001123456789"
    assert DEPOSIT.measure is DepositMeasure.FREEZE
    assert VEHICLE.plate == "浙C12345" and VEHICLE.property_kind is PropertyKind.VEHICLE
    assert PROPERTY_INVESTIGATION.scope == (PropertyCategory.DEPOSITS, PropertyCategory.VEHICLES)
    assert CONTROL.id_number == VALID_ID_NUMBER and CONTROL.measure is ControlMeasure.DETENTION
    assert DepositDetails("  银行 ", "1234567", " 张三 ", "UNFREEZE").bank_name == "银行"


def test_unknown_enum_names_stay_as_given_and_are_reported() -> None:
    details = replace(DEPOSIT, measure="THAW")
    assert details.measure == "THAW"
    assert violations_of(details) == {("d.measure", "BAD_VALUE")}
    assert violations_of(replace(DEPOSIT, measure="")) == {("d.measure", "REQUIRED")}


# --- deposits -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("measure", ["FREEZE", "DEDUCT"])
def test_freezing_or_deducting_needs_a_positive_amount(measure: str) -> None:
    assert violations_of(replace(DEPOSIT, measure=measure, amount_fen=None)) == {("d.amount_fen", "REQUIRED")}
    assert violations_of(replace(DEPOSIT, measure=measure, amount_fen=0)) == {("d.amount_fen", "NOT_POSITIVE")}
    assert violations_of(replace(DEPOSIT, measure=measure, amount_fen=10**17)) == {("d.amount_fen", "TOO_LARGE")}


@pytest.mark.parametrize("measure", ["RENEW_FREEZE", "UNFREEZE"])
def test_renewing_or_unfreezing_may_omit_the_amount_but_not_state_a_bad_one(measure: str) -> None:
    assert violations_of(replace(DEPOSIT, measure=measure, amount_fen=None)) == set()
    assert violations_of(replace(DEPOSIT, measure=measure, amount_fen=-1)) == {("d.amount_fen", "NOT_POSITIVE")}


def test_deposit_needs_bank_account_and_named_holder() -> None:
    details = DepositDetails(bank_name="", account_number="", account_holder=" ", measure="UNFREEZE")
    assert violations_of(details) == {
        ("d.bank_name", "REQUIRED"),
        ("d.account_number", "REQUIRED"),
        ("d.account_holder", "REQUIRED"),
    }


@pytest.mark.parametrize("number", ["12345", "6222*0210", "x" * 41, "账号123456"])
def test_deposit_refuses_a_malformed_account_number(number: str) -> None:
    assert violations_of(replace(DEPOSIT, account_number=number)) == {("d.account_number", "BAD_ACCOUNT_NUMBER")}


# --- equity ---------------------------------------------------------------------------------------------


def test_equity_needs_a_valid_credit_code() -> None:
    assert violations_of(replace(EQUITY, credit_code="")) == {("d.credit_code", "REQUIRED")}
    assert violations_of(replace(EQUITY, credit_code="91110000600037341X")) == {("d.credit_code", "BAD_CREDIT_CODE")}
    assert violations_of(replace(EQUITY, credit_code=VALID_USCC.lower())) == set()


def test_equity_needs_the_share_as_amount_or_percentage() -> None:
    assert violations_of(replace(EQUITY, share_percent=None)) == {("d.share_amount_fen", "REQUIRED")}
    assert violations_of(replace(EQUITY, share_percent=None, share_amount_fen=5_000_000)) == set()
    assert violations_of(replace(EQUITY, share_percent=Decimal(100))) == set()
    assert violations_of(replace(EQUITY, share_percent=Decimal(0))) == {("d.share_percent", "BAD_PERCENT")}
    assert violations_of(replace(EQUITY, share_percent=Decimal("100.01"))) == {("d.share_percent", "BAD_PERCENT")}
    assert violations_of(replace(EQUITY, share_amount_fen=0)) == {("d.share_amount_fen", "NOT_POSITIVE")}


def test_equity_needs_company_shareholder_and_measure() -> None:
    details = replace(EQUITY, company_name="", shareholder="", measure="DEDUCT")
    assert violations_of(details) == {("d.company_name", "REQUIRED"), ("d.shareholder", "REQUIRED"), ("d.measure", "BAD_VALUE")}


# --- real estate and registered movables ----------------------------------------------------------------


def test_real_estate_needs_location_and_certificate_number() -> None:
    details = replace(REAL_ESTATE, location="", certificate_number="", unit_number="")
    assert violations_of(details) == {("d.location", "REQUIRED"), ("d.certificate_number", "REQUIRED")}


@pytest.mark.parametrize("unit", ["41012200100GB00001F00030201", "410122001001XX00001F00030201", "410122001001GB00001A00030201"])
def test_real_estate_refuses_a_malformed_unit_number(unit: str) -> None:
    assert violations_of(replace(REAL_ESTATE, unit_number=unit)) == {("d.unit_number", "BAD_UNIT_NUMBER")}


def test_identifiers_of_another_property_kind_are_refused() -> None:
    assert violations_of(replace(REAL_ESTATE, plate="浙C12345")) == {("d.plate", "NOT_APPLICABLE")}
    assert violations_of(replace(VEHICLE, location="某地", registration_number="B-1234")) == {
        ("d.location", "NOT_APPLICABLE"),
        ("d.registration_number", "NOT_APPLICABLE"),
    }


@pytest.mark.parametrize(
    "plate",
    [
        "浙C12345",
        "浙C·12345",
        "浙c 1234x",
        "粤BD12345",
        "粤BFA1234",
        "粤BA12345",
        "粤B12345D",
        "京A1234学",
        "蒙A12345",
        "贵A12345",
    ],
)
def test_vehicle_accepts_ordinary_and_new_energy_plates(plate: str) -> None:
    assert violations_of(replace(VEHICLE, plate=plate)) == set()


@pytest.mark.parametrize(
    "plate",
    ["内A12345", "黔A12345", "浙I12345", "浙C1234", "浙C123456", "浙C12O45", "粤BL12345", "粤B1234D5", "ZJC12345"],
)
def test_vehicle_refuses_malformed_plates(plate: str) -> None:
    assert violations_of(replace(VEHICLE, plate=plate)) == {("d.plate", "BAD_PLATE")}


def test_vehicle_needs_plate_or_vin_and_a_vin_is_17_characters_without_i_o_q() -> None:
    assert violations_of(replace(VEHICLE, plate="")) == {("d.plate", "REQUIRED")}
    assert violations_of(replace(VEHICLE, plate="", vin="lsvau2180n2183294")) == set()
    for bad in ("LSVAU2180N218329", "LSVAU2180N21832945", "LSVAU2180O2183294", "LSVAU2180Q2183294", "ISVAU2180N2183294"):
        assert violations_of(replace(VEHICLE, vin=bad)) == {("d.vin", "BAD_VIN")}, bad


def test_the_north_american_vin_check_digit_is_not_required() -> None:
    # Position 9 is "X" or a digit in North America; Chinese-market VINs may have any character.
    assert violations_of(replace(VEHICLE, vin="LSVAU218AN2183294")) == set()


def test_ships_and_aircraft_need_a_registration_number() -> None:
    ship = RegisteredPropertyDetails(property_kind="SHIP", measure="SEAL", owner="宁波某航运公司")
    assert violations_of(ship) == {("d.registration_number", "REQUIRED")}
    assert violations_of(replace(ship, registration_number="070015000123")) == set()
    aircraft = replace(ship, property_kind="AIRCRAFT", registration_number="b-30aa")
    assert aircraft.registration_number == "B-30AA"
    assert violations_of(aircraft) == set()
    assert violations_of(replace(aircraft, registration_number="N12345")) == {
        ("d.registration_number", "BAD_REGISTRATION_NUMBER")
    }


def test_registered_property_needs_kind_measure_and_owner() -> None:
    details = RegisteredPropertyDetails(property_kind="", measure="FREEZE", owner="")
    assert violations_of(details) == {("d.property_kind", "REQUIRED"), ("d.measure", "BAD_VALUE"), ("d.owner", "REQUIRED")}


# --- property investigation, service, control measures, other ---------------------------------------------


def test_investigation_needs_distinct_known_categories() -> None:
    assert violations_of(PropertyInvestigationDetails(scope=())) == {("d.scope", "REQUIRED")}
    assert violations_of(PropertyInvestigationDetails(scope=("DEPOSITS", "GOLD"))) == {("d.scope[1]", "BAD_VALUE")}
    assert violations_of(PropertyInvestigationDetails(scope=("DEPOSITS", "DEPOSITS"))) == {("d.scope", "DUPLICATE")}


def test_investigating_other_property_must_say_what_in_the_note() -> None:
    assert violations_of(PropertyInvestigationDetails(scope=("OTHER",))) == {("d.note", "REQUIRED")}
    assert violations_of(PropertyInvestigationDetails(scope=("OTHER",), note="名下字画收藏")) == set()


def test_service_needs_documents_addressee_and_address() -> None:
    details = ServiceOfDocumentsDetails(documents=(), addressee="", address="")
    assert violations_of(details) == {("d.documents", "REQUIRED"), ("d.addressee", "REQUIRED"), ("d.address", "REQUIRED")}
    assert violations_of(replace(SERVICE, documents=("执行通知书", " "))) == {("d.documents[1]", "REQUIRED")}
    assert violations_of(replace(SERVICE, documents=("x",) * 51)) == {("d.documents", "TOO_MANY")}


def test_service_phone_is_optional_but_checked() -> None:
    assert violations_of(replace(SERVICE, phone="138 1234 5678")) == set()
    assert violations_of(replace(SERVICE, phone="12345")) == {("d.phone", "BAD_PHONE")}


def test_control_measures_need_person_valid_id_number_location_and_measure() -> None:
    details = ControlMeasureDetails(person="", id_number="", location="", measure="")
    assert violations_of(details) == {
        ("d.person", "REQUIRED"),
        ("d.id_number", "REQUIRED"),
        ("d.location", "REQUIRED"),
        ("d.measure", "REQUIRED"),
    }
    assert violations_of(replace(CONTROL, id_number="110105194912310021")) == {("d.id_number", "BAD_ID_NUMBER")}


def test_control_measures_keep_the_full_id_number_but_show_it_masked() -> None:
    assert CONTROL.id_number == VALID_ID_NUMBER
    assert CONTROL.masked_id_number == "110105********002X"
    assert VALID_ID_NUMBER not in repr(CONTROL) and VALID_ID_NUMBER.lower() not in repr(CONTROL)


def test_other_matters_need_a_description() -> None:
    assert violations_of(OtherDetails(description="  ")) == {("d.description", "REQUIRED")}
    assert violations_of(OtherDetails(description="x" * 2001)) == {("d.description", "TOO_LONG")}


# --- attachments ---------------------------------------------------------------------------------------


def test_a_valid_attachment_is_normalised() -> None:
    item = attachment(name=" 裁定书.pdf ", sha256="AB" * 32)
    assert (item.kind, item.name, item.sha256) == (AttachmentKind.RULING, "裁定书.pdf", "ab" * 32)
    assert violations_of(item) == set()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"kind": ""}, {("d.kind", "REQUIRED")}),
        ({"kind": "PHOTO"}, {("d.kind", "BAD_VALUE")}),
        ({"name": ""}, {("d.name", "REQUIRED")}),
        ({"name": "../etc/passwd"}, {("d.name", "BAD_FILE_NAME")}),
        ({"name": "a\\b.pdf"}, {("d.name", "BAD_FILE_NAME")}),
        ({"name": "x" * 256}, {("d.name", "TOO_LONG")}),
        ({"size_bytes": 0}, {("d.size_bytes", "BAD_SIZE")}),
        ({"size_bytes": MAX_ATTACHMENT_BYTES + 1}, {("d.size_bytes", "BAD_SIZE")}),
        ({"sha256": "ab" * 31}, {("d.sha256", "BAD_SHA256")}),
        ({"sha256": "zz" * 32}, {("d.sha256", "BAD_SHA256")}),
    ],
)
def test_attachment_rules(changes: dict[str, object], expected: set[tuple[str, str]]) -> None:
    assert violations_of(attachment(**changes)) == expected


def test_attachment_sizes_from_one_byte_to_50_mib_are_accepted() -> None:
    assert MAX_ATTACHMENT_BYTES == 50 * 1024 * 1024
    assert violations_of(attachment(size_bytes=1)) == set()
    assert violations_of(attachment(size_bytes=MAX_ATTACHMENT_BYTES)) == set()


def test_at_most_50_attachments_counting_those_already_attached() -> None:
    violations = Violations()
    check_attachments((attachment(),) * MAX_ATTACHMENTS, "a", violations)
    assert violations.items == []
    check_attachments((attachment(),) * (MAX_ATTACHMENTS + 1), "a", violations)
    check_attachments((attachment(),) * 2, "b", violations, already=MAX_ATTACHMENTS - 1)
    assert [(v.field, v.reason) for v in violations.items] == [("a", "TOO_MANY"), ("b", "TOO_MANY")]


def test_each_attachment_is_checked_at_its_index() -> None:
    violations = Violations()
    check_attachments((attachment(), attachment(sha256="")), "delegation.attachments", violations)
    assert [(v.field, v.reason) for v in violations.items] == [("delegation.attachments[1].sha256", "BAD_SHA256")]


def test_every_kind_requires_a_delegation_letter() -> None:
    assert set(REQUIRED_ATTACHMENTS) == set(MatterKind)
    assert all(AttachmentKind.DELEGATION_LETTER in required for required in REQUIRED_ATTACHMENTS.values())
    assert AttachmentKind.DOCUMENT_TO_SERVE in REQUIRED_ATTACHMENTS[MatterKind.SERVICE_OF_DOCUMENTS]
    assert AttachmentKind.ASSISTANCE_NOTICE in REQUIRED_ATTACHMENTS[MatterKind.DEPOSITS]


@pytest.mark.parametrize("kind", list(MatterKind))
def test_required_attachments_name_each_missing_kind(kind: MatterKind) -> None:
    required = REQUIRED_ATTACHMENTS[kind]
    complete = tuple(attachment(k) for k in sorted(required))
    violations = Violations()
    check_required_attachments(required, complete, "a", violations, why=f"for {kind}")
    assert violations.items == []
    for missing in required:
        violations = Violations()
        check_required_attachments(required, tuple(a for a in complete if a.kind != missing), "a", violations, why="")
        assert [(v.field, v.reason) for v in violations.items] == [("a", "MISSING_ATTACHMENT")]
        assert missing in violations.items[0].description


def test_required_attachments_all_missing_are_reported_at_once() -> None:
    violations = Violations()
    check_required_attachments(REQUIRED_ATTACHMENTS[MatterKind.DEPOSITS], (attachment("OTHER"),), "a", violations, why="")
    assert len(violations.items) == 3


# --- officer --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("phone", ["13812345678", "+86 138 1234 5678", "0577-63612345", "057763612345", "010-12345678-123"])
def test_officer_phone_may_be_mobile_or_landline(phone: str) -> None:
    assert violations_of(Officer(name="李四", phone=phone)) == set()


@pytest.mark.parametrize("phone", ["12812345678", "1381234567", "63612345", "0577-123", "phone"])
def test_officer_refuses_a_malformed_phone(phone: str) -> None:
    assert violations_of(Officer(name="李四", phone=phone)) == {("d.phone", "BAD_PHONE")}


def test_officer_needs_name_and_phone() -> None:
    assert violations_of(Officer(name=" ", phone="")) == {("d.name", "REQUIRED"), ("d.phone", "REQUIRED")}
    assert violations_of(Officer(name="x" * 51, phone="13812345678")) == {("d.name", "TOO_LONG")}
