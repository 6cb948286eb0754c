"""Turnaround figures over gRPC: a matter completed the same day shows in the entrusted
court's statistics, computed by the read model from the events alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc

from services.plumbing.auth import dev_credentials
from services.tools.demo import as_court, delegate_freeze, execute_freeze_same_day, until_case_replicated
from services.tools.launcher import Stack
from tests.e2e.test_delegation_assistance_e2e import register_case

ENTRUSTED = "zj0681"  # 诸暨市人民法院: no other end-to-end test on the shared stack delegates to it


async def statistics(stub: delegation_pb2_grpc.DelegationServiceStub) -> dg.TurnaroundStatistics:
    request = dg.GetTurnaroundStatisticsRequest(
        filter=f'entrusted_court = "courts/{ENTRUSTED}"', group_by=["matter_kind", "cross_province"]
    )
    return await stub.GetTurnaroundStatistics(request, metadata=dev_credentials("court", "zj06"))


async def test_a_completed_matter_shows_in_the_statistics(stack: Stack, sequence_numbers: Iterator[int]) -> None:
    case_name = await register_case(stack, 800_000 + next(sequence_numbers))
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel, as_court("gd0112", stack.describe()) as huangpu:
        stub = delegation_pb2_grpc.DelegationServiceStub(channel)
        created = await until_case_replicated(lambda: delegate_freeze(huangpu, case_name, entrusted=ENTRUSTED))
        await execute_freeze_same_day(stack.describe(), created)
        figures = await statistics(stub)
        for _ in range(100):  # the read model follows the events: wait for it, bounded
            if figures.groups and figures.groups[0].time_to_complete.count >= 1:
                break
            await asyncio.sleep(0.1)
            figures = await statistics(stub)
    [group] = figures.groups
    assert dict(group.key) == {"matter_kind": "DEPOSITS", "cross_province": "true"}  # Guangdong → Zhejiang
    assert group.count == 1 and group.completion_rate == 1.0 and group.return_rate == 0.0
    assert group.time_to_complete.count == 1 and group.time_to_complete.median_days < 1
    assert group.on_time_rate == 1.0 and group.overdue_count == 0
