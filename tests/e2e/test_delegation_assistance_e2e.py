"""Seed scenario 4 over gRPC + NATS: a case, a delegation to Henan and bank notices: the bank
receives and answers over gRPC, court and bank each see their own events and notices only."""

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

from rogatory_client import AsyncClient
from services.assistance.notice_examples import freeze_request as notice_freeze_request
from services.assistance.notice_examples import query_request
from services.plumbing.auth import dev_credentials
from services.plumbing.subscriber import read_events
from services.tools.demo import as_court, delegate_freeze, freeze_request, until_case_replicated
from services.tools.launcher import Stack
from tests.conftest import wait_for
from tests.e2e.test_registry_e2e import create_request, details


async def register_case(stack: Stack, number: int) -> str:
    """黄埔 registers a case, as its court system would (rogatory_client)."""
    async with as_court("gd0112", stack.describe()) as huangpu:
        case = await huangpu.registry.CreateCase(create_request(number, "gd0112", "粤0112"))
    return case.name


async def test_delegation_reaches_both_courts_and_no_other(
    stack: Stack, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel, as_court("gd0112", stack.describe()) as huangpu:
        created = await until_case_replicated(lambda: delegate_freeze(huangpu, case_name))
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


COURT = dev_credentials("court", "gd0112")
ICBC, CCB = dev_credentials("agency", "bank-icbc"), dev_credentials("agency", "bank-ccb")
DEBTOR = "张三"  # the respondent of tests.e2e.test_registry_e2e.create_request


async def test_notice_reaches_the_bank_it_addresses(
    stack: Stack, rogatory: AsyncClient, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    stub = rogatory.assistance
    notice = await until_case_replicated(
        lambda: stub.CreateAssistanceNotice(query_request("gd0112", case_name, DEBTOR), metadata=COURT)
    )
    listed = await stub.ListAssistanceNotices(
        asst.ListAssistanceNoticesRequest(parent="courts/gd0112", filter='agency = "agencies/bank-icbc"', page_size=1000),
        metadata=COURT,
    )
    assert notice.name in {n.name for n in listed.assistance_notices}
    js = subscriber.jetstream()
    to_bank = await read_events(js, "ROGATORY", "rogatory.v1.notice.*.bank-icbc.>", since=since, until_count=1)
    assert notice.name in {e.parse(events_pb2.AssistanceNoticeSent).assistance_notice.name for e in to_bank}
    other_bank = await read_events(js, "ROGATORY", "rogatory.v1.notice.*.bank-ccb.>", since=since, timeout=1.0)
    assert notice.name not in {e.parse(events_pb2.AssistanceNoticeSent).assistance_notice.name for e in other_bank}


async def test_the_bank_receives_freezes_and_the_court_sees_the_seizure(
    stack: Stack, rogatory: AsyncClient, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    stub = rogatory.assistance
    notice = await until_case_replicated(
        lambda: stub.CreateAssistanceNotice(notice_freeze_request("gd0112", case_name, DEBTOR), metadata=COURT)
    )
    # The bank finds it among its own notices, acknowledges it and freezes less than asked.
    mine = await stub.ListAssistanceNotices(asst.ListAssistanceNoticesRequest(parent="courts/-", page_size=1000), metadata=ICBC)
    assert notice.name in {n.name for n in mine.assistance_notices}
    received = await stub.ReceiveAssistanceNotice(
        asst.ReceiveAssistanceNoticeRequest(name=notice.name, etag=notice.etag), metadata=ICBC
    )
    result = asst.NoticeResult(kind=asst.NoticeResult.FROZEN, amount_fen=500_000_000, reference="冻字第1号")
    frozen = await stub.ReplyAssistanceNotice(
        asst.ReplyAssistanceNoticeRequest(name=notice.name, result=result, etag=received.etag), metadata=ICBC
    )
    assert frozen.state == asst.AssistanceNotice.ANSWERED and frozen.resulting_seizure
    seizure = await stub.GetSeizure(asst.GetSeizureRequest(name=frozen.resulting_seizure), metadata=COURT)
    assert (seizure.state, seizure.amount_fen) == (asst.Seizure.ACTIVE, 500_000_000)
    timeline = await stub.GetAssistanceNoticeTimeline(asst.GetAssistanceNoticeTimelineRequest(name=notice.name), metadata=COURT)
    assert [e.action for e in timeline.entries] == ["SEND", "RECEIVE", "REPLY"]

    # Refusals: another bank learns nothing, the court cannot reply, a stale etag is aborted,
    # a measure against a non-debtor is refused, another court cannot list gd0112's notices.
    async def code_of(call) -> grpc.StatusCode:  # type: ignore[no-untyped-def]
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        return caught.value.code()

    assert (
        await code_of(stub.GetAssistanceNotice(asst.GetAssistanceNoticeRequest(name=notice.name), metadata=CCB))
        == grpc.StatusCode.NOT_FOUND
    )
    assert await code_of(stub.GetSeizure(asst.GetSeizureRequest(name=seizure.name), metadata=CCB)) == grpc.StatusCode.NOT_FOUND
    again = asst.ReplyAssistanceNoticeRequest(name=notice.name, result=result)
    assert await code_of(stub.ReplyAssistanceNotice(again, metadata=COURT)) == grpc.StatusCode.PERMISSION_DENIED
    assert await code_of(stub.ReplyAssistanceNotice(again, metadata=ICBC)) == grpc.StatusCode.FAILED_PRECONDITION
    stale = asst.ReceiveAssistanceNoticeRequest(name=notice.name, etag=notice.etag)
    assert await code_of(stub.ReceiveAssistanceNotice(stale, metadata=ICBC)) == grpc.StatusCode.ABORTED
    stranger = notice_freeze_request("gd0112", case_name, "李四")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateAssistanceNotice(stranger, metadata=COURT)
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION and details(caught.value)[0].reason == "NOT_A_DEBTOR"
    other_court = asst.ListAssistanceNoticesRequest(parent="courts/gd0112")
    assert (
        await code_of(stub.ListAssistanceNotices(other_court, metadata=dev_credentials("court", "zj0326")))
        == grpc.StatusCode.PERMISSION_DENIED
    )
    async with grpc.aio.insecure_channel(stack.address("assistance")) as channel:  # no court system: no credential
        anonymous = assistance_pb2_grpc.AssistanceServiceStub(channel).GetAssistanceNotice(
            asst.GetAssistanceNoticeRequest(name=notice.name)
        )
        assert await code_of(anonymous) == grpc.StatusCode.UNAUTHENTICATED

    js = subscriber.jetstream()
    verbs = await verbs_about(js, "rogatory.v1.notice.*.bank-icbc.>", since, notice.name, 3)
    court_events = await read_events(js, "ROGATORY", "rogatory.v1.seizure.gd0112.>", since=since, until_count=1)
    assert verbs[:3] == ["sent", "received", "answered"]
    assert seizure.name in {e.parse(events_pb2.SeizureChanged).seizure.name for e in court_events}
    other_bank = await read_events(js, "ROGATORY", "rogatory.v1.notice.*.bank-ccb.>", since=since, timeout=1.0)
    assert not any(_about(e, notice.name) for e in other_bank)


def _about(event, notice_name: str) -> bool:  # type: ignore[no-untyped-def]
    message = events_pb2.AssistanceNoticeSent if event.subject.endswith(".sent") else events_pb2.AssistanceNoticeTransitioned
    return event.parse(message).assistance_notice.name == notice_name


async def test_agency_turnaround_counts_the_banks_answer(
    stack: Stack, rogatory: AsyncClient, sequence_numbers: Iterator[int]
) -> None:
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    stub = rogatory.assistance
    request = asst.GetAgencyTurnaroundStatisticsRequest(filter='agency = "agencies/bank-ccb"', group_by=["kind"])
    before = await stub.GetAgencyTurnaroundStatistics(request, metadata=COURT)
    answered_before = sum(g.answered_count for g in before.groups)
    notice = await until_case_replicated(
        lambda: stub.CreateAssistanceNotice(notice_freeze_request("gd0112", case_name, DEBTOR, "bank-ccb"), metadata=COURT)
    )
    result = asst.NoticeResult(kind=asst.NoticeResult.NOT_FOUND)
    await stub.ReplyAssistanceNotice(asst.ReplyAssistanceNoticeRequest(name=notice.name, result=result), metadata=CCB)

    async def counted() -> bool:
        answer = await stub.GetAgencyTurnaroundStatistics(request, metadata=COURT)
        return sum(g.answered_count for g in answer.groups) == answered_before + 1

    await wait_for(counted)
    answer = await stub.GetAgencyTurnaroundStatistics(request, metadata=COURT)
    assert [g.key["kind"] for g in answer.groups] == ["FREEZE_DEPOSITS"]
    assert answer.groups[0].time_to_result.count >= 1


async def test_an_objection_is_answered_by_the_court_and_both_sides_hear_of_it(
    stack: Stack, rogatory: AsyncClient, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 500_000 + next(sequence_numbers))
    stub = rogatory.assistance
    notice = await until_case_replicated(
        lambda: stub.CreateAssistanceNotice(notice_freeze_request("gd0112", case_name, DEBTOR), metadata=COURT)
    )
    objection = asst.Objection(reason=asst.Objection.NOT_DEBTORS_PROPERTY, note="账户户名与被执行人不符")
    objected = await stub.ObjectToAssistanceNotice(
        asst.ObjectToAssistanceNoticeRequest(name=notice.name, objection=objection), metadata=ICBC
    )
    assert objected.state == asst.AssistanceNotice.OBJECTED and not objected.objection.answer_overdue
    due = objected.objection.answer_due_time.ToDatetime(tzinfo=UTC) - objected.objection.object_time.ToDatetime(tzinfo=UTC)
    assert timedelta(days=15) <= due < timedelta(days=30)
    answer = asst.ObjectionAnswer(decision=asst.ObjectionAnswer.MAINTAIN, note="经核实为被执行人账户")
    refused = asst.AnswerAssistanceNoticeObjectionRequest(name=notice.name, answer=answer)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.AnswerAssistanceNoticeObjection(refused, metadata=ICBC)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    maintained = await stub.AnswerAssistanceNoticeObjection(
        asst.AnswerAssistanceNoticeObjectionRequest(name=notice.name, answer=answer, etag=objected.etag), metadata=COURT
    )
    assert maintained.state == asst.AssistanceNotice.RECEIVED
    assert maintained.objection.answer.decision == asst.ObjectionAnswer.MAINTAIN
    js = subscriber.jetstream()
    for side in ("rogatory.v1.notice.gd0112.>", "rogatory.v1.notice.*.bank-icbc.>"):
        assert await verbs_about(js, side, since, notice.name, 3) == ["sent", "objected", "objection-answered"]


async def verbs_about(js, subject_filter: str, since: datetime, notice_name: str, count: int) -> list[str]:  # type: ignore[no-untyped-def]
    """The verbs of the events about one notice on `subject_filter`, once `count` have arrived
    (other tests' events may share the subjects)."""
    found: list[str] = []

    async def arrived() -> bool:
        events = await read_events(js, "ROGATORY", subject_filter, since=since, timeout=0.5)
        found[:] = [e.subject.rsplit(".", 1)[1] for e in events if _about(e, notice_name)]
        return len(found) >= count

    await wait_for(arrived)
    return found
