"""The deadline calculator (ComputeDeadline, `rogatory deadline`), issue 17 point 4: the 2023 and
2024 holiday periods of DOMAIN.md, CPL art. 85's last-day rule, provisional years, validation,
and the command line. That it agrees with the deadline scanner is
tests/integration/test_deadline_calculator_agreement.py; over gRPC, tests/e2e/test_deadline_calculator_e2e.py.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta

import pytest
from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.calendar import CHINA_TZ
from registry.errors import InvalidArgument
from services.delegation.calculator import compute
from services.delegation.schedule import DeadlineBook
from services.plumbing.times import timestamp
from services.tools.cli import main

COURT = "courts/ha0122"  # 中牟县法院, Henan: no province rule, so the statute applies


@pytest.fixture(scope="module")
def book() -> DeadlineBook:
    return DeadlineBook.default()


def ask(book: DeadlineBook, start: str, amount: int = 0, unit: str = "", **rule: int) -> pb.ComputeDeadlineResponse:
    request = pb.ComputeDeadlineRequest(court=COURT, start_time=timestamp(china(start)), **rule)
    if unit:
        request.period.CopyFrom(pb.Period(amount=amount, unit=pb.Period.Unit.Value(unit)))
    return compute(request, book)


def china(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=CHINA_TZ)


def day(value: object) -> date:
    return date(value.year, value.month, value.day)  # type: ignore[attr-defined]


def days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def dates(items: object) -> list[date]:
    return [day(item.date) for item in items]  # type: ignore[attr-defined]


# --- DOMAIN.md "Counting periods": the 2023 and 2024 State Council notices ------------------------------

# (break, first day off, last day off, make-up working days): DOMAIN.md word for word.
HOLIDAY_PERIODS = [
    ("2023 春节", "2023-01-21", "2023-01-27", ["2023-01-28", "2023-01-29"]),
    ("2023 劳动节", "2023-04-29", "2023-05-03", ["2023-04-23", "2023-05-06"]),
    ("2023 国庆", "2023-09-29", "2023-10-06", ["2023-10-07", "2023-10-08"]),
    ("2024 春节", "2024-02-10", "2024-02-17", ["2024-02-04", "2024-02-18"]),
    ("2024 国庆", "2024-10-01", "2024-10-07", ["2024-09-29", "2024-10-12"]),
]


@pytest.mark.parametrize(("name", "first", "last", "worked"), HOLIDAY_PERIODS, ids=[p[0] for p in HOLIDAY_PERIODS])
def test_a_period_across_a_break_reports_its_days_off_and_make_up_working_days(
    book: DeadlineBook, name: str, first: str, last: str, worked: list[str]
) -> None:
    window_start = min(date.fromisoformat(first), *map(date.fromisoformat, worked)) - timedelta(days=1)
    window_end = max(date.fromisoformat(last), *map(date.fromisoformat, worked))
    answer = ask(book, f"{window_start}T10:00", (window_end - window_start).days, "CALENDAR_DAY")
    assert dates(answer.holidays) == days(first, last), name
    assert dates(answer.makeup_workdays) == [date.fromisoformat(d) for d in worked], name
    assert all(d.kind == pb.CalendarDay.MAKEUP_WORKDAY and d.festival for d in answer.makeup_workdays)
    kinds = {pb.CalendarDay.Kind.Name(d.kind) for d in answer.holidays}
    assert kinds == {"HOLIDAY", "ADJUSTED_REST"}  # every break here swaps weekdays for make-up days
    assert not answer.provisional and not answer.provisional_years


def test_working_days_across_spring_festival_2023_count_the_make_up_weekend(book: DeadlineBook) -> None:
    # 01-20 (1), break 01-21..27, Sat 01-28 (2), Sun 01-29 (3), 01-30 (4), 01-31 (5)
    answer = ask(book, "2023-01-19T15:00", 5, "WORKING_DAY")
    assert day(answer.due_date) == date(2023, 1, 31) and answer.working_days == 5
    assert dates(answer.makeup_workdays) == [date(2023, 1, 28), date(2023, 1, 29)]
    assert not answer.HasField("last_day_shift")  # the n-th working day is never a rest day


def test_working_days_across_national_day_2024_count_the_make_up_saturday(book: DeadlineBook) -> None:
    # Fri 09-27 start; Sun 09-29 (1), Mon 09-30 (2), break 10-01..07, Tue 10-08 (3) … Sat 10-12 (7)
    answer = ask(book, "2024-09-27T09:00", 7, "WORKING_DAY")
    assert day(answer.due_date) == date(2024, 10, 12)
    assert dates(answer.makeup_workdays) == [date(2024, 9, 29), date(2024, 10, 12)]


# --- CPL art. 85: the start day is not counted; a last day on a rest day moves -----------------------


@pytest.mark.parametrize(
    ("start", "last_day", "due"),
    [
        ("2023-01-11", "2023-01-26", "2023-01-28"),  # 春节: ends on the make-up Saturday
        ("2023-04-16", "2023-05-01", "2023-05-04"),  # 劳动节 04-29..05-03
        ("2023-09-15", "2023-09-30", "2023-10-07"),  # 国庆 2023: the make-up Saturday, not Monday 10-09
        ("2024-02-01", "2024-02-16", "2024-02-18"),  # 春节 2024: the make-up Sunday
        ("2024-09-16", "2024-10-01", "2024-10-08"),  # 国庆 2024
        ("2023-03-03", "2023-03-18", "2023-03-20"),  # an ordinary Saturday → Monday
    ],
)
def test_a_last_day_on_a_rest_day_moves_to_the_first_day_after(book: DeadlineBook, start: str, last_day: str, due: str) -> None:
    answer = ask(book, f"{start}T10:00", 15, "CALENDAR_DAY")
    assert day(answer.start_date) == date.fromisoformat(start)
    assert day(answer.due_date) == date.fromisoformat(due)
    shift = answer.last_day_shift
    assert day(shift.last_day) == date.fromisoformat(last_day) and day(shift.moved_to) == date.fromisoformat(due)
    assert dates(shift.rest_days) == days(last_day, (date.fromisoformat(due) - timedelta(days=1)).isoformat())
    assert datetime.fromtimestamp(answer.due_time.seconds, CHINA_TZ) == datetime(
        *map(int, due.split("-")), 23, 59, 59, tzinfo=CHINA_TZ
    )


def test_a_last_day_that_is_a_working_day_does_not_move(book: DeadlineBook) -> None:
    plain = ask(book, "2023-03-01T10:00", 15, "CALENDAR_DAY")  # the start day is not counted: 03-16
    assert day(plain.due_date) == date(2023, 3, 16) and not plain.HasField("last_day_shift")
    makeup = ask(book, "2023-09-22T10:00", 15, "CALENDAR_DAY")  # the last day is the make-up Saturday 10-07
    assert day(makeup.due_date) == date(2023, 10, 7) and not makeup.HasField("last_day_shift")


def test_the_start_day_is_the_china_date_of_the_start_time(book: DeadlineBook) -> None:
    late_utc = ask(book, "2023-02-28T23:30+00:00", 15, "CALENDAR_DAY")  # 2023-03-01 07:30 in China
    assert day(late_utc.start_date) == date(2023, 3, 1) and day(late_utc.due_date) == date(2023, 3, 16)


def test_the_rule_of_a_matter_kinds_step_is_counted_and_cited(book: DeadlineBook) -> None:
    start = ask(book, "2023-09-15T10:00", matter_kind=pb.Delegation.DEPOSITS, step=pb.Deadline.START)
    assert (start.period.amount, start.period.unit) == (15, pb.Period.CALENDAR_DAY)
    assert "art. 240" in start.source and start.province == ""
    assert day(start.due_date) == date(2023, 10, 7)
    service = ask(book, "2023-04-24T09:00", matter_kind=pb.Delegation.SERVICE_OF_DOCUMENTS, step=pb.Deadline.FINISH)
    assert service.period.amount == 7 and "art. 10" in service.source
    assert day(service.due_date) == date(2023, 5, 4)  # last day 05-01 in 劳动节


def test_a_province_rule_applies_to_its_courts() -> None:
    book = DeadlineBook.default()
    rules = book.rules.with_overrides_from_text(
        '[[provinces."豫"]]\nkind = "DEPOSITS"\nstep = "FINISH"\namount = 5\nunit = "WORKING_DAY"\nsource = "豫 test rule"\n'
    )
    henan = DeadlineBook(rules, book.calendar, book.courts)
    answer = ask(henan, "2023-09-27T10:00", matter_kind=pb.Delegation.DEPOSITS, step=pb.Deadline.FINISH)
    assert (answer.province, answer.source, answer.period.unit) == ("豫", "豫 test rule", pb.Period.WORKING_DAY)
    # Thu 09-28 (1), the break 09-29..10-06, Sat 10-07 (2), Sun 10-08 (3), Mon 10-09 (4), Tue 10-10 (5)
    assert day(answer.due_date) == date(2023, 10, 10)
    other = compute(
        pb.ComputeDeadlineRequest(
            court="courts/zj0326",
            start_time=timestamp(china("2023-09-27T10:00")),
            matter_kind=pb.Delegation.DEPOSITS,
            step=pb.Deadline.FINISH,
        ),
        henan,
    )
    assert other.province == "" and other.period.amount == 30  # 浙 has no such rule


def test_the_adjusted_rest_day_switch_is_reported_and_used() -> None:
    book = DeadlineBook.default()
    narrow = DeadlineBook(book.rules, book.calendar.with_adjusted_rest_days_as_holidays(False), book.courts)
    wide_answer, narrow_answer = (
        ask(book, "2023-09-20T10:00", 15, "CALENDAR_DAY"),
        ask(narrow, "2023-09-20T10:00", 15, "CALENDAR_DAY"),
    )
    assert wide_answer.adjusted_rest_days_are_holidays and not narrow_answer.adjusted_rest_days_are_holidays
    assert day(wide_answer.due_date) == date(2023, 10, 7)  # last day 10-05 is a 调休 rest day
    assert day(narrow_answer.due_date) == date(2023, 10, 5) and not narrow_answer.HasField("last_day_shift")


# --- provisional years ----------------------------------------------------------------------------------


def test_a_period_reaching_a_year_without_a_notice_is_provisional(book: DeadlineBook) -> None:
    answer = ask(book, "2099-09-16T10:00", 15, "CALENDAR_DAY")
    assert answer.provisional and list(answer.provisional_years) == [2099]
    assert day(answer.due_date) == date(2099, 10, 1)  # by the week alone
    assert not answer.holidays and not answer.makeup_workdays  # nothing is known of that year


# --- validation ----------------------------------------------------------------------------------------


def violations(request: pb.ComputeDeadlineRequest, book: DeadlineBook) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        compute(request, book)
    return {v.field: v.reason for v in caught.value.violations}


def test_every_problem_of_a_question_is_reported_at_once(book: DeadlineBook) -> None:
    assert violations(pb.ComputeDeadlineRequest(), book) == {"court": "REQUIRED", "start_time": "REQUIRED", "period": "REQUIRED"}
    start = timestamp(china("2023-09-15T10:00"))
    both = pb.ComputeDeadlineRequest(
        court="courts/nowhere", start_time=start, period=pb.Period(amount=3, unit=pb.Period.MONTH), step=pb.Deadline.START
    )
    assert violations(both, book) == {"court": "UNKNOWN_COURT", "period": "PERIOD_OR_RULE", "matter_kind": "REQUIRED"}
    too_long = pb.ComputeDeadlineRequest(court=COURT, start_time=start, period=pb.Period(amount=37, unit=pb.Period.MONTH))
    assert violations(too_long, book) == {"period.amount": "BAD_AMOUNT"}
    no_unit = pb.ComputeDeadlineRequest(court=COURT, start_time=start, period=pb.Period(amount=3))
    assert violations(no_unit, book) == {"period.unit": "REQUIRED"}
    ancient = pb.ComputeDeadlineRequest(
        court=COURT, start_time=timestamp(china("1999-01-01T10:00")), period=pb.Period(amount=3, unit=pb.Period.MONTH)
    )
    assert violations(ancient, book) == {"start_time": "TIME_OUT_OF_RANGE"}


def test_the_last_valid_timestamp_is_out_of_range_not_an_overflow(book: DeadlineBook) -> None:
    """9999-12-31 23:59:59 UTC is a valid Timestamp but has no China date (it is year 10000 there)."""
    last = pb.ComputeDeadlineRequest(court=COURT, period=pb.Period(amount=3, unit=pb.Period.MONTH))
    last.start_time.seconds = 253_402_300_799
    assert violations(last, book) == {"start_time": "TIME_OUT_OF_RANGE"}


# --- rogatory deadline ---------------------------------------------------------------------------------


def test_the_command_line_prints_the_due_date_and_what_it_crossed(capsys: pytest.CaptureFixture[str]) -> None:
    main("deadline --court ha0122 --start 2023-09-15 --kind deposits --step start".split())
    out = capsys.readouterr().out
    assert "due:         2023-10-07 (Sat) 23:59:59 China time" in out
    assert "2023-09-30 (Sat)..2023-10-04 (Wed) 国庆节 holiday" in out
    assert "2023-10-07 (Sat) 国庆节 make-up working day" in out
    assert "CPL art. 85: the last day 2023-09-30 (Sat) is a rest day" in out and "art. 240" in out


def test_the_command_line_prints_json_and_says_provisional(capsys: pytest.CaptureFixture[str]) -> None:
    main("deadline --court courts/zj0326 --start 2099-09-16T10:00+08:00 --period 15 --unit calendar_day --json".split())
    answer = json.loads(capsys.readouterr().out)
    assert answer["dueDate"] == {"year": 2099, "month": 10, "day": 1}
    assert answer["provisional"] is True and answer["provisionalYears"] == [2099]
    main("deadline --court zj0326 --start 2099-09-16 --period 15 --unit CALENDAR_DAY".split())
    assert "PROVISIONAL: no holiday notice yet for 2099" in capsys.readouterr().out


def test_the_command_line_refuses_a_bad_question_with_every_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main("deadline --court nowhere --start 2023-09-15 --period 0 --unit MONTH".split())
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "court: unknown court 'courts/nowhere'" in err and "period.amount: 1 to 36 for MONTH" in err
