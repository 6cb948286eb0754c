"""Deadlines of a delegated matter: which rule applies, and when it expires.

A `RuleTable` answers "how long does this court have for this step of this kind of matter"
from the statutory defaults of DOMAIN.md, overridden per province by
`delegation/data/deadline_overrides.toml`. `compute_deadline` turns a rule and a start
instant into a `Deadline`, counting as CPL art. 85 says (start day not counted; a period
ending on a 法定休假日 ends on the first day after it) on a `WorkingCalendar`.

A period that reaches into a year with no holiday notice is computed with weekends only and
marked `provisional`; `Deadline.recompute` gives the final date once the notice is loaded.

Pure domain: every instant is an argument, never read from a clock.
"""

from __future__ import annotations

import calendar as _gregorian
import functools
import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from enum import StrEnum
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any, TypeVar

from delegation.calendar import CHINA_TZ, CalendarDay, WorkingCalendar
from delegation.details import MatterKind
from registry.courts import COURT_CODE_PREFIXES, CourtCatalog

E = TypeVar("E", bound=StrEnum)


class Unit(StrEnum):
    CALENDAR_DAY = "CALENDAR_DAY"
    WORKING_DAY = "WORKING_DAY"
    MONTH = "MONTH"


class Step(StrEnum):
    ACKNOWLEDGE = "ACKNOWLEDGE"  # entrusted court accepts and names its officer
    START = "START"  # entrusted court starts executing
    FINISH = "FINISH"  # entrusted court completes the matter
    REPORT_STATUS = "REPORT_STATUS"  # entrusted court reports why it has not finished
    SUPPLEMENT = "SUPPLEMENT"  # requesting court supplies missing materials


class RuleConfigError(ValueError):
    """A deadline override file is malformed; the message names the file, the entry and the problem."""


class NoDeadlineRule(LookupError):
    """The table has no rule for a (kind, step), not even a national one for every kind."""


@dataclass(frozen=True)
class DeadlineRule:
    """`kind` None: every kind. `province` None: national. `source` cites the statute or configuration."""

    kind: MatterKind | None
    step: Step
    amount: int
    unit: Unit
    source: str
    province: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 1:
            raise ValueError(f"amount must be a positive integer, got {self.amount!r}")
        if not self.source.strip():
            raise ValueError("a deadline rule must cite its source")


_CPL_240 = "民事诉讼法 art. 240"
_DELEGATION_RULES = "最高人民法院关于委托执行若干问题的规定 (法释〔2011〕11号)"
_TIME_LIMIT_RULES = "最高人民法院关于严格执行案件审理期限制度的若干规定 (法释〔2000〕29号)"

#: The national defaults of DOMAIN.md. The 事项委托 "5 working days" of 法发〔2017〕27号 is
#: unverified and therefore only ever comes from the per-province override file.
STATUTORY_RULES: tuple[DeadlineRule, ...] = (
    # No statute sets an acknowledgement period for a delegated matter. Acknowledging means
    # naming the officer, which art. 7 requires within 7 days for whole-case delegation;
    # the EU service regulation (2020/1784) also acknowledges within 7 days.
    DeadlineRule(None, Step.ACKNOWLEDGE, 7, Unit.CALENDAR_DAY, f"by analogy: {_DELEGATION_RULES} art. 7"),
    DeadlineRule(None, Step.START, 15, Unit.CALENDAR_DAY, f"{_CPL_240}: start within 15 days of receiving the letter"),
    DeadlineRule(None, Step.REPORT_STATUS, 30, Unit.CALENDAR_DAY, f"{_CPL_240}: report the status if not done in 30 days"),
    DeadlineRule(None, Step.FINISH, 30, Unit.CALENDAR_DAY, f"{_TIME_LIMIT_RULES} art. 5: finish within 30 days"),
    DeadlineRule(
        MatterKind.SERVICE_OF_DOCUMENTS, Step.FINISH, 7, Unit.CALENDAR_DAY, f"{_TIME_LIMIT_RULES} art. 10: serve within 7 days"
    ),
    DeadlineRule(None, Step.SUPPLEMENT, 30, Unit.CALENDAR_DAY, f"{_DELEGATION_RULES} art. 8: else deemed withdrawn"),
)

_RuleKey = tuple[str | None, MatterKind | None, Step]


def _key(rule: DeadlineRule) -> _RuleKey:
    return rule.province, rule.kind, rule.step


class RuleTable:
    """Deadline rules looked up by (kind, step, province), the most specific rule winning.

    Specificity, most specific first: (province, kind) > (province, every kind) >
    (national, kind) > (national, every kind). A province file is deliberate local policy,
    so its every-kind rule beats a national kind-specific one; to keep a national kind rule
    in that province, the file names the kind. The province is that of the court that must
    act (the entrusted court for ACKNOWLEDGE/START/FINISH/REPORT_STATUS).
    """

    def __init__(self, rules: Iterable[DeadlineRule]):
        self._rules: dict[_RuleKey, DeadlineRule] = {}
        for rule in rules:
            if _key(rule) in self._rules:
                raise ValueError(f"two rules for province={rule.province} kind={rule.kind} step={rule.step}")
            self._rules[_key(rule)] = rule

    @classmethod
    def statutory(cls) -> RuleTable:
        return cls(STATUTORY_RULES)

    @classmethod
    def default(cls) -> RuleTable:
        """Statutory defaults plus the shipped `delegation/data/deadline_overrides.toml`."""
        return _default_table()

    def with_overrides(self, rules: Iterable[DeadlineRule]) -> RuleTable:
        """A table where each given rule replaces any rule with the same (province, kind, step)."""
        merged = dict(self._rules)
        merged.update({_key(rule): rule for rule in rules})
        return RuleTable(merged.values())

    def with_overrides_from(self, path: str | os.PathLike[str] | Traversable) -> RuleTable:
        file = path if isinstance(path, Traversable) else Path(path)
        return self.with_overrides_from_text(file.read_text(encoding="utf-8"), source=file.name)

    def with_overrides_from_text(self, text: str, source: str = "<toml>") -> RuleTable:
        return self.with_overrides(parse_overrides(text, source=source))

    def __iter__(self) -> Iterator[DeadlineRule]:
        return iter(self._rules.values())

    def rule_for(self, kind: MatterKind, step: Step, province: str | None = None) -> DeadlineRule:
        candidates: list[_RuleKey] = [(None, kind, step), (None, None, step)]
        if province:
            candidates[:0] = [(province, kind, step), (province, None, step)]
        for candidate in candidates:
            if candidate in self._rules:
                return self._rules[candidate]
        raise NoDeadlineRule(f"no deadline rule for {kind} / {step} (province {province or 'none'})")

    def province_rules(self, kind: MatterKind, step: Step) -> list[DeadlineRule]:
        """The provinces' own rules for `step` of a `kind` matter (each province's winning
        rule, by abbreviation), where a province replaces the national rule."""
        provinces = sorted({rule.province for rule in self._rules.values() if rule.province and rule.step is step})
        found = (self.rule_for(kind, step, province) for province in provinces)
        return [rule for rule in found if rule.province]

    def rule_for_court(self, kind: MatterKind, step: Step, court_id: str, courts: CourtCatalog) -> DeadlineRule:
        """The rule for the court that must act, by its province. KeyError for an unknown court."""
        return self.rule_for(kind, step, courts.province_of(court_id) or None)


# --- the override file ----------------------------------------------------------------------

_ENTRY_KEYS = frozenset({"kind", "step", "amount", "unit", "source"})


def parse_overrides(text: str, source: str = "<toml>") -> list[DeadlineRule]:
    """Province rules from TOML (format: the comment at the top of deadline_overrides.toml).

    Collects every problem and raises one RuleConfigError naming each entry and field.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleConfigError(f"{source}: not valid TOML: {exc}") from exc
    problems: list[str] = []
    if set(data) - {"provinces"}:
        problems.append(f'unknown top-level keys {sorted(set(data) - {"provinces"})}; only [[provinces."<abbr>"]]')
    provinces = data.get("provinces", {})
    rules: list[DeadlineRule] = []
    if isinstance(provinces, dict):
        rules = _province_rules(provinces, problems)
    else:
        problems.append("'provinces' must be a table keyed by province abbreviation")
    problems += _duplicates(rules)
    if problems:
        raise RuleConfigError(f"{source}: " + "; ".join(problems))
    return rules


def _province_rules(provinces: dict[str, Any], problems: list[str]) -> list[DeadlineRule]:
    rules: list[DeadlineRule] = []
    for province, entries in provinces.items():
        where = f'provinces."{province}"'
        if province not in COURT_CODE_PREFIXES:
            problems.append(f"{where}: unknown province abbreviation {province!r}")
            continue
        if not isinstance(entries, list):
            problems.append(f'{where}: must be an array of tables, written [[provinces."{province}"]]')
            continue
        for index, entry in enumerate(entries):
            rule = _override_rule(province, entry, f"{where}[{index}]", problems)
            if rule is not None:
                rules.append(rule)
    return rules


def _override_rule(province: str, entry: Any, where: str, problems: list[str]) -> DeadlineRule | None:
    if not isinstance(entry, Mapping):
        problems.append(f"{where}: must be a table")
        return None
    before = len(problems)
    if set(entry) - _ENTRY_KEYS:
        problems.append(f"{where}: unknown keys {sorted(set(entry) - _ENTRY_KEYS)}; allowed {sorted(_ENTRY_KEYS)}")
    kind = _enum(MatterKind, entry["kind"], f"{where}.kind", problems) if "kind" in entry else None
    step = _enum(Step, entry.get("step"), f"{where}.step", problems)
    unit = _enum(Unit, entry.get("unit"), f"{where}.unit", problems)
    amount, cited = entry.get("amount"), entry.get("source")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
        problems.append(f"{where}.amount: must be a positive integer, got {amount!r}")
    source = cited.strip() if isinstance(cited, str) else ""
    if not source:
        problems.append(f"{where}.source: required, cite the provincial rule or notice")
    if len(problems) > before or step is None or unit is None or not isinstance(amount, int):
        return None
    return DeadlineRule(kind, step, amount, unit, source, province=province)


def _enum(kind: type[E], value: Any, where: str, problems: list[str]) -> E | None:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        problems.append(f"{where}: unknown {kind.__name__} {value!r}; one of {allowed}")
        return None


def _duplicates(rules: list[DeadlineRule]) -> list[str]:
    seen: set[_RuleKey] = set()
    problems: list[str] = []
    for rule in rules:
        if _key(rule) in seen:
            problems.append(f'provinces."{rule.province}": two rules for kind={rule.kind or "*"} step={rule.step}')
        seen.add(_key(rule))
    return problems


@functools.cache
def _default_table() -> RuleTable:
    overrides = resources.files("delegation") / "data" / "deadline_overrides.toml"
    return RuleTable.statutory().with_overrides_from(overrides)


# --- computing deadlines ------------------------------------------------------------------------


@dataclass(frozen=True)
class Extension:
    """An extension granted by the superior court; who granted it is recorded by the caller."""

    amount: int
    unit: Unit
    reason: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 1:
            raise ValueError(f"an extension must be a positive integer, got {self.amount!r}")
        if not self.reason.strip():
            raise ValueError("an extension needs a reason")


@dataclass(frozen=True)
class Deadline:
    """`due` is the last instant (23:59:59.999999 local) of the last day of the period.

    `computed_with_years`: the years whose calendar the computation consulted;
    `assumed_years`: those of them with no notice, counted with weekends only. `provisional`
    is True exactly when `assumed_years` is not empty.
    """

    due: datetime
    provisional: bool
    rule: DeadlineRule
    computed_with_years: frozenset[int]
    start: datetime
    assumed_years: frozenset[int] = frozenset()
    extensions: tuple[Extension, ...] = ()

    @property
    def due_day(self) -> date:
        return self.due.date()

    def recompute(self, calendar: WorkingCalendar) -> Deadline:
        """The same rule and extensions counted on `calendar` (e.g. once a missing year's notice is loaded)."""
        tz = self.due.tzinfo or CHINA_TZ
        deadline = compute_deadline(self.start, self.rule, calendar, tz=tz)
        for extension in self.extensions:
            deadline = _apply(deadline, extension, calendar)
        return deadline


@dataclass(frozen=True)
class CountedPeriod:
    """A period counted as CPL art. 85 says: the one computation behind every deadline
    (`compute_deadline`, `extend`) and behind the deadline calculator, so both always agree.

    `start_day` is not counted. `last_day` is the period's last day by the count; `due_day`
    is where it ends: `last_day` moved past the 法定休假日 it fell on (art. 85), or the same
    day. `years`: the years whose calendar the count consulted; `assumed_years`: those of
    them with no holiday notice, counted by the week alone (the count is provisional).
    """

    start_day: date
    amount: int
    unit: Unit
    last_day: date
    due_day: date
    years: frozenset[int]
    assumed_years: frozenset[int]

    @property
    def provisional(self) -> bool:
        return bool(self.assumed_years)

    def due(self, tz: tzinfo = CHINA_TZ) -> datetime:
        """The last instant of the due day."""
        return _end_of_day(self.due_day, tz)

    def days_set_by_notice(self, calendar: WorkingCalendar) -> list[CalendarDay]:
        """The holidays, 调休 rest days and make-up working days the period crossed (start day excluded)."""
        return calendar.with_weekend_fallback().days_set_by_notice(self.start_day + timedelta(days=1), self.due_day)

    def passed_over(self, calendar: WorkingCalendar) -> list[CalendarDay]:
        """The rest days art. 85 moved the end across: from `last_day` up to the day before `due_day`."""
        return calendar.with_weekend_fallback().describe_days(self.last_day, self.due_day - timedelta(days=1))

    def working_days(self, calendar: WorkingCalendar) -> int:
        """Working days from the day after the start day up to and including the due day."""
        return calendar.with_weekend_fallback().working_days_in(self.start_day + timedelta(days=1), self.due_day)


def count_period(start_day: date, amount: int, unit: Unit, calendar: WorkingCalendar) -> CountedPeriod:
    """`amount` `unit`s from `start_day` (not counted), ending as CPL art. 85 says.

    CALENDAR_DAY: the last day is start day + N; MONTH: the same day of the month N months
    later, or that month's last day (民法典 art. 202); either moves to the first day after a
    法定休假日 on which it falls (`WorkingCalendar.end_of_period`). WORKING_DAY: the N-th
    working day after the start day, which is never a rest day.
    """
    counting = calendar.with_weekend_fallback()  # unknown years: weekends only, reported below
    if unit is Unit.WORKING_DAY:
        first_consulted = start_day + timedelta(days=1)
        last_day = due_day = counting.add_working_days(start_day, amount)
    else:
        last_day = start_day + timedelta(days=amount) if unit is Unit.CALENDAR_DAY else add_months(start_day, amount)
        first_consulted, due_day = last_day, counting.end_of_period(last_day)
    years = frozenset(range(first_consulted.year, due_day.year + 1))
    assumed = frozenset(year for year in years if not calendar.knows(year))
    return CountedPeriod(start_day, amount, unit, last_day, due_day, years, assumed)


def start_day_of(start: datetime, tz: tzinfo = CHINA_TZ) -> date:
    """The (uncounted) day a period starts on: `start`'s date in `tz` (China time)."""
    _require_aware(start, "start")
    return start.astimezone(tz).date()


def compute_deadline(start: datetime, rule: DeadlineRule, calendar: WorkingCalendar, *, tz: tzinfo = CHINA_TZ) -> Deadline:
    """When `rule` expires for a step that began at `start` (timezone-aware): `count_period`
    from the day of `start` in `tz`, which is not counted (CPL art. 85)."""
    period = count_period(start_day_of(start, tz), rule.amount, rule.unit, calendar)
    return Deadline(
        due=period.due(tz),
        provisional=period.provisional,
        rule=rule,
        computed_with_years=period.years,
        start=start,
        assumed_years=period.assumed_years,
    )


def extend(deadline: Deadline, by_amount: int, unit: Unit, reason: str, calendar: WorkingCalendar) -> Deadline:
    """The deadline after the superior court extends it by `by_amount` `unit`s.

    The extension runs from the current due day as its (uncounted) start day, so it is
    counted exactly like the original period and art. 85 applies to its new last day.
    """
    return _apply(deadline, Extension(by_amount, unit, reason.strip()), calendar)


def _apply(deadline: Deadline, extension: Extension, calendar: WorkingCalendar) -> Deadline:
    period = count_period(deadline.due_day, extension.amount, extension.unit, calendar)
    assumed = deadline.assumed_years | period.assumed_years
    return replace(
        deadline,
        due=period.due(deadline.due.tzinfo or CHINA_TZ),
        provisional=bool(assumed),
        computed_with_years=deadline.computed_with_years | period.years,
        assumed_years=assumed,
        extensions=(*deadline.extensions, extension),
    )


def add_months(day: date, months: int) -> date:
    """The same day of the month `months` later, clamped to that month's end (Jan 31 + 1 → Feb 28/29)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = _gregorian.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def _end_of_day(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time.max, tzinfo=tz)


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value}")


# --- checking deadlines against a clock reading -----------------------------------------------------


def is_overdue(deadline: Deadline, now: datetime) -> bool:
    _require_aware(now, "now")
    return now > deadline.due


def due_soon(deadline: Deadline, now: datetime, warning: timedelta) -> bool:
    """True within `warning` before the deadline, up to and including its last instant."""
    _require_aware(now, "now")
    return deadline.due - warning <= now <= deadline.due


def days_overdue(deadline: Deadline, now: datetime, calendar: WorkingCalendar, *, unit: Unit = Unit.WORKING_DAY) -> int:
    """Whole days after the due day up to and including today (in the deadline's time zone); 0 if not overdue.

    WORKING_DAY (default, the figure escalation uses, so a court closed for 春节 is not
    counted late for it) counts working days; an unknown year counts with weekends only.
    CALENDAR_DAY counts every day, like ICOTS' "days overdue".
    """
    if not is_overdue(deadline, now):
        return 0
    today = now.astimezone(deadline.due.tzinfo or CHINA_TZ).date()
    if unit is Unit.CALENDAR_DAY:
        return (today - deadline.due_day).days
    if unit is Unit.WORKING_DAY:
        return calendar.with_weekend_fallback().working_days_in(deadline.due_day + timedelta(days=1), today)
    raise ValueError("days overdue are counted in CALENDAR_DAY or WORKING_DAY")
