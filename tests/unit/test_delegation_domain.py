"""Creating a delegation (delegation/matters.py): every refusal rule and the happy path."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from rogatory.delegation.v1 import delegation_pb2

from delegation.matters import (
    MAX_DESCRIPTION_LENGTH,
    CreateDelegation,
    DelegationState,
    DelegationSubmitted,
    MatterKind,
    create_delegation,
)
from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, InvalidArgument, PermissionDenied

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
