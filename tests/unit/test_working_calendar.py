"""The working-day calendar (delegation/calendar.py): DOMAIN.md "Counting periods"."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from delegation.calendar import (
    CHINA_TZ,
    CalendarDataError,
    DayKind,
    HolidayNotice,
    UnknownCalendarYear,
    WorkingCalendar,
)
from registry.errors import FailedPrecondition


@pytest.fixture(scope="module")
def cal() -> WorkingCalendar:
    return WorkingCalendar.default()


def span(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


# The State Council notices as DOMAIN.md states them: (days off, make-up working days).
BREAKS = {
    "2023 春节": (span("2023-01-21", "2023-01-27"), ["2023-01-28", "2023-01-29"]),
    "2023 劳动节": (span("2023-04-29", "2023-05-03"), ["2023-04-23", "2023-05-06"]),
    "2023 国庆": (span("2023-09-29", "2023-10-06"), ["2023-10-07", "2023-10-08"]),
    "2024 春节": (span("2024-02-10", "2024-02-17"), ["2024-02-04", "2024-02-18"]),
    "2024 国庆": (span("2024-10-01", "2024-10-07"), ["2024-09-29", "2024-10-12"]),
}


@pytest.mark.parametrize("name", BREAKS)
def test_days_off_of_each_break_are_rest_days(cal: WorkingCalendar, name: str) -> None:
    days_off, _ = BREAKS[name]
    assert [d for d in days_off if cal.is_working_day(d)] == []
    assert all(cal.is_statutory_holiday(d) for d in days_off)  # default switch: the whole break counts


@pytest.mark.parametrize("name", BREAKS)
def test_make_up_weekend_days_are_working_days(cal: WorkingCalendar, name: str) -> None:
    _, make_up = BREAKS[name]
    days = [date.fromisoformat(d) for d in make_up]
    assert all(d.weekday() >= 5 for d in days)  # they really are Saturdays / Sundays
    assert all(cal.is_working_day(d) and cal.day_kind(d) is DayKind.MAKEUP_WORKDAY for d in days)
    assert not any(cal.is_statutory_holiday(d) for d in days)


def test_day_kinds_separate_statutory_days_from_adjusted_rest_days(cal: WorkingCalendar) -> None:
    assert cal.day_kind(date(2023, 9, 29)) is DayKind.HOLIDAY  # 中秋
    assert cal.day_kind(date(2023, 10, 4)) is DayKind.HOLIDAY  # 补假 for 国庆 on Sunday 10-01
    assert cal.day_kind(date(2023, 10, 5)) is DayKind.ADJUSTED_REST  # 调休, worked back on 10-07
    assert cal.day_kind(date(2023, 10, 6)) is DayKind.ADJUSTED_REST
    assert cal.day_kind(date(2023, 3, 4)) is DayKind.WEEKEND
    assert cal.day_kind(date(2023, 3, 6)) is DayKind.WORKDAY


def test_switch_decides_whether_adjusted_rest_days_are_statutory_holidays(cal: WorkingCalendar) -> None:
    narrow = cal.with_adjusted_rest_days_as_holidays(False)
    adjusted = date(2023, 10, 5)
    assert cal.is_statutory_holiday(adjusted) and not narrow.is_statutory_holiday(adjusted)
    assert WorkingCalendar().is_statutory_holiday(adjusted)  # the documented default: True
    assert not WorkingCalendar.default(treat_adjusted_rest_days_as_holidays=False).is_statutory_holiday(adjusted)
    assert not cal.is_working_day(adjusted) and not narrow.is_working_day(adjusted)  # closed either way
    assert narrow.is_statutory_holiday(date(2023, 10, 4)) and narrow.is_statutory_holiday(date(2023, 3, 4))


def test_known_years_follow_the_package_and_unknown_years_raise(cal: WorkingCalendar) -> None:
    assert all(cal.knows(year) for year in range(2004, 2027))
    assert not cal.knows(2003) and not cal.knows(2099)
    with pytest.raises(UnknownCalendarYear) as caught:
        cal.is_working_day(date(2099, 3, 2))
    assert caught.value.year == 2099 and caught.value.metadata == {"year": "2099"}
    assert isinstance(caught.value, FailedPrecondition) and caught.value.reason == "CALENDAR_YEAR_UNKNOWN"
    with pytest.raises(UnknownCalendarYear):
        cal.add_working_days(date(2003, 12, 30), 1)


def test_weekend_fallback_counts_unknown_years_by_the_week_only(cal: WorkingCalendar) -> None:
    fallback = cal.with_weekend_fallback()
    assert fallback.is_working_day(date(2099, 10, 1))  # a Thursday; no notice says otherwise
    assert not fallback.is_working_day(date(2099, 10, 3))  # Saturday
    assert not fallback.knows(2099)


# --- CPL art. 85 end of period ----------------------------------------------------------------------


def test_end_of_period_moves_past_rest_days_to_the_first_day_after(cal: WorkingCalendar) -> None:
    assert cal.end_of_period(date(2023, 3, 16)) == date(2023, 3, 16)  # a working Thursday stays
    assert cal.end_of_period(date(2023, 3, 18)) == date(2023, 3, 20)  # Saturday → Monday
    assert cal.end_of_period(date(2023, 10, 1)) == date(2023, 10, 7)  # 国庆 → the make-up Saturday
    assert cal.end_of_period(date(2023, 10, 7)) == date(2023, 10, 7)  # a make-up Saturday is no holiday


def test_narrow_reading_ends_on_the_first_adjusted_rest_day(cal: WorkingCalendar) -> None:
    narrow = cal.with_adjusted_rest_days_as_holidays(False)
    assert narrow.end_of_period(date(2023, 10, 1)) == date(2023, 10, 5)  # statutory days and 补假 end 10-04
    assert narrow.end_of_period(date(2023, 10, 6)) == date(2023, 10, 6)


# --- working days -----------------------------------------------------------------------------------


def test_add_working_days_does_not_count_the_start_day(cal: WorkingCalendar) -> None:
    assert cal.add_working_days(date(2023, 3, 6), 1) == date(2023, 3, 7)
    assert cal.add_working_days(date(2023, 3, 6), 0) == date(2023, 3, 6)
    assert cal.add_working_days(date(2023, 3, 10), 1) == date(2023, 3, 13)  # Friday → Monday
    with pytest.raises(ValueError):
        cal.add_working_days(date(2023, 3, 6), -1)


def test_add_working_days_across_spring_festival_uses_make_up_days(cal: WorkingCalendar) -> None:
    # 2023-01-20 (1), break 01-21..27, Sat 01-28 (2), Sun 01-29 (3), 01-30 (4), 01-31 (5)
    assert cal.add_working_days(date(2023, 1, 19), 5) == date(2023, 1, 31)
    # 2024-02-09 (1), break 02-10..17, Sun 02-18 (2), Mon 02-19 (3)
    assert cal.add_working_days(date(2024, 2, 8), 3) == date(2024, 2, 19)
    assert cal.add_working_days(date(2024, 2, 3), 1) == date(2024, 2, 4)  # Sunday 02-04 is worked


def test_working_days_between_dates_counts_from_a_up_to_but_not_including_b(cal: WorkingCalendar) -> None:
    # Fri 01-20 + make-up Sat 01-28 and Sun 01-29; 01-30 is b itself
    assert cal.working_days_between(date(2023, 1, 20), date(2023, 1, 30)) == 3.0
    assert cal.working_days_between(date(2023, 3, 6), date(2023, 3, 6)) == 0.0
    assert cal.working_days_between(date(2023, 3, 6), date(2023, 3, 13)) == 5.0


def test_working_days_between_datetimes_counts_working_hours_in_china_time(cal: WorkingCalendar) -> None:
    friday_evening = datetime(2023, 1, 20, 17, 0, tzinfo=CHINA_TZ)
    make_up_saturday_morning = datetime(2023, 1, 28, 9, 0, tzinfo=CHINA_TZ)
    assert cal.working_days_between(friday_evening, make_up_saturday_morning) == pytest.approx(16 / 24)
    # 08:00 UTC is 16:00 in China: Monday 16:00 → Tuesday 04:00 is 12 working hours
    monday_utc = datetime(2023, 3, 6, 8, 0, tzinfo=UTC)
    assert cal.working_days_between(monday_utc, datetime(2023, 3, 7, 4, 0, tzinfo=CHINA_TZ)) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        cal.working_days_between(make_up_saturday_morning, friday_evening)
    with pytest.raises(ValueError):
        cal.working_days_between(datetime(2023, 3, 6), datetime(2023, 3, 7))  # naive


# --- notices ------------------------------------------------------------------------------------------

NOTICE_2099 = {
    "year": 2099,
    "days": [
        {"date": "2099-10-01", "kind": "holiday", "name": "国庆"},
        {"date": "2099-10-06", "kind": "in_lieu", "name": "国庆"},
        {"date": "2099-10-10", "kind": "workday", "name": "国庆"},
    ],
}


def test_with_notice_adds_a_year_and_leaves_the_original_alone(cal: WorkingCalendar) -> None:
    extended = cal.with_notice(NOTICE_2099)
    assert extended.knows(2099) and not cal.knows(2099)
    assert not extended.is_working_day(date(2099, 10, 1))  # Thursday, holiday
    assert extended.day_kind(date(2099, 10, 6)) is DayKind.ADJUSTED_REST
    assert extended.is_working_day(date(2099, 10, 10))  # Saturday, make-up
    assert extended.is_working_day(date(2099, 10, 2)) and not extended.is_working_day(date(2099, 10, 3))  # unlisted: week
    assert extended.is_working_day(date(2023, 1, 28))  # the package's years are still there


def test_notice_loads_from_a_csv_file_named_by_year(cal: WorkingCalendar, tmp_path: Path) -> None:
    path = tmp_path / "2099.csv"
    path.write_text("# test notice\ndate,kind,name\n2099-10-01,holiday,国庆\n\n2099-10-10,workday,国庆\n", encoding="utf-8")
    extended = cal.with_notice(path)
    assert extended.knows(2099)
    assert not extended.is_working_day(date(2099, 10, 1)) and extended.is_working_day(date(2099, 10, 10))


def test_notice_wins_over_the_package_date_by_date(cal: WorkingCalendar) -> None:
    corrected = cal.with_notice({"year": 2023, "days": [{"date": "2023-03-06", "kind": "holiday", "name": "x"}]})
    assert not corrected.is_working_day(date(2023, 3, 6))
    assert corrected.is_working_day(date(2023, 3, 7)) and not corrected.is_working_day(date(2023, 1, 23))


@pytest.mark.parametrize(
    ("days", "problem"),
    [
        ([{"date": "2099-10-01", "kind": "vacation", "name": ""}], "kind 'vacation'"),
        ([{"date": "2099-13-01", "kind": "holiday", "name": ""}], "is not YYYY-MM-DD"),
        ([{"date": "2099-10-01", "kind": "workday", "name": ""}], "must be a Saturday or Sunday"),
        ([{"date": "2099-10-03", "kind": "in_lieu", "name": ""}], "must be a weekday"),
        ([{"date": "2050-10-01", "kind": "holiday", "name": ""}], "too far from the notice year"),
        ([{"date": "2099-10-01", "kind": "holiday", "name": ""}] * 2, "listed twice"),
    ],
)
def test_bad_notice_entries_are_refused_with_the_problem(days: list[dict[str, str]], problem: str) -> None:
    with pytest.raises(CalendarDataError, match=problem) as caught:
        HolidayNotice.from_mapping({"year": 2099, "days": days}, source="fixture")
    assert str(caught.value).startswith("fixture: ")


def test_bad_notice_files_are_refused(tmp_path: Path) -> None:
    unnamed = tmp_path / "next-year.csv"
    unnamed.write_text("date,kind,name\n", encoding="utf-8")
    with pytest.raises(CalendarDataError, match="named <year>.csv"):
        HolidayNotice.load(unnamed)
    bad_header = tmp_path / "2099.csv"
    bad_header.write_text("day,type\n2099-10-01,holiday\n", encoding="utf-8")
    with pytest.raises(CalendarDataError, match="header"):
        HolidayNotice.load(bad_header)
    bad_row = tmp_path / "2098.csv"
    bad_row.write_text("date,kind,name\n2098-10-01,holiday,国庆\n2098-10-02,off,国庆\n", encoding="utf-8")
    with pytest.raises(CalendarDataError, match=r"2098.csv: row 2: kind 'off'"):
        HolidayNotice.load(bad_row)
