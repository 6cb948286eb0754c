"""A late matter end to end: nobody acknowledges; the deadline scanner (run as the admin job
`rogatory scan-deadlines --at …`, the same code the service runs on its clock) marks it
overdue and urges the entrusted court, then escalates it to that court's superior court,
which finds it on its overdue list. Everything is read back over gRPC and from NATS."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client as NATS
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.events.v1 import events_pb2

from rogatory_client import AsyncClient, InvalidArgument
from services.plumbing.auth import dev_credentials
from services.plumbing.events import ReceivedEvent
from services.tools.demo import as_court, delegate_freeze, until_case_replicated
from services.tools.launcher import Stack
from tests.conftest import events_until, run_cli
from tests.e2e.test_delegation_assistance_e2e import register_case

SUPERIOR = dev_credentials("court", "ha01")  # 郑州市中级人民法院, superior of 中牟县法院
REQUESTING = dev_credentials("court", "gd0112")


def past_deadline(delegation: dg.Delegation, step: dg.Deadline.Step.ValueType, days: float) -> datetime:
    """`days` after the matter's `step` deadline: a scan then finds it overdue by that much,
    whatever weekday or holiday the test runs on (working-day deadlines move with both)."""
    due = next(d.due_time for d in delegation.deadlines if d.step == step)
    return due.ToDatetime(UTC) + timedelta(days=days)


def scan_at(stack: Stack, at: datetime, *delegations: str) -> str:
    """`rogatory scan-deadlines --at AT [--delegation NAME …]` against the stack's delegation database:
    time moves for the test's own matters only, the stack being shared."""
    argv = ["scan-deadlines", "--at", at.isoformat(), *(option for name in delegations for option in ("--delegation", name))]
    with ThreadPoolExecutor(1) as thread:  # the command runs an event loop of its own (tests/conftest.py run_cli)
        done = thread.submit(run_cli, argv, stack.env_for("delegation")).result(timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


async def names_on(subscriber: NATS, subject_filter: str, since: datetime, name: str, payload: type, expected: int) -> int:
    """How many events about `name` arrived on `subject_filter` (waits, bounded, for `expected`)."""

    def count(events: list[ReceivedEvent]) -> int:
        return sum(1 for e in events if e.parse(payload).delegation.name == name)

    return count(
        await events_until(subscriber.jetstream(), subject_filter, lambda events: count(events) >= expected, since=since)
    )


async def test_unacknowledged_matter_is_urged_then_escalated(
    stack: Stack, rogatory: AsyncClient, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 700_000 + next(sequence_numbers))
    async with as_court("gd0112", stack.describe()) as huangpu:
        created = await until_case_replicated(lambda: delegate_freeze(huangpu, case_name))
    name = created.name

    assert "MARK_OVERDUE 1" in scan_at(stack, past_deadline(created, dg.Deadline.ACKNOWLEDGE, 1), name)  # ACKNOWLEDGE missed
    urged = await names_on(subscriber, "rogatory.v1.delegation.*.ha0122.urged", since, name, events_pb2.DelegationUrged, 1)
    assert urged == 1
    assert "ESCALATE" in scan_at(stack, past_deadline(created, dg.Deadline.ACKNOWLEDGE, 16), name)  # overdue ≥ 15 days
    escalated = await names_on(subscriber, "rogatory.v1.supervision.ha01.>", since, name, events_pb2.DelegationEscalated, 1)
    assert escalated >= 1

    stub = rogatory.delegation
    overdue = await stub.ListOverdueDelegations(dg.ListOverdueDelegationsRequest(parent="courts/ha01"), metadata=SUPERIOR)
    timeline = await stub.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=name), metadata=REQUESTING)
    assert name in [d.name for d in overdue.delegations]
    entry = next(d for d in overdue.delegations if d.name == name)
    assert entry.urge_count >= 2 and entry.HasField("escalate_time")
    actions = [e.action for e in timeline.entries]
    assert actions[0] == "SUBMIT" and {"OVERDUE", "URGE", "ESCALATE"} <= set(actions)
    system_entries = [e for e in timeline.entries if e.action in {"OVERDUE", "URGE", "ESCALATE"}]
    assert all(
        e.officer == "system" and e.trace_id == timeline.entries[0].trace_id for e in system_entries
    )  # one task, one trace


# --- the deadline calculator, asked over gRPC as a court system asks it (issue 17 point 4) ---------------

ENTRUSTED = dev_credentials("court", "ha0122")  # 中牟县法院, the court that must act


async def test_a_court_system_computes_the_deadlines_the_service_set(stack: Stack, sequence_numbers: Iterator[int]) -> None:
    """ComputeDeadline for a matter's kind, step and entrusted court, from its creation time, is
    exactly the deadline the service opened (and the scanner watches)."""
    case_name = await register_case(stack, 710_000 + next(sequence_numbers))
    async with as_court("gd0112", stack.describe()) as huangpu, as_court("ha0122", stack.describe()) as zhongmou:
        created = await delegate_freeze(huangpu, case_name)
        for deadline in created.deadlines:
            request = dg.ComputeDeadlineRequest(
                court=created.entrusted_court, start_time=created.create_time, matter_kind=created.matter_kind, step=deadline.step
            )
            answer = await zhongmou.delegation.ComputeDeadline(request)
            assert (answer.due_time, answer.provisional, answer.source) == (
                deadline.due_time,
                deadline.provisional,
                deadline.source,
            )


async def test_a_court_system_asks_for_a_period_across_national_day_2023(stack: Stack) -> None:
    start = Timestamp()
    start.FromDatetime(datetime(2023, 9, 15, 2, 0, tzinfo=UTC))  # 10:00 in China
    request = dg.ComputeDeadlineRequest(
        court="courts/ha0122", start_time=start, period=dg.Period(amount=15, unit=dg.Period.CALENDAR_DAY)
    )
    async with as_court("ha0122", stack.describe()) as zhongmou:
        answer = await zhongmou.delegation.ComputeDeadline(request)
    assert (answer.due_date.year, answer.due_date.month, answer.due_date.day) == (2023, 10, 7)  # the make-up Saturday
    assert answer.due_time.ToDatetime(UTC) == datetime(2023, 10, 7, 15, 59, 59, 999999, tzinfo=UTC)  # 23:59:59.999999 in China
    assert [(d.date.month, d.date.day) for d in answer.makeup_workdays] == [(10, 7)]
    assert [d.date.day for d in answer.holidays] == [29, 30, 1, 2, 3, 4, 5, 6]
    assert (answer.last_day_shift.last_day.day, answer.last_day_shift.moved_to.day) == (30, 7)
    assert not answer.provisional


async def test_a_bad_question_gets_every_violation_as_a_rich_error(stack: Stack) -> None:
    request = dg.ComputeDeadlineRequest(court="courts/nowhere", period=dg.Period(amount=0, unit=dg.Period.MONTH))
    async with as_court("ha0122", stack.describe()) as zhongmou:
        with pytest.raises(InvalidArgument) as caught:
            await zhongmou.delegation.ComputeDeadline(request)
    assert {(v.field, v.reason) for v in caught.value.field_violations} == {
        ("court", "UNKNOWN_COURT"),
        ("start_time", "REQUIRED"),
        ("period.amount", "BAD_AMOUNT"),
    }
