"""Which deadlines a delegation has, and what each step does to them (no I/O).

Every deadline is one `delegation_deadline` row per (matter, step); the deadline scanner
watches the live ones (OPEN, or OVERDUE once it marked them). The periods come from the
domain: `RuleTable.rule_for_court` for the court that must act (the entrusted court, or the
requesting court for SUPPLEMENT) and `compute_deadline` on the working-day calendar.

What each step does (`changes_for`):

    submit                 opens ACKNOWLEDGE, START and FINISH, all running from submission
    acknowledge            closes ACKNOWLEDGE
    start                  closes START
    complete               closes START (done on the spot) and FINISH
    return for supplement  closes START (the court acted on the file), suspends FINISH
                           (cancelled: the file is back with the requesting court) and opens
                           SUPPLEMENT for the requesting court (委托执行规定 art. 8)
    supplement             closes SUPPLEMENT and opens FINISH afresh from the supplement:
                           the entrusted court is not charged for the time the file was away
    return / withdraw      cancels every live deadline (also "deemed withdrawn")

Closing judges the step against the due time: MET when done by then, MET_LATE after it
(whether or not the scanner had marked it OVERDUE). REPORT_STATUS is not opened: FINISH
falls on the same day under the statutory defaults.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from delegation.calendar import WorkingCalendar
from delegation.deadlines import (
    CountedPeriod,
    Deadline,
    DeadlineRule,
    RuleTable,
    Step,
    Unit,
    compute_deadline,
    count_period,
    extend,
    start_day_of,
)
from delegation.details import MAX_TEXT_LENGTH
from delegation.matters import Action, Delegation, MatterKind
from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, Violations, parse_enum
from registry.text import check_text


class DeadlineStatus(StrEnum):
    """Names match rogatory.delegation.v1.Deadline.Status."""

    OPEN = "OPEN"
    MET = "MET"
    OVERDUE = "OVERDUE"  # set by the deadline scanner
    MET_LATE = "MET_LATE"
    CANCELLED = "CANCELLED"


LIVE = frozenset({DeadlineStatus.OPEN, DeadlineStatus.OVERDUE})
SUBMIT_STEPS = (Step.ACKNOWLEDGE, Step.START, Step.FINISH)
STEP_ORDER = {step: i for i, step in enumerate(Step)}

CLOSES: dict[Action, tuple[Step, ...]] = {
    Action.ACKNOWLEDGE: (Step.ACKNOWLEDGE,),
    Action.START: (Step.START,),
    Action.COMPLETE: (Step.START, Step.FINISH),
    Action.RETURN_FOR_SUPPLEMENT: (Step.START,),
    Action.SUPPLEMENT: (Step.SUPPLEMENT,),
}
CANCELS: dict[Action, tuple[Step, ...]] = {
    Action.RETURN_FOR_SUPPLEMENT: (Step.FINISH,),
    Action.RETURN: tuple(Step),
    Action.WITHDRAW: tuple(Step),
    Action.DEEM_WITHDRAWN: tuple(Step),
}
OPENS: dict[Action, tuple[Step, ...]] = {
    Action.RETURN_FOR_SUPPLEMENT: (Step.SUPPLEMENT,),
    Action.SUPPLEMENT: (Step.FINISH,),
}
#: Steps whose deadline runs for the requesting court (委托执行规定 art. 8); the others run for the entrusted court.
REQUESTING_COURT_STEPS = frozenset({Step.SUPPLEMENT})


def tracked_steps() -> dict[Step, tuple[str, ...]]:
    """Every step whose deadline the service opens, with the actions that open it, in step order
    ("SUBMIT" for submission): what GetMatterKind tells a court system."""
    opened: dict[Step, list[str]] = {step: ["SUBMIT"] for step in SUBMIT_STEPS}
    for action, steps in OPENS.items():
        for step in steps:
            opened.setdefault(step, []).append(str(action))
    return {step: tuple(opened[step]) for step in sorted(opened, key=STEP_ORDER.__getitem__)}


def acting_court_id(delegation: Delegation, step: Step) -> str:
    """The court that must act on `step`: its province's rules decide the period."""
    return delegation.requesting_court_id if step in REQUESTING_COURT_STEPS else delegation.entrusted_court_id


#: Upper bounds of one extension: beyond these it is a typo, or a matter to reassign.
MAX_EXTENSION = {Unit.CALENDAR_DAY: 365, Unit.WORKING_DAY: 250, Unit.MONTH: 12}


@dataclass(frozen=True)
class GrantedExtension:
    amount: int
    unit: Unit
    reason: str
    court_id: str  # the superior court that granted it
    at: datetime

    def describe(self) -> str:
        return f"+{self.amount} {self.unit} by courts/{self.court_id} on {self.at:%Y-%m-%d}: {self.reason}"


@dataclass(frozen=True)
class TrackedDeadline:
    """One deadline row as the service sees it (the scanner's bookkeeping columns aside)."""

    step: Step
    status: DeadlineStatus
    start_at: datetime
    due_at: datetime
    provisional: bool
    rule: DeadlineRule
    extensions: tuple[GrantedExtension, ...] = ()
    closed_at: datetime | None = None

    @property
    def is_live(self) -> bool:
        return self.status in LIVE

    def closed(self, at: datetime) -> TrackedDeadline:
        status = DeadlineStatus.MET if at <= self.due_at else DeadlineStatus.MET_LATE
        return replace(self, status=status, closed_at=at)

    def cancelled(self, at: datetime) -> TrackedDeadline:
        return replace(self, status=DeadlineStatus.CANCELLED, closed_at=at)


def ordered(deadlines: Iterable[TrackedDeadline]) -> list[TrackedDeadline]:
    return sorted(deadlines, key=lambda d: STEP_ORDER[d.step])


@dataclass(frozen=True)
class ExtensionRequest:
    """A validated ExtendDelegationDeadline request."""

    step: Step
    amount: int
    unit: Unit
    reason: str


def check_extension(step: str, amount: int, unit: str, reason: str) -> ExtensionRequest:
    """Every violation at once; enum-valued arguments are names ("" = unspecified)."""
    violations = Violations()
    parsed_step = parse_enum(Step, step, "step", violations)
    parsed_unit = parse_enum(Unit, unit, "unit", violations)
    if parsed_unit is not None and not 1 <= amount <= MAX_EXTENSION[parsed_unit]:
        violations.add("amount", f"1 to {MAX_EXTENSION[parsed_unit]} for {parsed_unit}", "BAD_AMOUNT")
    reason = reason.strip()
    check_text(reason, "reason", violations, max_length=MAX_TEXT_LENGTH)
    violations.raise_if_any()
    assert parsed_step is not None and parsed_unit is not None
    return ExtensionRequest(parsed_step, amount, parsed_unit, reason)


@dataclass(frozen=True)
class DeadlineBook:
    """Opens, closes and extends a delegation's deadlines on the rule table and the calendar."""

    rules: RuleTable
    calendar: WorkingCalendar
    courts: CourtCatalog

    @classmethod
    def default(cls) -> DeadlineBook:
        """The shipped rule table, calendar and court table: what the delegation service runs on."""
        return cls(RuleTable.default(), WorkingCalendar.default(), CourtCatalog.default())

    def rule_for(self, kind: MatterKind, step: Step, court_id: str) -> DeadlineRule:
        """The rule for `step` of a `kind` matter when `court_id` must act (its province's, else the statute's)."""
        return self.rules.rule_for_court(kind, step, court_id, self.courts)

    def count(self, start: datetime, amount: int, unit: Unit) -> CountedPeriod:
        """A period from `start`, counted as every deadline here is (`compute_deadline` counts the same way)."""
        return count_period(start_day_of(start), amount, unit, self.calendar)

    def on_submit(self, delegation: Delegation) -> list[TrackedDeadline]:
        return [self._open(delegation, step, delegation.created_at) for step in SUBMIT_STEPS]

    def changes_for(
        self, action: Action, at: datetime, delegation: Delegation, current: Mapping[Step, TrackedDeadline]
    ) -> dict[Step, TrackedDeadline]:
        """The rows `action` (done at `at`, leaving `delegation`) inserts or updates, by step."""
        changes: dict[Step, TrackedDeadline] = {}
        for step in CLOSES.get(action, ()):
            if step in current and current[step].is_live:
                changes[step] = current[step].closed(at)
        for step in CANCELS.get(action, ()):
            if step in current and current[step].is_live:
                changes[step] = current[step].cancelled(at)
        for step in OPENS.get(action, ()):
            changes[step] = self._open(delegation, step, at)
        return changes

    def extended(self, deadline: TrackedDeadline, extension: ExtensionRequest, court_id: str, now: datetime) -> TrackedDeadline:
        """`deadline` moved by `extension` (deadlines.extend), back to OPEN if that puts it in the future."""
        if not deadline.is_live:
            raise FailedPrecondition(
                f"the {deadline.step} deadline is {deadline.status}; only a running deadline can be extended",
                reason="DEADLINE_NOT_OPEN",
                metadata={"step": str(deadline.step), "status": str(deadline.status)},
            )
        moved = extend(self._domain(deadline), extension.amount, extension.unit, extension.reason, self.calendar)
        granted = GrantedExtension(extension.amount, extension.unit, extension.reason, court_id, now)
        status = DeadlineStatus.OPEN if moved.due >= now else deadline.status
        return replace(
            deadline, due_at=moved.due, provisional=moved.provisional, status=status, extensions=(*deadline.extensions, granted)
        )

    def _open(self, delegation: Delegation, step: Step, start: datetime) -> TrackedDeadline:
        # The court that must act decides the province whose rules apply.
        rule = self.rule_for(delegation.matter_kind, step, acting_court_id(delegation, step))
        deadline = compute_deadline(start, rule, self.calendar)
        return TrackedDeadline(step, DeadlineStatus.OPEN, start, deadline.due, deadline.provisional, rule)

    def _domain(self, deadline: TrackedDeadline) -> Deadline:
        """Recomputed from the rule, the start and the extensions, so a calendar year loaded
        since (a provisional deadline) is taken into account."""
        computed = compute_deadline(deadline.start_at, deadline.rule, self.calendar)
        for granted in deadline.extensions:
            computed = extend(computed, granted.amount, granted.unit, granted.reason, self.calendar)
        return computed
