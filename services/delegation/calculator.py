"""ComputeDeadline, the deadline calculator: a period counted exactly as a matter's deadlines are.

The answer comes from `DeadlineBook`, the object that opens every delegation's deadlines (the
ones the deadline scanner then watches): the same rule look-up (`DeadlineBook.rule_for`, the
court's province rule or the statute) and the same count (`delegation.deadlines.count_period`,
CPL art. 85 on the working-day calendar). So a court system that shows "due on" from this
answer never disagrees with the scanner. `rogatory deadline` prints the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime

from google.type import date_pb2
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.calendar import CHINA_TZ, FIRST_KNOWN_YEAR, CalendarDay, DayKind
from delegation.deadlines import CountedPeriod, DeadlineRule, Step, Unit
from delegation.matters import MatterKind
from registry.access import court_id_of
from registry.errors import Violations, parse_enum
from services.delegation.schedule import DeadlineBook
from services.plumbing.fields import enum_name
from services.plumbing.times import datetime_of, timestamp

#: The longest period the calculator counts, per unit: three years, the longest seizure term
#: (民诉法解释 art. 485); beyond that it is a typo.
MAX_PERIOD = {Unit.CALENDAR_DAY: 1100, Unit.WORKING_DAY: 750, Unit.MONTH: 36}
#: Start years the calculator accepts: the working-day calendar begins in 2004.
LAST_START_YEAR = 2099
_EARLIEST_START = datetime(FIRST_KNOWN_YEAR, 1, 1, tzinfo=CHINA_TZ)
_AFTER_LATEST_START = datetime(LAST_START_YEAR + 1, 1, 1, tzinfo=CHINA_TZ)
_HOLIDAY_KINDS = frozenset({DayKind.HOLIDAY, DayKind.ADJUSTED_REST})


@dataclass(frozen=True)
class DeadlineQuestion:
    """A validated ComputeDeadlineRequest: a period to count, or a rule to look up for a matter's step."""

    court_id: str
    start: datetime
    amount: int = 0
    unit: Unit | None = None
    matter_kind: MatterKind | None = None
    step: Step | None = None


def compute(request: pb.ComputeDeadlineRequest, book: DeadlineBook) -> pb.ComputeDeadlineResponse:
    """ComputeDeadline: validate (every violation at once), look the rule up when asked, count, describe."""
    question = read_question(request, book)
    rule: DeadlineRule | None = None
    if question.matter_kind is not None and question.step is not None:
        rule = book.rule_for(question.matter_kind, question.step, question.court_id)
        period = book.count(question.start, rule.amount, rule.unit)
    else:
        assert question.unit is not None
        period = book.count(question.start, question.amount, question.unit)
    return answer(period, rule, book)


def read_question(request: pb.ComputeDeadlineRequest, book: DeadlineBook) -> DeadlineQuestion:
    """Every violation at once: the court, the start, and either a period or a kind and step."""
    violations = Violations()
    court_id = _court(request.court, book, violations)
    start = _start(request, violations)
    question = DeadlineQuestion(court_id or "", start or datetime.now(CHINA_TZ))  # placeholders only on failure
    if request.matter_kind or request.step:
        if request.HasField("period"):
            violations.add("period", "give either period, or matter_kind and step, not both", "PERIOD_OR_RULE")
        kind = parse_enum(MatterKind, enum_name(pb.Delegation.MatterKind, request.matter_kind), "matter_kind", violations)
        step = parse_enum(Step, enum_name(pb.Deadline.Step, request.step), "step", violations)
        question = replace(question, matter_kind=kind, step=step)
    elif request.HasField("period"):
        unit = parse_enum(Unit, enum_name(pb.Period.Unit, request.period.unit), "period.unit", violations)
        if unit is not None and not 1 <= request.period.amount <= MAX_PERIOD[unit]:
            violations.add("period.amount", f"1 to {MAX_PERIOD[unit]} for {unit}", "BAD_AMOUNT")
        question = replace(question, amount=request.period.amount, unit=unit)
    else:
        violations.add("period", "required: the period to count, or matter_kind and step", "REQUIRED")
    violations.raise_if_any()
    return question


def _court(name: str, book: DeadlineBook, violations: Violations) -> str | None:
    if not name:
        violations.add("court", "required: the court that must act, courts/{court}", "REQUIRED")
        return None
    return court_id_of(name, "court", book.courts, violations)


def _start(request: pb.ComputeDeadlineRequest, violations: Violations) -> datetime | None:
    if not request.HasField("start_time"):
        violations.add("start_time", "required: when the period starts", "REQUIRED")
        return None
    start = datetime_of(request.start_time, "start_time")
    # Compared as instants: the last valid Timestamp (9999-12-31 UTC) has no China date to take a year of.
    if not _EARLIEST_START <= start < _AFTER_LATEST_START:
        violations.add("start_time", f"must be in {FIRST_KNOWN_YEAR} to {LAST_START_YEAR} (China time)", "TIME_OUT_OF_RANGE")
        return None
    return start


def answer(period: CountedPeriod, rule: DeadlineRule | None, book: DeadlineBook) -> pb.ComputeDeadlineResponse:
    crossed = period.days_set_by_notice(book.calendar)
    response = pb.ComputeDeadlineResponse(
        due_time=timestamp(period.due(CHINA_TZ)),
        due_date=date_proto(period.due_day),
        provisional=period.provisional,
        provisional_years=sorted(period.assumed_years),
        period=pb.Period(amount=period.amount, unit=pb.Period.Unit.Value(str(period.unit))),
        source=rule.source if rule else "",
        province=(rule.province or "") if rule else "",
        start_date=date_proto(period.start_day),
        holidays=[day_proto(day) for day in crossed if day.kind in _HOLIDAY_KINDS],
        makeup_workdays=[day_proto(day) for day in crossed if day.kind is DayKind.MAKEUP_WORKDAY],
        working_days=period.working_days(book.calendar),
        adjusted_rest_days_are_holidays=book.calendar.treat_adjusted_rest_days_as_holidays,
    )
    if period.due_day != period.last_day:
        response.last_day_shift.CopyFrom(
            pb.ComputeDeadlineResponse.LastDayShift(
                last_day=date_proto(period.last_day),
                moved_to=date_proto(period.due_day),
                rest_days=[day_proto(day) for day in period.passed_over(book.calendar)],
            )
        )
    return response


def date_proto(day: date) -> date_pb2.Date:
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def day_proto(day: CalendarDay) -> pb.CalendarDay:
    return pb.CalendarDay(date=date_proto(day.day), kind=pb.CalendarDay.Kind.Value(str(day.kind)), festival=day.festival)
