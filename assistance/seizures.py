"""Seizures (查封、冻结) and their terms: 民诉法解释 art. 485.

A seizure comes into being when a freeze or seal takes effect (an agency registered it, or
a queued one (轮候) moved to the front). Its term depends on the asset: deposits 1 year,
movables 2 years, real estate and other property rights 3 years. A renewal (续封/续冻),
confirmed by the agency, adds another term of the same length from the current end
(art. 485: a renewal may not exceed the original term). An unseal/unfreeze releases it;
a term that ends without renewal lapses. Either way the next queued measure on the same
asset takes effect (see `assistance.notice_lifecycle.advance_queue`).

Counting (CPL art. 85): the day the seizure takes effect is not counted; the term ends at
the end (China time) of the same calendar day N years later (29 Feb → 28 Feb).

A delegation that hands over a seized asset needs at least one month of the term left
(委托执行规定 art. 6): `has_at_least_a_month_left`.

Pure domain: every instant is an argument.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from delegation.calendar import CHINA_TZ
from delegation.deadlines import add_months
from delegation.lifecycle import seizure_term_long_enough
from registry.errors import FailedPrecondition

if TYPE_CHECKING:
    from assistance.notice_targets import NoticeTarget


class AssetClass(StrEnum):
    """Names match rogatory.assistance.v1.Seizure.AssetClass."""

    DEPOSITS = "DEPOSITS"
    MOVABLES = "MOVABLES"
    REAL_ESTATE = "REAL_ESTATE"
    RIGHTS = "RIGHTS"


class SeizureState(StrEnum):
    ACTIVE = "ACTIVE"
    RELEASED = "RELEASED"
    LAPSED = "LAPSED"


#: 民诉法解释 art. 485.
TERM_YEARS: dict[AssetClass, int] = {
    AssetClass.DEPOSITS: 1,
    AssetClass.MOVABLES: 2,
    AssetClass.REAL_ESTATE: 3,
    AssetClass.RIGHTS: 3,
}
#: Default lead time of the expiry reminder; configurable per service.
DEFAULT_REMINDER_LEAD = timedelta(days=30)


def seizure_name(court_id: str, seizure_id: str) -> str:
    return f"courts/{court_id}/seizures/{seizure_id}"


def term_end(start: datetime, years: int) -> datetime:
    """The last instant of a term of `years` that starts at `start` (its day not counted)."""
    start_day = start.astimezone(CHINA_TZ).date()
    return _end_of_day(add_months(start_day, 12 * years))


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day, time.max, tzinfo=CHINA_TZ)


def has_at_least_a_month_left(expires_at: datetime, now: datetime) -> bool:
    """Whether the term still runs a full calendar month after `now` (China time); the rule
    the delegation service applies when seized property is handed over."""
    return seizure_term_long_enough(expires_at, now)


@dataclass(frozen=True)
class Seizure:
    id: str
    court_id: str
    case_name: str
    agency_id: str
    notice_name: str  # the notice that put it in place
    target: NoticeTarget
    asset_class: AssetClass
    asset_key: str
    effective_at: datetime
    expires_at: datetime
    amount_fen: int | None = None
    state: SeizureState = SeizureState.ACTIVE
    renewal_count: int = 0
    ended_at: datetime | None = None
    reminded_for: datetime | None = None  # the expiry the last reminder was about
    version: int = 1
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        return seizure_name(self.court_id, self.id)

    @property
    def term_years(self) -> int:
        return TERM_YEARS[self.asset_class]


def take_effect(
    *,
    seizure_id: str,
    court_id: str,
    case_name: str,
    agency_id: str,
    notice_name: str,
    target: NoticeTarget,
    asset_class: AssetClass,
    asset_key: str,
    amount_fen: int | None,
    now: datetime,
) -> Seizure:
    return Seizure(
        id=seizure_id,
        court_id=court_id,
        case_name=case_name,
        agency_id=agency_id,
        notice_name=notice_name,
        target=target,
        asset_class=asset_class,
        asset_key=asset_key,
        effective_at=now,
        expires_at=term_end(now, TERM_YEARS[asset_class]),
        amount_fen=amount_fen,
        updated_at=now,
    )


def _require_active(seizure: Seizure, what: str) -> None:
    if seizure.state is not SeizureState.ACTIVE:
        raise FailedPrecondition(
            f"cannot {what} {seizure.name}: it is {seizure.state}",
            reason="SEIZURE_NOT_ACTIVE",
            metadata={"seizure": seizure.name, "state": str(seizure.state)},
        )


def renew(seizure: Seizure, now: datetime, amount_fen: int | None = None) -> Seizure:
    """The agency confirmed a renewal before the term ended: one more term from the current end."""
    _require_active(seizure, "renew")
    if now > seizure.expires_at:
        raise FailedPrecondition(
            f"{seizure.name} ended at {seizure.expires_at.isoformat()}; a lapsed seizure is not renewed",
            reason="SEIZURE_EXPIRED",
            metadata={"seizure": seizure.name},
        )
    return replace(
        seizure,
        expires_at=term_end(seizure.expires_at, seizure.term_years),
        renewal_count=seizure.renewal_count + 1,
        amount_fen=amount_fen if amount_fen is not None else seizure.amount_fen,
        version=seizure.version + 1,
        updated_at=now,
    )


def release(seizure: Seizure, now: datetime) -> Seizure:
    _require_active(seizure, "release")
    return replace(seizure, state=SeizureState.RELEASED, ended_at=now, version=seizure.version + 1, updated_at=now)


def lapse(seizure: Seizure, now: datetime) -> Seizure:
    _require_active(seizure, "lapse")
    if now <= seizure.expires_at:
        raise FailedPrecondition(f"{seizure.name} has not reached its end", reason="SEIZURE_NOT_EXPIRED")
    return replace(seizure, state=SeizureState.LAPSED, ended_at=now, version=seizure.version + 1, updated_at=now)


def reminder_due(seizure: Seizure, now: datetime, lead: timedelta) -> bool:
    """An active seizure within `lead` of its end that has not been reminded about this end yet."""
    return (
        seizure.state is SeizureState.ACTIVE
        and seizure.expires_at - lead <= now <= seizure.expires_at
        and seizure.reminded_for != seizure.expires_at
    )


def reminded(seizure: Seizure) -> Seizure:
    """Bookkeeping only: the version (etag) does not change."""
    return replace(seizure, reminded_for=seizure.expires_at)
