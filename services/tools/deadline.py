"""`rogatory deadline`: the deadline calculator on the command line.

It asks exactly what a court system asks ComputeDeadline (the same request message) and answers
with the service's own code (`services.delegation.calculator` on the shipped deadline book), so
it needs no running stack and never disagrees with the service or the deadline scanner.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from google.protobuf import json_format
from google.type import date_pb2
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.calendar import CHINA_TZ
from services.plumbing.times import timestamp

_UNIT_WORDS = {"CALENDAR_DAY": "calendar day(s)", "WORKING_DAY": "working day(s)", "MONTH": "month(s)"}
_KIND_WORDS = {
    "HOLIDAY": "holiday",
    "ADJUSTED_REST": "调休 rest day",
    "WEEKEND": "weekend",
    "MAKEUP_WORKDAY": "make-up working day",
}
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--court", required=True, help="the court that must act: courts/ha0122 or ha0122 (its province's rules)")
    parser.add_argument(
        "--start", required=True, type=start_instant, help="when the period starts: 2023-09-15 (China time) or an ISO instant"
    )
    parser.add_argument("--period", type=whole_number, metavar="N", help="count N units (with --unit)")
    parser.add_argument("--unit", type=str.upper, choices=list(_UNIT_WORDS), help="the unit of --period")
    parser.add_argument(
        "--kind", type=str.upper, help="count the rule's period for this matter kind (with --step), e.g. DEPOSITS"
    )
    parser.add_argument("--step", type=str.upper, help="the step whose rule to count, e.g. START, FINISH, SUPPLEMENT")
    parser.add_argument("--json", action="store_true", help="print the ComputeDeadlineResponse as JSON (ProtoJSON)")


def whole_number(text: str) -> int:
    """A count in ASCII digits (int() would also read ٣ or ３ as 3)."""
    if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
        raise argparse.ArgumentTypeError(f"a whole number in digits 0-9, got {text!r}")
    return int(text)


def start_instant(text: str) -> datetime:
    """A date is the start of that day in China; an instant needs its UTC offset."""
    if len(text) == 10:
        return datetime.combine(date.fromisoformat(text), time.min, tzinfo=CHINA_TZ)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a date (2023-09-15) or an instant with a UTC offset (2023-09-15T10:00+08:00)")
    return value


def request_of(args: argparse.Namespace) -> pb.ComputeDeadlineRequest:
    """The request a court system would send; unknown names reach the service's validation as numbers it rejects."""
    court = args.court if args.court.startswith("courts/") else f"courts/{args.court}"
    request = pb.ComputeDeadlineRequest(court=court, start_time=timestamp(args.start))
    if args.period is not None or args.unit:
        request.period.CopyFrom(pb.Period(amount=args.period or 0, unit=_value(pb.Period.Unit, args.unit)))
    if args.kind:
        request.matter_kind = _value(pb.Delegation.MatterKind, args.kind)
    if args.step:
        request.step = _value(pb.Deadline.Step, args.step)
    return request


def _value(enum: object, name: str | None) -> int:
    try:
        return int(enum.Value(name)) if name else 0  # type: ignore[attr-defined]
    except ValueError:
        return -1  # not a value of the enum: refused by the service's validation, which lists the allowed names


def render(response: pb.ComputeDeadlineResponse, *, as_json: bool) -> str:
    if as_json:
        return json.dumps(json_format.MessageToDict(response), ensure_ascii=False, indent=2)
    unit = pb.Period.Unit.Name(response.period.unit)
    lines = [
        f"period:      {response.period.amount} {_UNIT_WORDS[unit]} from {_day(response.start_date)} (that day not counted)",
        f"rule:        {_rule(response)}",
        f"due:         {_day(response.due_date)} 23:59:59 China time"
        + (
            f"  PROVISIONAL: no holiday notice yet for {', '.join(map(str, response.provisional_years))}"
            if response.provisional
            else ""
        ),
        f"holidays:    {_days(response.holidays)}",
        f"make-up working days (调休): {_days(response.makeup_workdays)}",
    ]
    if response.HasField("last_day_shift"):
        shift = response.last_day_shift
        lines.append(
            f"CPL art. 85: the last day {_day(shift.last_day)} is a rest day ({_days(shift.rest_days)}); "
            f"the period ends on the first day after it, {_day(shift.moved_to)}"
        )
    else:
        lines.append("CPL art. 85: the last day is not a rest day, nothing moved")
    lines.append(f"working days in the period: {response.working_days}")
    return "\n".join(lines)


def _rule(response: pb.ComputeDeadlineResponse) -> str:
    if not response.source:
        return "the period given"
    return f"{response.source} ({f'province {response.province}' if response.province else 'national'})"


def _day(value: date_pb2.Date) -> str:
    day = date(value.year, value.month, value.day)
    return f"{day.isoformat()} ({_WEEKDAYS[day.weekday()]})"


def _days(days: Iterable[pb.CalendarDay]) -> str:
    """Runs of consecutive days of one kind and festival: `2023-10-01 (Sun)..2023-10-04 (Wed) 国庆节 holiday`."""
    runs: list[list[pb.CalendarDay]] = []
    for day in days:
        last = runs[-1][-1] if runs else None
        if last and (last.kind, last.festival) == (day.kind, day.festival) and _date(day) == _date(last) + timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    return "; ".join(_run(run) for run in runs) or "none"


def _run(run: list[pb.CalendarDay]) -> str:
    span = _day(run[0].date) if len(run) == 1 else f"{_day(run[0].date)}..{_day(run[-1].date)}"
    kind = pb.CalendarDay.Kind.Name(run[0].kind)
    return " ".join(part for part in (span, run[0].festival, _KIND_WORDS.get(kind, kind.lower())) if part)


def _date(day: pb.CalendarDay) -> date:
    return date(day.date.year, day.date.month, day.date.day)
