"""Seed scenario 4 over gRPC + NATS: a case, a delegation to Henan and a bank notice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from nats.aio.client import Client as NATS
from rogatory.assistance.v1 import assistance_pb2 as asst
from rogatory.assistance.v1 import assistance_pb2_grpc
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.events.v1 import events_pb2
from rogatory.registry.v1 import registry_pb2_grpc

from services.demo import delegate_freeze, freeze_request, query_deposits, until_case_replicated
from services.launcher import Stack
from services.plumbing.auth import dev_credentials
from services.plumbing.subscriber import read_events
from tests.e2e.test_registry_e2e import create_request, details


async def register_case(stack: Stack, number: int) -> str:
    async with grpc.aio.insecure_channel(stack.address("registry")) as channel:
        case = await registry_pb2_grpc.RegistryServiceStub(channel).CreateCase(create_request(number, "gd0112", "粤0112"))
    return case.name


async def test_delegation_reaches_both_courts_and_no_other(
    stack: Stack, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel:
        created = await until_case_replicated(lambda: delegate_freeze(channel, case_name))
        fetched = await delegation_pb2_grpc.DelegationServiceStub(channel).GetDelegation(
            dg.GetDelegationRequest(name=created.name), metadata=dev_credentials("court", "gd0112")
        )
    assert fetched == created and created.state == dg.Delegation.SUBMITTED

    js = subscriber.jetstream()
    received = await read_events(js, "ROGATORY", "rogatory.v1.delegation.*.ha0122.>", since=since, until_count=1)
    sent = await read_events(js, "ROGATORY", "rogatory.v1.delegation.gd0112.*.>", since=since, until_count=1)
    for events in (received, sent):
        assert created.name in {e.parse(events_pb2.DelegationSubmitted).delegation.name for e in events}
    bystander = await read_events(js, "ROGATORY", "rogatory.v1.delegation.*.zj0326.>", since=since, timeout=1.0)
    assert created.name not in {e.parse(events_pb2.DelegationSubmitted).delegation.name for e in bystander}


async def test_a_court_cannot_delegate_another_courts_case(stack: Stack, sequence_numbers: Iterator[int]) -> None:
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel:
        request = freeze_request(case_name)  # a complete request, only from the wrong court
        request.parent = "courts/zj0326"
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await delegation_pb2_grpc.DelegationServiceStub(channel).CreateDelegation(
                request, metadata=dev_credentials("court", "zj0326")
            )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(caught.value)[0].reason == "NOT_CASE_OWNER"


async def test_notice_reaches_the_bank_it_addresses(stack: Stack, subscriber: NATS, sequence_numbers: Iterator[int]) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    async with grpc.aio.insecure_channel(stack.address("assistance")) as channel:
        notice = await until_case_replicated(lambda: query_deposits(channel, case_name))
        listed = await assistance_pb2_grpc.AssistanceServiceStub(channel).ListAssistanceNotices(
            asst.ListAssistanceNoticesRequest(parent="courts/gd0112", filter='agency = "agencies/bank-icbc"', page_size=1000)
        )
    assert notice.name in {n.name for n in listed.assistance_notices}
    js = subscriber.jetstream()
    to_bank = await read_events(js, "ROGATORY", "rogatory.v1.notice.*.bank-icbc.>", since=since, until_count=1)
    assert notice.name in {e.parse(events_pb2.AssistanceNoticeSent).assistance_notice.name for e in to_bank}
    other_bank = await read_events(js, "ROGATORY", "rogatory.v1.notice.*.bank-ccb.>", since=since, timeout=1.0)
    assert notice.name not in {e.parse(events_pb2.AssistanceNoticeSent).assistance_notice.name for e in other_bank}
