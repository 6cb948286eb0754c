"""Delegation protobuf ↔ domain translation (services/delegation/messages.py); no I/O."""

from __future__ import annotations

from dataclasses import fields, replace

import pytest
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.details import DETAILS_TYPES, ControlMeasureDetails, MatterDetails, MatterKind
from delegation.matters import ReturnReason, WithdrawReason
from registry.errors import FieldViolation, InvalidArgument
from services.delegation import messages as m
from tests.integration.test_delegation_lifecycle_store import ALL_DETAILS, create_command, full_delegation


@pytest.mark.parametrize("kind", list(MatterKind))
def test_each_details_message_has_exactly_the_domain_fields(kind: MatterKind) -> None:
    message = getattr(pb.Delegation(), m.DETAILS_FIELDS[kind])
    assert {f.name for f in message.DESCRIPTOR.fields} == {f.name for f in fields(DETAILS_TYPES[kind])}


@pytest.mark.parametrize("details", ALL_DETAILS, ids=lambda d: type(d).__name__)
def test_details_survive_the_wire_with_id_numbers_masked(details: MatterDetails) -> None:
    message = m.delegation_to_proto(full_delegation(details))
    assert message.WhichOneof("details") == m.DETAILS_FIELDS[details.matter_kind]
    expected = details
    if isinstance(details, ControlMeasureDetails):
        expected = replace(details, id_number="110105********002X")
        assert "11010519491231002X" not in str(message)
    assert m.details_from_proto(message) == expected


def test_the_whole_delegation_reaches_the_message() -> None:
    delegation = full_delegation(ALL_DETAILS[0])
    message = m.delegation_to_proto(delegation, urge_count=3)
    assert (message.etag, message.urge_count, message.requesting_court) == ('W/"7"', 3, "courts/gd0112")
    assert message.state == pb.Delegation.WITHDRAWN and message.withdraw_reason == pb.SETTLED
    assert message.return_reason == pb.DUPLICATE and message.completion.outcome == pb.Completion.PARTLY_EXECUTED
    assert message.supplement_request.reason == pb.SupplementRequest.MISSING_RULING
    assert message.entrusted_officer.display_name == "李四" and message.attachments[0].kind == pb.Attachment.ASSISTANCE_RECEIPT
    assert message.HasField("withdraw_time") and not message.HasField("escalate_time")
    other = replace(delegation, return_reason=ReturnReason.OTHER, withdraw_reason=WithdrawReason.OTHER)
    assert m.delegation_to_proto(other).return_reason == pb.RETURN_REASON_OTHER
    assert m.delegation_to_proto(other).withdraw_reason == pb.WITHDRAW_REASON_OTHER


def test_a_create_request_becomes_the_domain_command() -> None:
    expected = create_command()
    delegation = full_delegation(expected.details)  # type: ignore[arg-type]
    message = m.delegation_to_proto(replace(delegation, attachments=expected.attachments, requesting_officer=expected.officer))
    request = pb.CreateDelegationRequest(parent=expected.parent, delegation=message)
    request.delegation.description = expected.description
    assert m.create_command(request) == expected


def test_requests_become_commands_with_their_etag() -> None:
    assert m.start_command(pb.StartDelegationRequest(etag='W/"4"')).expected_version == 4
    assert m.start_command(pb.StartDelegationRequest()).expected_version is None
    returned = m.return_command(pb.ReturnDelegationRequest(reason=pb.RETURN_REASON_OTHER, note="x", etag='"2"'))
    assert (returned.reason, returned.expected_version) == ("OTHER", 2)
    assert m.withdraw_command(pb.WithdrawDelegationRequest(reason=pb.WITHDRAW_REASON_OTHER)).reason == "OTHER"
    completion = pb.Completion(outcome=pb.Completion.EXECUTED, amount_fen=0)
    assert m.complete_command(pb.CompleteDelegationRequest(completion=completion)).amount_fen is None
    for bad in ("7", "W/7", 'W/"x"', 'W/"1"x'):
        with pytest.raises(InvalidArgument) as raised:
            m.parse_etag(bad)
        assert raised.value.violations[0].field == "etag"


def test_a_malformed_share_percent_names_its_field() -> None:
    message = pb.Delegation(equity=pb.EquityDetails(share_percent="12,5"))
    with pytest.raises(InvalidArgument) as raised:
        m.details_from_proto(message)
    assert raised.value.violations[0].field == "delegation.equity.share_percent"


def test_domain_paths_are_renamed_to_request_paths() -> None:
    request = pb.CreateDelegationRequest(delegation=pb.Delegation(deposits=pb.DepositDetails()))
    violations = [
        FieldViolation("delegation.details.amount_fen", "x", "REQUIRED"),
        FieldViolation("delegation.officer.name", "x", "REQUIRED"),
        FieldViolation("delegation.attachments[0].sha256", "x", "BAD_SHA256"),
    ]
    with pytest.raises(InvalidArgument) as raised, m.proto_paths(m.create_paths(request)):
        raise InvalidArgument.of(violations)
    assert [v.field for v in raised.value.violations] == [
        "delegation.deposits.amount_fen",
        "delegation.requesting_officer.display_name",
        "delegation.attachments[0].sha256",
    ]
    with pytest.raises(InvalidArgument) as raised, m.proto_paths(m.COMPLETION_PATHS):
        raise InvalidArgument.of([FieldViolation("outcome", "x"), FieldViolation("note", "y")])
    assert [v.field for v in raised.value.violations] == ["completion.outcome", "completion.note"]
