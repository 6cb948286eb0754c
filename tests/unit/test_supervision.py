"""The deadline scanner's rules: warn, mark overdue, urge, re-urge, escalate, deem withdrawn."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from delegation.deadlines import Step
from delegation.supervision import DeadlineWatch, ScanAction, SupervisionPolicy, WatchStatus, actions_for

DUE = datetime(2023, 10, 7, 15, 59, 59, tzinfo=UTC)  # end of 2023-10-07, China time
POLICY = SupervisionPolicy()
WARN, OVERDUE, URGE = ScanAction.WARN_DUE_SOON, ScanAction.MARK_OVERDUE, ScanAction.URGE
ESCALATE, DEEM = ScanAction.ESCALATE, ScanAction.DEEM_WITHDRAWN


def watch(step: Step = Step.START, status: WatchStatus = WatchStatus.OPEN, **stamps: datetime) -> DeadlineWatch:
    return DeadlineWatch(step, DUE, status, **stamps)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (DUE - timedelta(days=3), []),
        (DUE - timedelta(days=2), [WARN]),
        (DUE, [WARN]),  # the last instant of the last day is still in time
        (DUE + timedelta(seconds=1), [OVERDUE, URGE]),
        (DUE + timedelta(days=15), [OVERDUE, URGE, ESCALATE]),  # a scanner that was down catches up at once
    ],
)
def test_open_deadline(now: datetime, expected: list[ScanAction]) -> None:
    assert actions_for(watch(), now, POLICY) == expected


def test_due_soon_is_sent_once() -> None:
    assert actions_for(watch(warned_at=DUE - timedelta(days=1)), DUE, POLICY) == []


def test_missed_supplement_deadline_deems_the_matter_withdrawn_without_urging() -> None:
    assert actions_for(watch(Step.SUPPLEMENT), DUE + timedelta(hours=1), POLICY) == [OVERDUE, DEEM]
    assert actions_for(watch(Step.SUPPLEMENT, WatchStatus.OVERDUE), DUE + timedelta(days=30), POLICY) == []


def test_overdue_deadline_is_urged_again_after_the_interval() -> None:
    urged = DUE + timedelta(hours=1)
    overdue = watch(status=WatchStatus.OVERDUE, overdue_at=urged, last_urged_at=urged)
    assert actions_for(overdue, urged + timedelta(days=6), POLICY) == []
    assert actions_for(overdue, urged + timedelta(days=7), POLICY) == [URGE]


def test_overdue_deadline_is_escalated_once() -> None:
    urged = DUE + timedelta(days=14)
    overdue = watch(status=WatchStatus.OVERDUE, overdue_at=DUE, last_urged_at=urged)
    assert actions_for(overdue, DUE + timedelta(days=15), POLICY) == [ESCALATE]
    escalated = watch(status=WatchStatus.OVERDUE, overdue_at=DUE, last_urged_at=urged, escalated_at=DUE + timedelta(days=15))
    assert actions_for(escalated, DUE + timedelta(days=16), POLICY) == []


def test_policy_is_configurable_and_checked() -> None:
    eager = SupervisionPolicy(escalate_after=timedelta(days=1))
    assert ESCALATE in actions_for(watch(), DUE + timedelta(days=1), eager)
    with pytest.raises(ValueError):
        SupervisionPolicy(reurge_every=timedelta(0))
