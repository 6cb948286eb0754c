"""The working-day calendar of mainland China: weekends, statutory holidays and 调休.

Each year the State Council publishes a holiday notice (国务院办公厅关于某年部分节假日安排的通知)
that gives the days off around each festival and the weekend days worked in exchange
(make-up working days, 调休上班). The PyPI package `chinese-calendar` holds those tables for
the years it knows (2004–2026 in 1.11) and raises NotImplementedError for any other year.
A new year's notice can be added without upgrading the package, as a data file under
`delegation/data/holidays/` (format: that folder's README.md) or through `with_notice`.

Every date falls in one `DayKind`. Which of them are rest days for CPL art. 85 (法定休假日)
is the calendar's business too, because one case is unsettled (see
`treat_adjusted_rest_days_as_holidays`).

Pure domain: no clock, no I/O beyond reading the shipped data files.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import chinese_calendar

from registry.errors import FailedPrecondition

#: China Standard Time. A fixed offset is exact: the PRC has had no daylight saving since 1991,
#: and it spares the domain a tzdata dependency.
CHINA_TZ = timezone(timedelta(hours=8), "CST")

_ONE_DAY = timedelta(days=1)
_PACKAGE_YEARS = range(min(chinese_calendar.holidays).year, max(chinese_calendar.holidays).year + 1)
#: The first year the calendar has a holiday notice for; no period is counted from before it.
FIRST_KNOWN_YEAR = _PACKAGE_YEARS.start


class UnknownCalendarYear(FailedPrecondition):
    """The calendar has no holiday notice for `year`, so it cannot tell working days there."""

    reason = "CALENDAR_YEAR_UNKNOWN"

    def __init__(self, year: int):
        super().__init__(
            f"no State Council holiday notice is loaded for {year}; add one under delegation/data/holidays/",
            metadata={"year": str(year)},
        )
        self.year = year


class CalendarDataError(ValueError):
    """A holiday notice (file or mapping) is malformed; the message names the place and the problem."""


class DayKind(StrEnum):
    WORKDAY = "WORKDAY"  # an ordinary Monday–Friday
    MAKEUP_WORKDAY = "MAKEUP_WORKDAY"  # a Saturday/Sunday worked under the notice (调休上班)
    WEEKEND = "WEEKEND"  # an ordinary Saturday/Sunday (周休日)
    # A day off of a festival period: the statutory days themselves, weekend days inside the
    # period and the weekday given when a statutory day falls on a weekend (补假, 放假办法 art. 6).
    HOLIDAY = "HOLIDAY"
    # A weekday given off only in exchange for a make-up working day (调休休息, `in_lieu`).
    ADJUSTED_REST = "ADJUSTED_REST"

    @property
    def is_working(self) -> bool:
        return self in (DayKind.WORKDAY, DayKind.MAKEUP_WORKDAY)

    @property
    def is_set_by_notice(self) -> bool:
        """A day the holiday notice makes what it is (not the plain week)."""
        return self not in (DayKind.WORKDAY, DayKind.WEEKEND)


class NoticeKind(StrEnum):
    """The `kind` column of a notice file."""

    HOLIDAY = "holiday"
    IN_LIEU = "in_lieu"  # 调休 rest day
    WORKDAY = "workday"  # make-up working day

    @property
    def day_kind(self) -> DayKind:
        return {
            NoticeKind.HOLIDAY: DayKind.HOLIDAY,
            NoticeKind.IN_LIEU: DayKind.ADJUSTED_REST,
            NoticeKind.WORKDAY: DayKind.MAKEUP_WORKDAY,
        }[self]


@dataclass(frozen=True)
class NoticeDay:
    day: date
    kind: NoticeKind
    name: str


@dataclass(frozen=True)
class CalendarDay:
    """One day as the calendar sees it; `festival` names the break it belongs to (春节, 国庆节…),
    "" for plain weekdays and weekends."""

    day: date
    kind: DayKind
    festival: str = ""


@dataclass(frozen=True)
class HolidayNotice:
    """One year's State Council holiday arrangement: every listed day; unlisted days follow the week.

    Entries may fall in the neighbouring years (the New Year break often starts on Dec 30 of
    the year before); they then override that year's entry for the same date.
    """

    year: int
    days: tuple[NoticeDay, ...]
    source: str = ""

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "<mapping>") -> HolidayNotice:
        """`{"year": 2027, "days": [{"date": "2027-01-01", "kind": "holiday", "name": "元旦"}, ...]}`."""
        if not isinstance(data, Mapping) or set(data) - {"year", "days"}:
            raise CalendarDataError(f"{source}: expected an object with keys 'year' and 'days'")
        year = data.get("year")
        if not isinstance(year, int) or isinstance(year, bool):
            raise CalendarDataError(f"{source}: 'year' must be an integer, got {year!r}")
        rows = data.get("days")
        if not isinstance(rows, list):
            raise CalendarDataError(f"{source}: 'days' must be a list")
        days = [_notice_day(row, year, f"{source}: days[{i}]") for i, row in enumerate(rows)]
        return cls._checked(year, days, source)

    @classmethod
    def from_csv(cls, text: str, year: int, source: str = "<csv>") -> HolidayNotice:
        """CSV with the header `date,kind,name`; blank lines and lines starting with # are skipped."""
        lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
        reader = csv.DictReader(io.StringIO("\n".join(lines)))
        if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != ["date", "kind", "name"]:
            raise CalendarDataError(f"{source}: the header must be 'date,kind,name', got {reader.fieldnames}")
        days = [_notice_day(row, year, f"{source}: row {i}") for i, row in enumerate(reader, start=1)]
        return cls._checked(year, days, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | Traversable) -> HolidayNotice:
        """A `<year>.csv` file (the year is the file name) or a `.json` file holding a mapping."""
        name = path.name if isinstance(path, Traversable) else Path(path).name
        text = (path if isinstance(path, Traversable) else Path(path)).read_text(encoding="utf-8")
        stem, _, suffix = name.rpartition(".")
        if suffix == "json":
            try:
                return cls.from_mapping(json.loads(text), source=name)
            except json.JSONDecodeError as exc:
                raise CalendarDataError(f"{name}: not valid JSON: {exc}") from exc
        if suffix == "csv":
            if not (stem.isascii() and stem.isdigit() and len(stem) == 4):
                raise CalendarDataError(f"{name}: a CSV notice must be named <year>.csv, e.g. 2027.csv")
            return cls.from_csv(text, int(stem), source=name)
        raise CalendarDataError(f"{name}: a notice file must end in .csv or .json")

    @classmethod
    def _checked(cls, year: int, days: list[NoticeDay], source: str) -> HolidayNotice:
        seen: set[date] = set()
        for entry in days:
            if entry.day in seen:
                raise CalendarDataError(f"{source}: {entry.day} is listed twice")
            seen.add(entry.day)
        return cls(year, tuple(sorted(days, key=lambda d: d.day)), source)


def _notice_day(row: Any, year: int, where: str) -> NoticeDay:
    if not isinstance(row, Mapping):
        raise CalendarDataError(f"{where}: expected an object with date, kind, name")
    try:
        day = date.fromisoformat(str(row.get("date", "")).strip())
    except ValueError:
        raise CalendarDataError(f"{where}: date {row.get('date')!r} is not YYYY-MM-DD") from None
    raw_kind = str(row.get("kind", "")).strip()
    try:
        kind = NoticeKind(raw_kind)
    except ValueError:
        allowed = ", ".join(k.value for k in NoticeKind)
        raise CalendarDataError(f"{where}: kind {raw_kind!r} must be one of {allowed}") from None
    if abs(day.year - year) > 1:
        raise CalendarDataError(f"{where}: {day} is too far from the notice year {year}")
    weekend = day.weekday() >= 5
    # Make-up working days are always weekend days and 调休 rest days always weekdays.
    if kind is NoticeKind.WORKDAY and not weekend:
        raise CalendarDataError(f"{where}: {day} is a weekday; a make-up 'workday' must be a Saturday or Sunday")
    if kind is NoticeKind.IN_LIEU and weekend:
        raise CalendarDataError(f"{where}: {day} is a weekend day; an 'in_lieu' rest day must be a weekday")
    return NoticeDay(day, kind, str(row.get("name") or "").strip())


NoticeSource = HolidayNotice | Mapping[str, Any] | str | os.PathLike[str] | Traversable


class WorkingCalendar:
    """Working days per the State Council notices, and the rest days of CPL art. 85.

    `treat_adjusted_rest_days_as_holidays` (default True) decides whether a 调休 rest day — a
    weekday off only because a weekend day is worked instead — is a 法定休假日 that pushes
    the end of a period under CPL art. 85. Default True because the whole break the notice
    announces is a day off nationally, courts and registries included, so a period should
    not expire on a day nobody could act; and this errs in favour of the party that must
    act (here: the entrusted court, which the scanner would otherwise urge and escalate).
    False reads 法定休假日 narrowly (statutory days, 补假 and weekends only).
    Ordinary weekends always count as rest days (民法典 art. 203 and court practice read
    法定休假日 as including 周休日); make-up working days never do.
    """

    def __init__(
        self,
        notices: Iterable[HolidayNotice] = (),
        *,
        treat_adjusted_rest_days_as_holidays: bool = True,
        weekend_fallback: bool = False,
    ):
        self._notices: tuple[HolidayNotice, ...] = tuple(notices)
        self._overrides: dict[date, DayKind] = {
            entry.day: entry.kind.day_kind for notice in self._notices for entry in notice.days
        }
        self._festivals: dict[date, str] = {entry.day: entry.name for notice in self._notices for entry in notice.days}
        self._notice_years = frozenset(n.year for n in self._notices)
        self.treat_adjusted_rest_days_as_holidays = treat_adjusted_rest_days_as_holidays
        self.weekend_fallback = weekend_fallback

    # --- construction ------------------------------------------------------------------------

    @classmethod
    def default(cls, *, treat_adjusted_rest_days_as_holidays: bool = True) -> WorkingCalendar:
        """The package tables plus every notice shipped in `delegation/data/holidays/`."""
        return cls(_shipped_notices(), treat_adjusted_rest_days_as_holidays=treat_adjusted_rest_days_as_holidays)

    def with_notice(self, source: NoticeSource) -> WorkingCalendar:
        """A calendar that also knows the notice's year (a HolidayNotice, a mapping or a file path)."""
        notice = source if isinstance(source, HolidayNotice) else _notice_from(source)
        return self._copy(notices=(*self._notices, notice))

    def with_adjusted_rest_days_as_holidays(self, value: bool) -> WorkingCalendar:
        return self._copy(treat_adjusted_rest_days_as_holidays=value)

    def with_weekend_fallback(self) -> WorkingCalendar:
        """A view that treats unknown years as Monday–Friday working weeks instead of raising.

        Only for provisional deadlines, which must say they were computed this way.
        """
        return self._copy(weekend_fallback=True)

    def _copy(self, **changes: Any) -> WorkingCalendar:
        settings: dict[str, Any] = {
            "notices": self._notices,
            "treat_adjusted_rest_days_as_holidays": self.treat_adjusted_rest_days_as_holidays,
            "weekend_fallback": self.weekend_fallback,
        }
        settings.update(changes)
        notices = settings.pop("notices")
        return WorkingCalendar(notices, **settings)

    # --- single days -----------------------------------------------------------------------------

    def knows(self, year: int) -> bool:
        """True when the package or a loaded notice covers `year` (never changed by the fallback)."""
        return year in _PACKAGE_YEARS or year in self._notice_years

    def day_kind(self, day: date) -> DayKind:
        """What the notices make of `day`; UnknownCalendarYear for an unknown year (unless fallback)."""
        if day in self._overrides:
            return self._overrides[day]
        if not self.knows(day.year) and not self.weekend_fallback:
            raise UnknownCalendarYear(day.year)
        return _package_kind(day)

    def is_working_day(self, day: date) -> bool:
        return self.day_kind(day).is_working

    def describe(self, day: date) -> CalendarDay:
        """`day`'s kind and, for a day the notice sets, the festival it belongs to."""
        kind = self.day_kind(day)
        if not kind.is_set_by_notice:
            return CalendarDay(day, kind)
        festival = self._festivals[day] if day in self._overrides else _package_festival(day)
        return CalendarDay(day, kind, festival)

    def describe_days(self, first: date, last: date) -> list[CalendarDay]:
        """Every day d with first <= d <= last, in order (empty when last < first)."""
        return [self.describe(day) for day in _days(first, last)]

    def days_set_by_notice(self, first: date, last: date) -> list[CalendarDay]:
        """The holidays, 调休 rest days and make-up working days d with first <= d <= last, in order."""
        return [day for day in self.describe_days(first, last) if day.kind.is_set_by_notice]

    def is_statutory_holiday(self, day: date) -> bool:
        """Whether `day` is a 法定休假日 for CPL art. 85 (rest day that pushes a period's end).

        Weekends and festival days are; make-up working days are not; 调休 rest days follow
        `treat_adjusted_rest_days_as_holidays`.
        """
        kind = self.day_kind(day)
        if kind is DayKind.ADJUSTED_REST:
            return self.treat_adjusted_rest_days_as_holidays
        return kind in (DayKind.HOLIDAY, DayKind.WEEKEND)

    # --- periods --------------------------------------------------------------------------------

    def end_of_period(self, last_day: date) -> date:
        """CPL art. 85 (民法典 art. 203): a period whose last day is a 法定休假日 ends on the
        first day after it. Taken literally: with the switch off, that first day can be a
        调休 rest day (not a working day); with it on it is always the next working day.
        """
        day = last_day
        while self.is_statutory_holiday(day):
            day += _ONE_DAY
        return day

    def add_working_days(self, start: date, n: int) -> date:
        """The n-th working day after `start` (`start` itself is not counted, CPL art. 85); n=0 → start."""
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        day = start
        for _ in range(n):
            day = self.next_working_day(day)
        return day

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        day += _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def working_days_in(self, first: date, last: date) -> int:
        """Number of working days d with first <= d <= last (0 when last < first)."""
        return sum(1 for day in _days(first, last) if self.is_working_day(day))

    def working_days_between(self, a: date | datetime, b: date | datetime, *, tz: timezone = CHINA_TZ) -> float:
        """Working time elapsed from `a` to `b`, in working days, for turnaround statistics.

        Precisely: the length of the interval [a, b) that falls on working days (in `tz`),
        divided by 24 h. A date stands for 00:00 of that day, so for dates the result is the
        number of working days d with a <= d < b. Examples: Fri 17:00 → Mon 09:00 = 16 h = 0.667;
        Fri 2023-01-20 00:00 → Mon 2023-01-30 00:00 = 3.0 (Fri plus the two make-up days of 春节).
        Datetimes must be timezone-aware; ValueError when b is before a.
        """
        start, end = _instant(a, tz), _instant(b, tz)
        if end < start:
            raise ValueError(f"b ({b}) is before a ({a})")
        worked = timedelta()
        for day in _days(start.date(), end.date()):
            if self.is_working_day(day):
                day_start = datetime.combine(day, time.min, tzinfo=tz)
                worked += min(end, day_start + _ONE_DAY) - max(start, day_start)
        return worked / _ONE_DAY


def _package_kind(day: date) -> DayKind:
    # chinese-calendar: `workdays` = make-up days; `holidays` = every day off of a break,
    # of which `in_lieu_days` are the 调休 ones. Outside its years only the week applies.
    if day in chinese_calendar.workdays:
        return DayKind.MAKEUP_WORKDAY
    if day in chinese_calendar.in_lieu_days:
        return DayKind.ADJUSTED_REST
    if day in chinese_calendar.holidays:
        return DayKind.HOLIDAY
    return DayKind.WEEKEND if day.weekday() >= 5 else DayKind.WORKDAY


#: chinese-calendar names its festivals in English; the notices name them in Chinese.
_FESTIVAL_NAMES: dict[str, str] = {
    str(holiday.value): str(getattr(holiday, "chinese", holiday.value)) for holiday in chinese_calendar.Holiday
}


def _package_festival(day: date) -> str:
    english = str(chinese_calendar.holidays.get(day) or chinese_calendar.workdays.get(day) or "")
    return _FESTIVAL_NAMES.get(english, english)


def _days(first: date, last: date) -> Iterator[date]:
    day = first
    while day <= last:
        yield day
        day += _ONE_DAY


def _instant(value: date | datetime, tz: timezone) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{value} is naive; pass a timezone-aware datetime")
        return value.astimezone(tz)
    return datetime.combine(value, time.min, tzinfo=tz)


def _notice_from(source: Mapping[str, Any] | str | os.PathLike[str] | Traversable) -> HolidayNotice:
    if isinstance(source, Mapping):
        return HolidayNotice.from_mapping(source)
    return HolidayNotice.load(source)


@functools.cache
def _shipped_notices() -> tuple[HolidayNotice, ...]:
    folder = resources.files("delegation") / "data" / "holidays"
    if not folder.is_dir():
        return ()
    files = sorted((f for f in folder.iterdir() if f.name.endswith((".csv", ".json"))), key=lambda f: f.name)
    return tuple(HolidayNotice.load(f) for f in files)
