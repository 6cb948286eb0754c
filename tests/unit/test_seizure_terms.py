"""Seizure terms (assistance/seizures.py): 民诉法解释 art. 485 terms per asset class, renewal,
release, lapse, expiry reminders and the one-month rule for handing seized property over."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from assistance.notice_targets import DepositAccount, NoticeTarget
from assistance.seizures import (
    TERM_YEARS,
    AssetClass,
    Seizure,
    SeizureState,
    has_at_least_a_month_left,
    lapse,
    release,
    reminded,
    reminder_due,
    renew,
    take_effect,
    term_end,
)
from delegation.calendar import CHINA_TZ
from registry.errors import FailedPrecondition

EFFECTIVE = datetime(2020, 4, 20, 1, 30, tzinfo=UTC)  # 09:30 in Guangzhou, the seed's freeze
LEAD = timedelta(days=30)


def seized(asset_class: AssetClass = AssetClass.DEPOSITS, at: datetime = EFFECTIVE) -> Seizure:
    return take_effect(
        seizure_id="s1",
        court_id="gd0112",
        case_name="courts/gd0112/cases/c1",
        agency_id="bank-icbc",
        notice_name="courts/gd0112/assistanceNotices/n1",
        target=NoticeTarget("河南某建设工程有限公司", DepositAccount("6222021001123456789", 700_000_000)),
        asset_class=asset_class,
        asset_key="bank-icbc|account|6222021001123456789",
        amount_fen=700_000_000,
        now=at,
    )


@pytest.mark.parametrize(
    ("asset_class", "last_day"),
    [
        (AssetClass.DEPOSITS, "2021-04-20"),
        (AssetClass.MOVABLES, "2022-04-20"),
        (AssetClass.REAL_ESTATE, "2023-04-20"),
        (AssetClass.RIGHTS, "2023-04-20"),
    ],
)
def test_terms_follow_article_485(asset_class: AssetClass, last_day: str) -> None:
    seizure = seized(asset_class)
    expires = seizure.expires_at.astimezone(CHINA_TZ)
    assert (expires.date().isoformat(), expires.hour, expires.minute) == (last_day, 23, 59)
    assert seizure.term_years == TERM_YEARS[asset_class]


def test_a_term_starting_on_a_leap_day_ends_on_28_february() -> None:
    assert term_end(datetime(2024, 2, 29, 12, tzinfo=CHINA_TZ), 1).date().isoformat() == "2025-02-28"


def test_the_effective_day_is_counted_in_china_time() -> None:
    # 2020-04-19 17:00 UTC is already the 20th in Guangzhou.
    assert term_end(datetime(2020, 4, 19, 17, 0, tzinfo=UTC), 1).date().isoformat() == "2021-04-20"


def test_renewal_adds_a_full_term_from_the_current_end() -> None:
    seizure = seized()
    renewed = renew(seizure, seizure.expires_at - timedelta(days=10))
    assert renewed.expires_at.date().isoformat() == "2022-04-20"
    assert (renewed.renewal_count, renewed.version) == (1, 2)
    with pytest.raises(FailedPrecondition) as raised:
        renew(seizure, seizure.expires_at + timedelta(seconds=1))
    assert raised.value.reason == "SEIZURE_EXPIRED"


def test_release_and_lapse_end_a_seizure_once() -> None:
    seizure = seized()
    released = release(seizure, EFFECTIVE + timedelta(days=3))
    assert (released.state, released.ended_at) == (SeizureState.RELEASED, EFFECTIVE + timedelta(days=3))
    with pytest.raises(FailedPrecondition):
        release(released, EFFECTIVE)
    with pytest.raises(FailedPrecondition) as raised:
        lapse(seizure, seizure.expires_at)
    assert raised.value.reason == "SEIZURE_NOT_EXPIRED"
    lapsed = lapse(seizure, seizure.expires_at + timedelta(seconds=1))
    assert lapsed.state is SeizureState.LAPSED
    with pytest.raises(FailedPrecondition):
        renew(lapsed, lapsed.expires_at - timedelta(days=1))


def test_one_reminder_per_term_within_the_lead() -> None:
    seizure = seized()
    assert not reminder_due(seizure, seizure.expires_at - LEAD - timedelta(seconds=1), LEAD)
    assert reminder_due(seizure, seizure.expires_at - LEAD, LEAD)
    done = reminded(seizure)
    assert done.version == seizure.version and not reminder_due(done, seizure.expires_at - timedelta(days=1), LEAD)
    renewed = renew(done, seizure.expires_at - timedelta(days=1))
    assert reminder_due(renewed, renewed.expires_at - timedelta(days=1), LEAD)  # the new term gets its own
    assert not reminder_due(replace(seizure, state=SeizureState.RELEASED), seizure.expires_at, LEAD)


def test_handing_over_needs_a_month_of_term_left() -> None:
    expires = seized().expires_at  # 2021-04-20 23:59:59 China time
    assert has_at_least_a_month_left(expires, datetime(2021, 3, 20, 23, 0, tzinfo=CHINA_TZ))
    assert not has_at_least_a_month_left(expires, datetime(2021, 3, 21, 0, 0, tzinfo=CHINA_TZ))
