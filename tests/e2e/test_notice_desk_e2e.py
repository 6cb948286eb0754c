"""The simulated notice desks (services/tools/agency_simulator/notice_desk.py) answer a court's
notices over gRPC as a bank, a real-estate registry and a market regulator would; the court
sees the results and the seizures on its own subjects, a queued seal takes effect when the
earlier one is lifted, and a delegation hands a freshly frozen account over."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from nats.aio.client import Client as NATS
from rogatory.assistance.v1 import assistance_pb2 as asst
from rogatory.events.v1 import events_pb2

from rogatory_client import AsyncClient
from services.assistance.notice_examples import freeze_request, notice_request, renew_request, seal_request
from services.plumbing.auth import dev_credentials
from services.plumbing.subscriber import read_events
from services.tools.agency_simulator.notice_desk import NoticeDesk
from services.tools.demo import freeze_request as delegation_request
from services.tools.demo import until_case_replicated
from services.tools.launcher import Stack
from tests.conftest import wait_for
from tests.e2e.test_delegation_assistance_e2e import DEBTOR, register_case
from tests.e2e.test_registry_e2e import details

COURT = dev_credentials("court", "gd0112")
ACCOUNT = "6222021001123456789"
DESKS = ["bank-icbc", "re-440100", "mr-440100"]


@pytest.fixture
async def desk(stack: Stack) -> AsyncIterator[NoticeDesk]:
    running = NoticeDesk(stack.nats_url, stack.address("assistance"), balances={ACCOUNT: 500_000_000})
    await running.start(DESKS)
    try:
        yield running
    finally:
        await running.stop()


async def test_desks_answer_like_a_bank_a_registry_and_a_regulator(
    stack: Stack, rogatory: AsyncClient, desk: NoticeDesk, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 600_000 + next(sequence_numbers))
    stub = rogatory.assistance

    async def send(request: asst.CreateAssistanceNoticeRequest) -> asst.AssistanceNotice:
        sent = await until_case_replicated(lambda: stub.CreateAssistanceNotice(request, metadata=COURT))
        return await desk.wait_for_answer(sent.name)

    # The bank freezes what the account holds (500,000 元 of 700,000 asked), then queues.
    first = await send(freeze_request("gd0112", case_name, DEBTOR, amount_fen=700_000_000))
    assert (first.result.kind, first.result.amount_fen) == (asst.NoticeResult.FROZEN, 500_000_000)
    second = await send(freeze_request("gd0112", case_name, DEBTOR, amount_fen=100_000))
    assert (second.result.kind, second.result.queue_position) == (asst.NoticeResult.QUEUED, 1)

    # The registry's receipt is service; a second seal on the unit queues behind the first.
    sealed = await send(seal_request("gd0112", case_name, DEBTOR, "re-440100"))
    assert sealed.result.kind == asst.NoticeResult.REGISTERED and sealed.HasField("service_time")
    waiting = await send(seal_request("gd0112", case_name, DEBTOR, "re-440100"))
    assert (waiting.result.kind, waiting.result.queue_position, waiting.resulting_seizure) == (
        asst.NoticeResult.QUEUED,
        1,
        "",
    )

    equity = asst.NoticeTarget(
        debtor=DEBTOR,
        equity=asst.NoticeTarget.Equity(company_name="温州某有限公司", credit_code="91110000600037341L", share_percent="20"),
    )
    frozen_equity = await send(notice_request("gd0112", case_name, "mr-440100", asst.AssistanceNotice.FREEZE_EQUITY, equity))
    assert frozen_equity.result.kind == asst.NoticeResult.REGISTERED and frozen_equity.resulting_seizure
    rights = await stub.GetSeizure(asst.GetSeizureRequest(name=frozen_equity.resulting_seizure), metadata=COURT)
    assert rights.asset_class == asst.Seizure.RIGHTS

    # Unsealing the first seal: the registry registers it and the queued seal takes effect.
    unseal = renew_request(
        "gd0112", case_name, DEBTOR, "re-440100", sealed.resulting_seizure, asst.AssistanceNotice.UNSEAL_PROPERTY
    )
    lifted = await send(unseal)
    assert lifted.result.kind == asst.NoticeResult.REGISTERED

    async def took_effect() -> bool:
        now = await stub.GetAssistanceNotice(asst.GetAssistanceNoticeRequest(name=waiting.name), metadata=COURT)
        return bool(now.resulting_seizure) and now.result.HasField("effective_time")

    await wait_for(took_effect)

    js = subscriber.jetstream()
    seizures = await read_events(js, "ROGATORY", "rogatory.v1.seizure.gd0112.>", since=since, until_count=5)
    verbs = [e.subject.rsplit(".", 1)[1] for e in seizures]
    assert verbs.count("effective") >= 4 and "released" in verbs
    bank_side = await read_events(js, "ROGATORY", "rogatory.v1.seizure.*.bank-icbc.>", since=since, until_count=1)
    assert {e.parse(events_pb2.SeizureChanged).seizure.agency for e in bank_side} == {"agencies/bank-icbc"}

    # The frozen account is handed over with a delegation: a year left, so it is accepted
    # once the delegation service's replica has the seizure.
    stub = rogatory.delegation
    request = delegation_request(case_name)
    request.handed_over_seizures.append(first.resulting_seizure)
    created: list[object] = []

    async def accepted() -> bool:
        try:
            created.append(await stub.CreateDelegation(request, metadata=COURT))
        except grpc.aio.AioRpcError as error:
            if details(error)[0].reason in ("SEIZURE_NOT_FOUND", "CASE_NOT_REGISTERED"):
                return False  # replication is asynchronous
            raise
        return True

    await wait_for(accepted)
    another_courts = delegation_request(case_name)
    another_courts.handed_over_seizures.append("courts/zj0326/seizures/whatever")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateDelegation(another_courts, metadata=COURT)
    assert details(caught.value)[0].reason == "SEIZURE_NOT_FOUND"
    assert created
