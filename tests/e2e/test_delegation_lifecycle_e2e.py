"""Seed scenario 4 end to end: 广州市黄埔区法院 (gd0112) delegates a 7,000,000 元 receivable freeze
to 中牟县法院 (ha0122), which acknowledges, starts and completes it the same day; each court reads
its events by subject, a third court sees none, and the timeline shows every step's trace."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.events.v1 import events_pb2

from delegation.calendar import CHINA_TZ
from rogatory_client import Aborted, AsyncClient, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, RogatoryError
from services.plumbing.auth import dev_credentials
from services.plumbing.events import ReceivedEvent
from services.plumbing.subscriber import read_events
from services.tools.demo import as_court, freeze_request
from services.tools.launcher import Stack
from tests.e2e.test_delegation_assistance_e2e import register_case
from tests.unit.test_matter_forms import filled, request_for, scenarios_of

REQUESTING = dev_credentials("court", "gd0112")
ENTRUSTED = dev_credentials("court", "ha0122")
THIRD_COURT = dev_credentials("court", "zj0326")
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
OFFICER = dg.Officer(display_name="李法官", phone="0371-62171234")
RECEIPT = dg.Attachment(kind=dg.Attachment.ASSISTANCE_RECEIPT, name="协助冻结回执.pdf", size_bytes=4096, sha256="ef" * 32)
VERBS = ["submitted", "acknowledged", "started", "completed"]


async def rpc_error(call: Awaitable[object]) -> RogatoryError:
    with pytest.raises(RogatoryError) as caught:
        await call
    return caught.value


def delegation_of(event: ReceivedEvent) -> dg.Delegation:
    payload_type = events_pb2.DelegationSubmitted if event.subject.endswith(".submitted") else events_pb2.DelegationTransitioned
    return event.parse(payload_type).delegation  # type: ignore[attr-defined]


async def events_about(js: JetStreamContext, subject_filter: str, name: str, since: datetime, expected: int) -> list[str]:
    """The verbs of `name`'s events on `subject_filter`, once `expected` of them have arrived."""
    verbs: list[str] = []
    for _ in range(20):
        events = await read_events(js, "ROGATORY", subject_filter, since=since, timeout=2.0)
        verbs = [e.subject.rsplit(".", 1)[1] for e in events if delegation_of(e).name == name]
        if len(verbs) >= expected:
            break
        await asyncio.sleep(0.1)  # the relay publishes after commit: wait for the outcome, bounded
    return verbs


async def test_receivable_freeze_executed_the_same_day(
    stack: Stack, rogatory: AsyncClient, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    """Each court as its court system calls (rogatory_client), naming itself on each call."""
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 600_000 + next(sequence_numbers))
    stub = rogatory.delegation
    created = await stub.CreateDelegation(freeze_request(case_name), metadata=REQUESTING)  # CASE_NOT_REGISTERED: retried
    name = created.name
    assert created.state == dg.Delegation.SUBMITTED and created.deposits.amount_fen == 700_000_000
    assert [(d.step, d.status) for d in created.deadlines] == [
        (dg.Deadline.ACKNOWLEDGE, dg.Deadline.OPEN),
        (dg.Deadline.START, dg.Deadline.OPEN),
        (dg.Deadline.FINISH, dg.Deadline.OPEN),
    ]

    hidden = await rpc_error(stub.GetDelegation(dg.GetDelegationRequest(name=name), metadata=THIRD_COURT))
    assert isinstance(hidden, NotFound)  # existence is not revealed
    acknowledge = dg.AcknowledgeDelegationRequest(name=name, officer=OFFICER, etag=created.etag)
    wrong_court = await rpc_error(stub.AcknowledgeDelegation(acknowledge, metadata=REQUESTING))
    assert isinstance(wrong_court, PermissionDenied) and wrong_court.reason == "NOT_ENTRUSTED_COURT"

    acknowledged = await stub.AcknowledgeDelegation(acknowledge, metadata=ENTRUSTED)
    stale = await rpc_error(stub.StartDelegation(dg.StartDelegationRequest(name=name, etag=created.etag), metadata=ENTRUSTED))
    assert isinstance(stale, Aborted) and stale.reason == "VERSION_MISMATCH"  # not retried: the etag is stale
    started = await stub.StartDelegation(dg.StartDelegationRequest(name=name, etag=acknowledged.etag), metadata=ENTRUSTED)
    again = await rpc_error(
        stub.AcknowledgeDelegation(dg.AcknowledgeDelegationRequest(name=name, officer=OFFICER), metadata=ENTRUSTED)
    )
    assert isinstance(again, FailedPrecondition) and again.reason == "INVALID_TRANSITION"
    bad_etag = await rpc_error(stub.StartDelegation(dg.StartDelegationRequest(name=name, etag="v7"), metadata=ENTRUSTED))
    assert isinstance(bad_etag, InvalidArgument)

    completion = dg.Completion(outcome=dg.Completion.EXECUTED, amount_fen=700_000_000, result_documents=[RECEIPT])
    request = dg.CompleteDelegationRequest(name=name, completion=completion, etag=started.etag)
    traceparent = (("traceparent", f"00-{TRACE_ID}-00f067aa0ba902b7-01"),)
    completed = await stub.CompleteDelegation(request, metadata=ENTRUSTED + traceparent)
    timeline = await stub.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=name), metadata=REQUESTING)

    assert completed.state == dg.Delegation.COMPLETED and completed.completion.amount_fen == 700_000_000
    same_day = completed.complete_time.ToDatetime(tzinfo=UTC).astimezone(CHINA_TZ).date()
    assert same_day == created.create_time.ToDatetime(tzinfo=UTC).astimezone(CHINA_TZ).date()
    assert {d.status for d in completed.deadlines} == {dg.Deadline.MET}
    assert [e.action for e in timeline.entries] == ["SUBMIT", "ACKNOWLEDGE", "START", "COMPLETE"]
    assert all(re.fullmatch("[0-9a-f]{32}", e.trace_id) and int(e.trace_id, 16) for e in timeline.entries)
    # One matter, one trace: every step is recorded in the trace its creation started; the
    # caller's own trace (TRACE_ID) links to it (tests/integration/test_matter_trace.py).
    assert {e.trace_id for e in timeline.entries} == {timeline.entries[0].trace_id} != {TRACE_ID}
    assert timeline.entries[-1].actor_court == "courts/ha0122" and timeline.entries[-1].officer == "李法官"

    js = subscriber.jetstream()
    assert await events_about(js, "rogatory.v1.delegation.gd0112.*.>", name, since, 4) == VERBS  # sent
    assert await events_about(js, "rogatory.v1.delegation.*.ha0122.>", name, since, 4) == VERBS  # received
    for third in ("rogatory.v1.delegation.zj0326.*.>", "rogatory.v1.delegation.*.zj0326.>"):
        assert await events_about(js, third, name, since, 0) == []


async def test_a_matter_is_routed_by_the_property_location(stack: Stack, sequence_numbers: Iterator[int]) -> None:
    case_name = await register_case(stack, 650_000 + next(sequence_numbers))
    request = freeze_request(case_name)
    request.delegation.entrusted_court = ""
    request.delegation.property_division_code = "410122"  # 中牟县, Henan
    async with as_court("gd0112", stack.describe()) as huangpu:
        created = await huangpu.delegation.CreateDelegation(request)
    assert created.entrusted_court == "courts/ha0122"


# --- forms from the contract (issue 17 point 3) ---------------------------------------------------------


async def test_a_court_system_builds_each_kinds_form_from_the_service(
    stack: Stack, rogatory: AsyncClient, sequence_numbers: Iterator[int]
) -> None:
    """ListMatterKinds (paged) gives every kind's form; a request filled in from it alone is
    accepted for every kind and every property kind; one that leaves out a field the form
    says is required is refused naming exactly that field."""
    case_name = await register_case(stack, 720_000 + next(sequence_numbers))
    stub = rogatory.delegation
    forms, token = [], ""
    while True:
        page = await stub.ListMatterKinds(dg.ListMatterKindsRequest(page_size=3, page_token=token), metadata=REQUESTING)
        forms += page.matter_kinds
        if not (token := page.next_page_token):
            break
    assert [f.kind for f in forms] == [v.number for v in dg.Delegation.MatterKind.DESCRIPTOR.values if v.number]
    one = await stub.GetMatterKind(dg.GetMatterKindRequest(name=forms[0].name), metadata=REQUESTING)
    assert one == forms[0]

    for form in forms:
        for i, scenario in enumerate(scenarios_of(form)):
            if i and form.details_field != "registered_property":
                break  # one request per kind; every property kind of registered property
            request = request_for(scenario, filled(scenario))
            request.delegation.case = case_name
            request.request_id = str(uuid.uuid4())
            created = await stub.CreateDelegation(request, metadata=REQUESTING)
            assert created.WhichOneof("details") == form.details_field

    deposits = forms[0]
    scenario = next(scenarios_of(deposits))
    required = next(f for f in deposits.detail_fields if f.requirement == dg.MatterKind.DetailField.REQUIRED)
    request = request_for(scenario, {k: v for k, v in filled(scenario).items() if k != required.field})
    request.delegation.case = case_name
    error = await rpc_error(stub.CreateDelegation(request, metadata=REQUESTING))
    assert isinstance(error, InvalidArgument)
    assert [(v.field, v.reason) for v in error.field_violations] == [(required.field, "REQUIRED")]
