"""The deadline calculator and the deadline scanner agree (issue 17 point 4), for every matter
kind's deadlines, on SQLite and PostgreSQL: each kind of matter is delegated at instants whose
periods cross the 2023 and 2024 breaks and a year with no holiday notice; every deadline the
service opens must be what ComputeDeadline answers for that kind, step and court, and the
scanner must leave the step alone at the calculator's due time and mark it overdue (or deem the
matter withdrawn, for SUPPLEMENT) one microsecond later.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.calendar import CHINA_TZ
from delegation.deadlines import RuleTable, Step
from delegation.details import REQUIRED_ATTACHMENTS, Attachment, MatterDetails
from delegation.lifecycle import AcknowledgeDelegation, ReturnDelegationForSupplement
from delegation.matters import DelegationState
from services.delegation import calculator
from services.delegation.handlers import DelegationHandlers
from services.delegation.scanner import DeadlineScanner
from services.delegation.schedule import DeadlineStatus
from services.plumbing.times import timestamp, utc
from tests.integration.test_deadline_scanner import deadline_row
from tests.integration.test_delegation_lifecycle_store import (
    ALL_DETAILS,
    DEPOSIT,
    ENTRUSTED,
    ENTRUSTED_OFFICER,
    REQUESTING,
    Clock,
    create_command,
    principal,
)

#: Starts whose periods cross 国庆 2023, 春节 2024 and the turn into 2027 (no notice loaded: provisional).
STARTS = [
    datetime(2023, 9, 25, 17, 30, tzinfo=CHINA_TZ),
    datetime(2024, 2, 5, 9, 0, tzinfo=CHINA_TZ),
    datetime(2026, 12, 20, 9, 0, tzinfo=CHINA_TZ),
]
#: A province rule, so the agreement covers the province look-up too: 豫 is the entrusted court's.
HENAN_RULE = '[[provinces."豫"]]\nkind = "DEPOSITS"\nstep = "FINISH"\namount = 5\nunit = "WORKING_DAY"\nsource = "豫 test rule"\n'
ONE_MICROSECOND = timedelta(microseconds=1)


@pytest.fixture
async def handlers(handlers: DelegationHandlers, clock: Clock) -> DelegationHandlers:
    rules = RuleTable.default().with_overrides_from_text(HENAN_RULE)
    return DelegationHandlers(handlers.writer, handlers.reader, handlers.courts, clock=clock, rules=rules)


def command_for(details: MatterDetails) -> object:
    kind = details.matter_kind
    attachments = tuple(
        Attachment(k, f"{k}.pdf", 1000 + i, f"{i:02x}" * 32) for i, k in enumerate(sorted(REQUIRED_ATTACHMENTS[kind]))
    )
    return replace(create_command(DEPOSIT), matter_kind=str(kind), details=details, attachments=attachments)


def calculated(
    handlers: DelegationHandlers, details: MatterDetails, step: Step, court_id: str, start: datetime
) -> pb.ComputeDeadlineResponse:
    request = pb.ComputeDeadlineRequest(
        court=f"courts/{court_id}",
        start_time=timestamp(start),
        matter_kind=pb.Delegation.MatterKind.Value(str(details.matter_kind)),
        step=pb.Deadline.Step.Value(str(step)),
    )
    return calculator.compute(request, handlers.book)


def due_of(answer: pb.ComputeDeadlineResponse) -> datetime:
    return utc(answer.due_time.ToDatetime(tzinfo=CHINA_TZ))


async def status_of(handlers: DelegationHandlers, name: str, step: Step) -> str:
    return str((await deadline_row(handlers, name, step))["status"])


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.date().isoformat())
@pytest.mark.parametrize("details", ALL_DETAILS, ids=lambda d: type(d).__name__ + "-" + str(getattr(d, "property_kind", "")))
async def test_the_scanner_and_the_calculator_agree_on_every_deadline_of_every_kind(
    handlers: DelegationHandlers, clock: Clock, details: MatterDetails, start: datetime
) -> None:
    clock.now = start
    stored = await handlers.create_delegation(command_for(details), REQUESTING)  # type: ignore[arg-type]
    name = stored.delegation.name
    answers = {d.step: calculated(handlers, details, d.step, ENTRUSTED, start) for d in stored.deadlines}
    assert set(answers) == {Step.ACKNOWLEDGE, Step.START, Step.FINISH}
    for deadline in stored.deadlines:
        answer = answers[deadline.step]
        assert deadline.due_at == due_of(answer), deadline.step
        assert deadline.provisional == answer.provisional, deadline.step
        assert deadline.rule.source == answer.source
    assert any(a.provisional for a in answers.values()) == (start.year == 2026)

    scanner = DeadlineScanner(handlers)
    for due in sorted({due_of(a) for a in answers.values()}):
        steps = [step for step, a in answers.items() if due_of(a) == due]
        clock.now = due  # the last instant of the due day: not late yet
        await scanner.scan_once()
        assert [await status_of(handlers, name, s) for s in steps] == [str(DeadlineStatus.OPEN)] * len(steps)
        clock.now = due + ONE_MICROSECOND  # the first instant after it: overdue
        await scanner.scan_once()
        assert [await status_of(handlers, name, s) for s in steps] == [str(DeadlineStatus.OVERDUE)] * len(steps)


@pytest.mark.parametrize("start", STARTS, ids=lambda s: s.date().isoformat())
async def test_the_scanner_and_the_calculator_agree_on_the_supplement_deadline(
    handlers: DelegationHandlers, clock: Clock, start: datetime
) -> None:
    """SUPPLEMENT runs for the requesting court (广东's rules) from the request for materials."""
    clock.now = start - timedelta(days=1)
    name = (await handlers.create_delegation(command_for(DEPOSIT), REQUESTING)).delegation.name  # type: ignore[arg-type]
    await handlers.acknowledge(name, ENTRUSTED, AcknowledgeDelegation(ENTRUSTED_OFFICER))
    clock.now = start
    returned = await handlers.return_for_supplement(
        name, ENTRUSTED, ReturnDelegationForSupplement("MISSING_RULING", ("执行裁定书",))
    )
    supplement = returned.deadline(Step.SUPPLEMENT)
    answer = calculated(handlers, DEPOSIT, Step.SUPPLEMENT, REQUESTING, start)
    assert supplement is not None and supplement.due_at == due_of(answer) and supplement.provisional == answer.provisional

    scanner = DeadlineScanner(handlers)
    clock.now = due_of(answer)
    await scanner.scan_once()
    assert (
        await handlers.get_delegation(name, principal(REQUESTING))
    ).delegation.state is DelegationState.RETURNED_FOR_SUPPLEMENT
    clock.now = due_of(answer) + ONE_MICROSECOND
    await scanner.scan_once()
    assert (await handlers.get_delegation(name, principal(REQUESTING))).delegation.state is DelegationState.WITHDRAWN
