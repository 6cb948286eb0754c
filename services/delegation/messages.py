"""Translation between delegation protobuf messages and domain objects."""

from __future__ import annotations

from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.matters import CreateDelegation, Delegation
from services.plumbing.times import timestamp
from services.registry.messages import enum_name


def delegation_to_proto(delegation: Delegation) -> pb.Delegation:
    return pb.Delegation(
        name=delegation.name,
        case=delegation.case_name,
        entrusted_court=f"courts/{delegation.entrusted_court_id}",
        matter_kind=pb.Delegation.MatterKind.Value(str(delegation.matter_kind)),
        description=delegation.description,
        state=pb.Delegation.State.Value(str(delegation.state)),
        create_time=timestamp(delegation.created_at),
        update_time=timestamp(delegation.updated_at),
        etag=f'W/"{delegation.version}"',
    )


def create_command(request: pb.CreateDelegationRequest) -> CreateDelegation:
    delegation = request.delegation
    return CreateDelegation(
        parent=request.parent,
        case=delegation.case,
        entrusted_court=delegation.entrusted_court,
        matter_kind=enum_name(pb.Delegation.MatterKind, delegation.matter_kind),
        description=delegation.description,
    )
