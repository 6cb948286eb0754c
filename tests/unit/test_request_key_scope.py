"""The request_id scope of an AIP-134 Update request is the resource it names inside it."""

from __future__ import annotations

from google.protobuf.field_mask_pb2 import FieldMask
from rogatory.delegation.v1 import delegation_pb2 as dg

from services.plumbing.idempotency import key_of

METHOD = "/rogatory.delegation.v1.DelegationService/UpdateDelegation"


def _update(name: str) -> dg.UpdateDelegationRequest:
    return dg.UpdateDelegationRequest(
        delegation=dg.Delegation(name=name, description="更正说明"),
        update_mask=FieldMask(paths=["description"]),
        request_id="r-1",
    )


def test_the_same_request_id_on_another_delegation_is_another_request() -> None:
    first = key_of("courts/gd0112", METHOD, _update("courts/gd0112/delegations/a"))
    other = key_of("courts/gd0112", METHOD, _update("courts/gd0112/delegations/b"))
    assert first is not None and other is not None and first.key != other.key


def test_a_retry_of_an_update_has_the_same_key() -> None:
    assert key_of("courts/gd0112", METHOD, _update("courts/gd0112/delegations/a")) == key_of(
        "courts/gd0112", METHOD, _update("courts/gd0112/delegations/a")
    )
