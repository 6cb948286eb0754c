"""Property query fan-out over gRPC + NATS with the real services and the simulated agencies:
the court sees the aggregated result and the completion event; other courts see nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from nats.aio.client import Client as NATS
from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.assistance.v1 import property_query_pb2_grpc
from rogatory.events.v1 import query_events_pb2 as events_pb2

from registry.agencies import AgencyCatalog, AgencyKind
from rogatory_client import AsyncClient
from services.plumbing.auth import dev_credentials
from services.plumbing.events import ReceivedEvent
from services.plumbing.subscriber import read_events
from services.tools.agency_simulator.query_responder import SimulatedQueryResponder
from services.tools.demo import until_case_replicated
from services.tools.launcher import SERVICES_ONLY, Stack
from tests.conftest import BACKENDS, events_until, wait_for
from tests.e2e.conftest import own_stack
from tests.e2e.test_delegation_assistance_e2e import register_case
from tests.e2e.test_registry_e2e import details

COURT = dev_credentials("court", "gd0112")
SILENT = "bank-psbc"  # never answers: timed out at the deadline
BY_GRPC = "tenpay"  # answers over gRPC instead of NATS


@pytest.fixture(scope="module", params=BACKENDS)
async def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A stack of its own that asks unanswered agencies again after 1 s: on the shared stack
    every other test's open query would be sent out again each second."""
    data_dir = tmp_path_factory.mktemp(f"query-stack-{request.param}")
    async with own_stack(request.param, data_dir, services=SERVICES_ONLY, ROGATORY_QUERY_RESEND_SECONDS="1") as running:
        yield running


def create_request(case_name: str, window_seconds: int) -> pb.CreatePropertyQueryRequest:
    return pb.CreatePropertyQueryRequest(
        parent="courts/gd0112",
        property_query=pb.PropertyQuery(
            case=case_name,
            debtor="张三",
            categories=[pb.DEPOSITS, pb.ONLINE_FUNDS],
            response_window=Duration(seconds=window_seconds),
        ),
    )


def deposit_agencies() -> list[str]:
    """The agencies a DEPOSITS + ONLINE_FUNDS query goes to (create_request)."""
    return [a.id for a in AgencyCatalog.default() if a.kind in (AgencyKind.BANK, AgencyKind.ONLINE_PAYMENT)]


async def completion_of(subscriber: NATS, name: str, since: datetime) -> events_pb2.PropertyQueryCompleted:
    def completions(events: list[ReceivedEvent]) -> list[events_pb2.PropertyQueryCompleted]:
        parsed = [event.parse(events_pb2.PropertyQueryCompleted) for event in events]
        return [c for c in parsed if c.property_query.name == name]  # type: ignore[attr-defined, misc]

    found = completions(
        await events_until(subscriber.jetstream(), "rogatory.v1.query.gd0112.completed", completions, since=since)
    )
    assert found, f"no completion event for {name}"
    return found[0]


async def test_a_query_reaches_every_agency_and_the_court_sees_the_aggregate(
    stack: Stack, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    answering = [a for a in deposit_agencies() if a != BY_GRPC]
    case_name = await register_case(stack, 700_000 + next(sequence_numbers))
    async with (
        SimulatedQueryResponder(stack.nats_url, answering, seed=4, silent={SILENT}) as agencies,
        grpc.aio.insecure_channel(stack.address("assistance")) as channel,
    ):
        stub = property_query_pb2_grpc.PropertyQueryServiceStub(channel)
        created = await until_case_replicated(lambda: stub.CreatePropertyQuery(create_request(case_name, 4), metadata=COURT))
        assert created.state == pb.PropertyQuery.RUNNING and created.agency_count == len(answering) + 1
        assert created.debtor_id_number == "110105********002X"

        reply = pb.ReplyPropertyQueryRequest(
            name=created.name,
            agency=f"agencies/{BY_GRPC}",
            outcome=pb.AgencyQueryResult.ANSWERED,
            items=[pb.PropertyItem(category=pb.ONLINE_FUNDS, value_fen=88_00, account=pb.Account(account_number="tp-1"))],
        )
        recorded = await stub.ReplyPropertyQuery(reply, metadata=dev_credentials("agency", BY_GRPC))
        assert recorded.status == pb.AgencyQueryResult.ANSWERED and recorded.HasField("reply_time")
        with pytest.raises(grpc.aio.AioRpcError) as again:
            await stub.ReplyPropertyQuery(reply, metadata=dev_credentials("agency", BY_GRPC))
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION and details(again.value)[0].reason == "ALREADY_REPLIED"
        with pytest.raises(grpc.aio.AioRpcError) as impostor:
            await stub.ReplyPropertyQuery(reply, metadata=dev_credentials("agency", "alipay"))
        assert impostor.value.code() == grpc.StatusCode.PERMISSION_DENIED

        completed = await completion_of(subscriber, created.name, since)
        assert completed.property_query.state == pb.PropertyQuery.COMPLETED
        assert completed.property_query.summary.timed_out == 1
        assert agencies.replied >= len(answering) - 1  # more if a slow reply was asked for again

        result = await stub.GetPropertyQuery(pb.GetPropertyQueryRequest(name=created.name), metadata=COURT)
        statuses = {r.agency: r.status for r in result.agency_results}
        assert statuses[f"agencies/{SILENT}"] == pb.AgencyQueryResult.TIMED_OUT
        assert statuses[f"agencies/{BY_GRPC}"] == pb.AgencyQueryResult.ANSWERED
        assert pb.AgencyQueryResult.PENDING not in statuses.values() and len(statuses) == created.agency_count
        found = [r for r in result.agency_results if r.status == pb.AgencyQueryResult.ANSWERED]
        assert all(r.items and r.reply_time.seconds for r in found)

        for call in (
            lambda: stub.GetPropertyQuery(
                pb.GetPropertyQueryRequest(name=created.name), metadata=dev_credentials("court", "zj0326")
            ),
            lambda: stub.ListPropertyQueries(
                pb.ListPropertyQueriesRequest(parent="courts/gd0112"), metadata=dev_credentials("court", "zj0326")
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call()
            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        listed = await stub.ListPropertyQueries(
            pb.ListPropertyQueriesRequest(parent="courts/gd0112", filter=f'case = "{case_name}"'), metadata=COURT
        )
        assert [q.name for q in listed.property_queries] == [created.name]

    # Requests travel over core NATS: the stream holds the query's events, not its 12 requests.
    stored = await read_events(subscriber.jetstream(), "ROGATORY", "rogatory.v1.query.gd0112.>", since=since, timeout=2.0)
    assert {e.subject for e in stored} == {"rogatory.v1.query.gd0112.created", "rogatory.v1.query.gd0112.completed"}


async def test_an_agency_that_was_offline_is_asked_again_and_its_reply_completes_the_query(
    stack: Stack, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    online = [a for a in deposit_agencies() if a != SILENT]
    case_name = await register_case(stack, 700_000 + next(sequence_numbers))
    async with (
        SimulatedQueryResponder(stack.nats_url, online, seed=5),
        grpc.aio.insecure_channel(stack.address("assistance")) as channel,
    ):
        stub = property_query_pb2_grpc.PropertyQueryServiceStub(channel)
        created = await until_case_replicated(lambda: stub.CreatePropertyQuery(create_request(case_name, 600), metadata=COURT))

        async def only_the_offline_bank_pending() -> bool:
            query = await stub.GetPropertyQuery(pb.GetPropertyQueryRequest(name=created.name), metadata=COURT)
            return query.pending_count == 1

        await wait_for(only_the_offline_bank_pending)
        async with SimulatedQueryResponder(stack.nats_url, [SILENT], seed=5) as late:  # comes online: asked again
            completed = await completion_of(subscriber, created.name, since)
        assert late.received >= 1 and late.replied >= 1
    assert completed.property_query.summary.timed_out == 0
    assert completed.property_query.pending_count == 0 and completed.property_query.agency_count == len(online) + 1


async def test_another_court_cannot_query_a_courts_debtor(
    stack: Stack, rogatory: AsyncClient, sequence_numbers: Iterator[int]
) -> None:
    case_name = await register_case(stack, 700_000 + next(sequence_numbers))
    stub = rogatory.property_queries
    await until_case_replicated(lambda: stub.CreatePropertyQuery(create_request(case_name, 60), metadata=COURT))
    request = create_request(case_name, 60)
    request.parent = "courts/zj0326"
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreatePropertyQuery(request, metadata=dev_credentials("court", "zj0326"))
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(caught.value)[0].reason == "NOT_CASE_OWNER"
    with pytest.raises(grpc.aio.AioRpcError) as not_a_debtor:
        request = create_request(case_name, 60)
        request.property_query.debtor = "温州银行股份有限公司"  # the applicant, not a respondent
        await stub.CreatePropertyQuery(request, metadata=COURT)
    assert not_a_debtor.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(not_a_debtor.value)[0].reason == "NOT_A_DEBTOR"
