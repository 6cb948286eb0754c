"""UpdateDelegation (AIP-134) over gRPC: the requesting court corrects its officer and the
description with an update mask; stale etags, other courts, immutable paths and ended matters
are refused with their reasons; the `updated` event carries the delegation and the mask; a
retry with the same request_id gets the same answer and no second event."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from google.protobuf.field_mask_pb2 import FieldMask
from nats.aio.client import Client as NATS
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.events.v1 import events_pb2

from rogatory_client import Aborted, AsyncClient, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.plumbing.events import ReceivedEvent
from services.plumbing.subscriber import read_events
from services.tools.demo import freeze_request
from services.tools.launcher import Stack
from tests.e2e.test_delegation_assistance_e2e import register_case
from tests.e2e.test_delegation_lifecycle_e2e import ENTRUSTED, REQUESTING, THIRD_COURT, rpc_error

NEW_OFFICER = dg.Officer(display_name="王法官", phone="020-82112345")


def update(name: str, paths: list[str], etag: str = "", request_id: str = "", **fields: object) -> dg.UpdateDelegationRequest:
    delegation = dg.Delegation(name=name, etag=etag, **fields)  # type: ignore[arg-type]
    return dg.UpdateDelegationRequest(delegation=delegation, update_mask=FieldMask(paths=paths), request_id=request_id)


async def updated_events(stack_js: object, name: str, since: datetime, expected: int) -> list[ReceivedEvent]:
    events: list[ReceivedEvent] = []
    for _ in range(20):
        received = await read_events(stack_js, "ROGATORY", "rogatory.v1.delegation.gd0112.*.updated", since=since, timeout=2.0)  # type: ignore[arg-type]
        events = [e for e in received if e.parse(events_pb2.DelegationUpdated).delegation.name == name]  # type: ignore[attr-defined]
        if len(events) >= expected:
            break
        await asyncio.sleep(0.1)  # the relay publishes after commit: wait for the outcome, bounded
    return events


async def test_requesting_court_updates_officer_and_description(
    stack: Stack, rogatory: AsyncClient, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    stub = rogatory.delegation
    case_name = await register_case(stack, 680_000 + next(sequence_numbers))
    created = await stub.CreateDelegation(freeze_request(case_name), metadata=REQUESTING)
    name = created.name

    request_id = str(uuid.uuid4())
    request = update(
        name,
        ["requesting_officer", "description"],
        created.etag,
        request_id,
        requesting_officer=NEW_OFFICER,
        description="更正：冻结应收账款",
    )
    updated = await stub.UpdateDelegation(request, metadata=REQUESTING)
    assert updated.requesting_officer == NEW_OFFICER and updated.description == "更正：冻结应收账款"
    assert updated.etag != created.etag and updated.state == dg.Delegation.SUBMITTED
    assert (await stub.UpdateDelegation(request, metadata=REQUESTING)) == updated  # a retry: the first answer

    stale = await rpc_error(
        stub.UpdateDelegation(update(name, ["description"], created.etag, description="x"), metadata=REQUESTING)
    )
    assert isinstance(stale, Aborted) and stale.reason == "VERSION_MISMATCH"
    wrong_court = await rpc_error(stub.UpdateDelegation(update(name, ["description"], description="x"), metadata=ENTRUSTED))
    assert isinstance(wrong_court, PermissionDenied) and wrong_court.reason == "NOT_REQUESTING_COURT"
    hidden = await rpc_error(stub.UpdateDelegation(update(name, ["description"], description="x"), metadata=THIRD_COURT))
    assert isinstance(hidden, NotFound)
    bad_path = await rpc_error(
        stub.UpdateDelegation(update(name, ["entrusted_court"], entrusted_court="courts/gd0112"), metadata=REQUESTING)
    )
    assert isinstance(bad_path, InvalidArgument) and "FIELD_NOT_MUTABLE" in str(bad_path)
    no_mask = await rpc_error(stub.UpdateDelegation(update(name, [], description="x"), metadata=REQUESTING))
    assert isinstance(no_mask, InvalidArgument)
    phone_only = await stub.UpdateDelegation(
        update(name, ["requesting_officer.phone"], requesting_officer=dg.Officer(phone="020-82119999")), metadata=REQUESTING
    )
    assert phone_only.requesting_officer == dg.Officer(display_name="王法官", phone="020-82119999")

    await stub.WithdrawDelegation(dg.WithdrawDelegationRequest(name=name, reason=dg.SETTLED), metadata=REQUESTING)
    ended = await rpc_error(stub.UpdateDelegation(update(name, ["description"], description="x"), metadata=REQUESTING))
    assert isinstance(ended, FailedPrecondition) and ended.reason == "INVALID_TRANSITION"

    events = await updated_events(subscriber.jetstream(), name, since, 2)
    assert len(events) == 2  # the retry and the refusals emitted nothing
    first = events[0].parse(events_pb2.DelegationUpdated)
    assert list(first.update_mask.paths) == ["requesting_officer", "description"]  # type: ignore[attr-defined]
    assert first.delegation == updated  # type: ignore[attr-defined]
    assert events[0].event_type == "rogatory.delegation.updated.v1"
