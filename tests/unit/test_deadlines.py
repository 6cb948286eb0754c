"""Deadline rules and CPL art. 85 counting (delegation/deadlines.py): DOMAIN.md "Deadlines"."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.deadlines import (
    STATUTORY_RULES,
    Deadline,
    DeadlineRule,
    RuleConfigError,
    RuleTable,
    Step,
    Unit,
    add_months,
    compute_deadline,
    days_overdue,
    due_soon,
    extend,
    is_overdue,
)
from delegation.matters import MatterKind
from registry.courts import CourtCatalog

START_15 = DeadlineRule(None, Step.START, 15, Unit.CALENDAR_DAY, "CPL art. 240")


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar.default()


def cst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


def due_on(day: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.max, tzinfo=CHINA_TZ)


def rule(amount: int, unit: Unit) -> DeadlineRule:
    return DeadlineRule(None, Step.FINISH, amount, unit, "test")


# --- the rule table -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "step", "amount", "cited"),
    [
        (MatterKind.DEPOSITS, Step.START, 15, "art. 240"),
        (MatterKind.DEPOSITS, Step.REPORT_STATUS, 30, "art. 240"),
        (MatterKind.EQUITY, Step.FINISH, 30, "art. 5"),
        (MatterKind.SERVICE_OF_DOCUMENTS, Step.FINISH, 7, "art. 10"),
        (MatterKind.REAL_ESTATE_OR_REGISTERED_MOVABLES, Step.SUPPLEMENT, 30, "art. 8"),
        (MatterKind.OTHER, Step.ACKNOWLEDGE, 7, "art. 7"),
    ],
)
def test_statutory_defaults(kind: MatterKind, step: Step, amount: int, cited: str) -> None:
    found = RuleTable.statutory().rule_for(kind, step, "浙")
    assert (found.amount, found.unit, found.province) == (amount, Unit.CALENDAR_DAY, None)
    assert cited in found.source


def test_unverified_working_day_rule_is_not_a_national_default() -> None:
    assert all(r.unit is Unit.CALENDAR_DAY for r in STATUTORY_RULES)
    shipped = RuleTable.default()
    assert {r for r in shipped if r.province is None} == set(STATUTORY_RULES)


def test_rules_must_be_positive_and_cited() -> None:
    with pytest.raises(ValueError):
        DeadlineRule(None, Step.START, 0, Unit.CALENDAR_DAY, "x")
    with pytest.raises(ValueError):
        DeadlineRule(None, Step.START, 5, Unit.CALENDAR_DAY, " ")


OVERRIDES = """
[[provinces."浙"]]
step = "FINISH"
amount = 5
unit = "WORKING_DAY"
source = "浙江高院 事项委托 practice [fixture]"

[[provinces."浙"]]
kind = "DEPOSITS"
step = "FINISH"
amount = 3
unit = "WORKING_DAY"
source = "浙江高院 deposits [fixture]"
"""


@pytest.fixture(scope="module")
def table(tmp_path_factory: pytest.TempPathFactory) -> RuleTable:
    path = tmp_path_factory.mktemp("rules") / "deadline_overrides.toml"
    path.write_text(OVERRIDES, encoding="utf-8")
    return RuleTable.statutory().with_overrides_from(path)


def test_province_override_beats_the_default(table: RuleTable) -> None:
    zhejiang = table.rule_for(MatterKind.EQUITY, Step.FINISH, "浙")
    assert (zhejiang.amount, zhejiang.unit, zhejiang.province) == (5, Unit.WORKING_DAY, "浙")
    guangdong = table.rule_for(MatterKind.EQUITY, Step.FINISH, "粤")
    assert (guangdong.amount, guangdong.unit, guangdong.province) == (30, Unit.CALENDAR_DAY, None)
    assert table.rule_for(MatterKind.EQUITY, Step.START, "浙").amount == 15  # other steps keep the default


def test_most_specific_rule_wins(table: RuleTable) -> None:
    assert table.rule_for(MatterKind.DEPOSITS, Step.FINISH, "浙").amount == 3  # (province, kind)
    assert table.rule_for(MatterKind.SERVICE_OF_DOCUMENTS, Step.FINISH, "浙").amount == 5  # (province, *)
    assert table.rule_for(MatterKind.SERVICE_OF_DOCUMENTS, Step.FINISH, "粤").amount == 7  # (national, kind)
    assert table.rule_for(MatterKind.SERVICE_OF_DOCUMENTS, Step.FINISH).amount == 7


def test_rule_for_court_uses_the_courts_province(table: RuleTable) -> None:
    courts = CourtCatalog.default()
    assert table.rule_for_court(MatterKind.DEPOSITS, Step.FINISH, "zj0326", courts).province == "浙"
    assert table.rule_for_court(MatterKind.DEPOSITS, Step.FINISH, "gd0112", courts).province is None


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ('kind = "CARS"\nstep = "FINISH"\namount = 5\nunit = "WORKING_DAY"\nsource = "s"', "kind: unknown MatterKind 'CARS'"),
        ('step = "CLOSE"\namount = 5\nunit = "WORKING_DAY"\nsource = "s"', "step: unknown Step 'CLOSE'"),
        ('step = "FINISH"\namount = 5\nunit = "HOUR"\nsource = "s"', "unit: unknown Unit 'HOUR'"),
        ('step = "FINISH"\namount = 0\nunit = "WORKING_DAY"\nsource = "s"', "amount: must be a positive integer"),
        ('step = "FINISH"\namount = 5\nunit = "WORKING_DAY"', "source: required"),
        ('step = "FINISH"\namount = 5\nunit = "WORKING_DAY"\nsource = "s"\ndays = 3', "unknown keys ['days']"),
    ],
)
def test_bad_override_entry_names_the_problem(tmp_path: Path, entry: str, problem: str) -> None:
    path = tmp_path / "overrides.toml"
    path.write_text(f'[[provinces."浙"]]\n{entry}\n', encoding="utf-8")
    with pytest.raises(RuleConfigError) as caught:
        RuleTable.statutory().with_overrides_from(path)
    message = str(caught.value)
    assert message.startswith("overrides.toml: ") and 'provinces."浙"[0]' in message and problem in message


def test_bad_override_file_shapes_are_refused() -> None:
    entry = 'step = "FINISH"\namount = 5\nunit = "WORKING_DAY"\nsource = "s"\n'
    with pytest.raises(RuleConfigError, match="unknown province abbreviation '蒙'"):
        RuleTable.statutory().with_overrides_from_text(f'[[provinces."蒙"]]\n{entry}')
    with pytest.raises(RuleConfigError, match="two rules for kind=\\* step=FINISH"):
        RuleTable.statutory().with_overrides_from_text(f'[[provinces."浙"]]\n{entry}[[provinces."浙"]]\n{entry}')
    with pytest.raises(RuleConfigError, match="not valid TOML"):
        RuleTable.statutory().with_overrides_from_text("[[provinces.")
    with pytest.raises(RuleConfigError, match="array of tables"):
        RuleTable.statutory().with_overrides_from_text(f'[provinces."浙"]\n{entry}')


# --- CPL art. 85 counting -----------------------------------------------------------------------------


def test_start_day_is_not_counted_and_the_due_is_the_end_of_the_last_day(cal: WorkingCalendar) -> None:
    deadline = compute_deadline(cst("2023-03-01T10:00"), START_15, cal)
    assert deadline.due == due_on("2023-03-16")
    assert deadline.due.utcoffset() == timedelta(hours=8)
    assert not deadline.provisional and deadline.computed_with_years == {2023}


def test_start_day_is_the_china_date_of_the_start_instant(cal: WorkingCalendar) -> None:
    # 2023-02-28 23:30 UTC is already 2023-03-01 07:30 in China
    late_utc = datetime(2023, 2, 28, 23, 30, tzinfo=UTC)
    assert compute_deadline(late_utc, START_15, cal).due == due_on("2023-03-16")
    with pytest.raises(ValueError):
        compute_deadline(datetime(2023, 3, 1, 10), START_15, cal)  # naive


def test_last_day_on_a_weekend_moves_to_monday(cal: WorkingCalendar) -> None:
    assert compute_deadline(cst("2023-03-03T10:00"), START_15, cal).due == due_on("2023-03-20")


def test_15_days_ending_in_national_day_2023_end_on_the_make_up_saturday(cal: WorkingCalendar) -> None:
    # Last day 09-30 lies in the break 09-29..10-06: the first day after the break is 10-07,
    # a Saturday worked under the notice, so the period ends there and not on Monday 10-09.
    deadline = compute_deadline(cst("2023-09-15T10:00"), START_15, cal)
    assert deadline.due == due_on("2023-10-07") and deadline.due.weekday() == 5
    # A last day that is itself the make-up Saturday is not moved.
    assert compute_deadline(cst("2023-09-22T10:00"), START_15, cal).due == due_on("2023-10-07")


def test_adjusted_rest_day_switch_changes_the_result(cal: WorkingCalendar) -> None:
    start = cst("2023-09-20T10:00")  # last day 10-05, a 调休 rest day
    assert compute_deadline(start, START_15, cal).due == due_on("2023-10-07")
    narrow = cal.with_adjusted_rest_days_as_holidays(False)
    assert compute_deadline(start, START_15, narrow).due == due_on("2023-10-05")


def test_service_of_documents_has_seven_days(cal: WorkingCalendar) -> None:
    service = RuleTable.default().rule_for(MatterKind.SERVICE_OF_DOCUMENTS, Step.FINISH)
    assert compute_deadline(cst("2023-03-01T09:00"), service, cal).due == due_on("2023-03-08")
    # last day 05-01 in 劳动节 04-29..05-03 → 05-04
    assert compute_deadline(cst("2023-04-24T09:00"), service, cal).due == due_on("2023-05-04")


def test_working_day_period_across_spring_festival_counts_make_up_days(cal: WorkingCalendar) -> None:
    five = rule(5, Unit.WORKING_DAY)
    # 01-20 (1), break 01-21..27, Sat 01-28 (2), Sun 01-29 (3), 01-30 (4), 01-31 (5)
    assert compute_deadline(cst("2023-01-19T15:00"), five, cal).due == due_on("2023-01-31")
    assert compute_deadline(cst("2024-02-08T15:00"), rule(3, Unit.WORKING_DAY), cal).due == due_on("2024-02-19")


def test_month_periods_clamp_to_the_end_of_the_month(cal: WorkingCalendar) -> None:
    one_month = rule(1, Unit.MONTH)
    assert compute_deadline(cst("2023-01-31T10:00"), one_month, cal).due == due_on("2023-02-28")
    assert compute_deadline(cst("2024-01-31T10:00"), one_month, cal).due == due_on("2024-02-29")
    assert compute_deadline(cst("2023-09-01T10:00"), one_month, cal).due == due_on("2023-10-07")  # 10-01 in 国庆
    assert add_months(date(2023, 12, 31), 2) == date(2024, 2, 29)
    assert add_months(date(2023, 3, 15), 12) == date(2024, 3, 15)


# --- provisional deadlines ----------------------------------------------------------------------------

NOTICE_2099 = {
    "year": 2099,
    "days": [
        *({"date": f"2099-10-0{d}", "kind": "holiday", "name": "国庆"} for d in range(1, 6)),
        {"date": "2099-10-06", "kind": "in_lieu", "name": "国庆"},
        {"date": "2099-10-07", "kind": "in_lieu", "name": "国庆"},
        {"date": "2099-09-26", "kind": "workday", "name": "国庆"},
        {"date": "2099-10-10", "kind": "workday", "name": "国庆"},
    ],
}


def test_unknown_year_gives_a_provisional_deadline_recomputed_once_the_notice_is_loaded(cal: WorkingCalendar) -> None:
    provisional = compute_deadline(cst("2099-09-16T10:00"), START_15, cal)
    assert provisional.provisional and provisional.assumed_years == {2099}
    assert provisional.due == due_on("2099-10-01")  # a Thursday by the week alone
    assert provisional.recompute(cal) == provisional  # still unknown, still provisional

    known = cal.with_notice(NOTICE_2099)
    final = provisional.recompute(known)
    assert not final.provisional and final.assumed_years == frozenset() and final.computed_with_years == {2099}
    assert final.due == due_on("2099-10-08")  # first day after the break 10-01..10-07
    narrow = known.with_adjusted_rest_days_as_holidays(False)
    assert provisional.recompute(narrow).due == due_on("2099-10-06")


def test_provisional_working_days_use_the_notices_make_up_days_after_recompute(cal: WorkingCalendar) -> None:
    three = compute_deadline(cst("2099-09-24T10:00"), rule(3, Unit.WORKING_DAY), cal)
    assert three.provisional and three.due == due_on("2099-09-29")  # Fri 25, Mon 28, Tue 29
    assert three.recompute(cal.with_notice(NOTICE_2099)).due == due_on("2099-09-28")  # Sat 26 is worked


def _weekday_on_or_after(day: date) -> date:
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def test_deadline_crossing_into_the_first_unknown_year(cal: WorkingCalendar, tmp_path: Path) -> None:
    year = next(y for y in itertools.count(2027) if not cal.knows(y))  # 2027 with chinese-calendar 1.11
    deadline = compute_deadline(datetime(year - 1, 12, 20, 10, tzinfo=CHINA_TZ), START_15, cal)
    assert deadline.provisional and deadline.assumed_years == {year} and deadline.computed_with_years == {year}
    assert deadline.due_day == _weekday_on_or_after(date(year, 1, 4))

    notice = tmp_path / f"{year}.csv"
    notice.write_text("date,kind,name\n" + "".join(f"{year}-01-0{d},holiday,fixture\n" for d in range(1, 8)), "utf-8")
    final = deadline.recompute(cal.with_notice(notice))
    assert not final.provisional and final.due_day == _weekday_on_or_after(date(year, 1, 8))


# --- extensions -----------------------------------------------------------------------------------------


def test_extension_counts_from_the_current_due_day_and_is_recorded(cal: WorkingCalendar) -> None:
    deadline = compute_deadline(cst("2023-03-01T10:00"), START_15, cal)  # due 03-16
    longer = extend(deadline, 10, Unit.CALENDAR_DAY, "debtor's property in three provinces", cal)
    assert longer.due == due_on("2023-03-27")  # 03-26 is a Sunday
    assert [(e.amount, e.unit, e.reason) for e in longer.extensions] == [
        (10, Unit.CALENDAR_DAY, "debtor's property in three provinces")
    ]
    again = extend(longer, 2, Unit.WORKING_DAY, "bank closed", cal)
    assert again.due == due_on("2023-03-29") and len(again.extensions) == 2
    assert deadline.extensions == ()  # the original is untouched
    with pytest.raises(ValueError):
        extend(deadline, 5, Unit.CALENDAR_DAY, "  ", cal)
    with pytest.raises(ValueError):
        extend(deadline, 0, Unit.CALENDAR_DAY, "why", cal)


def test_recompute_replays_extensions(cal: WorkingCalendar) -> None:
    provisional = extend(compute_deadline(cst("2099-09-16T10:00"), START_15, cal), 5, Unit.CALENDAR_DAY, "why", cal)
    assert provisional.provisional and provisional.due == due_on("2099-10-06")
    final = provisional.recompute(cal.with_notice(NOTICE_2099))
    assert not final.provisional and final.due == due_on("2099-10-13") and len(final.extensions) == 1


# --- against a clock reading --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def before_national_day(cal: WorkingCalendar) -> Deadline:
    return compute_deadline(cst("2023-09-13T10:00"), START_15, cal)  # due Thu 2023-09-28


def test_due_soon_and_overdue_around_the_last_instant(before_national_day: Deadline) -> None:
    deadline = before_national_day
    assert deadline.due == due_on("2023-09-28")
    warning = timedelta(hours=2)
    assert due_soon(deadline, deadline.due - timedelta(hours=1), warning)
    assert not due_soon(deadline, deadline.due - timedelta(hours=3), warning)
    assert due_soon(deadline, deadline.due, warning) and not is_overdue(deadline, deadline.due)
    after = deadline.due + timedelta(microseconds=1)
    assert is_overdue(deadline, after) and not due_soon(deadline, after, warning)
    with pytest.raises(ValueError):
        is_overdue(deadline, datetime(2023, 9, 29))  # naive


def test_days_overdue_in_working_and_calendar_days(before_national_day: Deadline, cal: WorkingCalendar) -> None:
    deadline = before_national_day
    now = cst("2023-10-09T10:00")
    # 09-29..10-06 closed; 10-07 and 10-08 are make-up working days; 10-09 Monday
    assert days_overdue(deadline, now, cal) == 3
    assert days_overdue(deadline, now, cal, unit=Unit.CALENDAR_DAY) == 11
    assert days_overdue(deadline, cst("2023-10-03T10:00"), cal) == 0  # overdue, but no working day yet
    assert days_overdue(deadline, cst("2023-09-28T23:00"), cal, unit=Unit.CALENDAR_DAY) == 0
