"""Turnaround statistics math: buckets, histogram merge, percentiles, rates, one matter's figures."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.turnaround import (
    BUCKET_COUNT,
    BUCKET_LOWER_EDGES,
    HISTOGRAM_MAX_DAYS,
    HISTOGRAM_METRICS,
    HISTOGRAM_MIN_DAYS,
    OVERFLOW_BUCKET,
    RELATIVE_ERROR_BOUND,
    Durations,
    Histogram,
    MatterFacts,
    Observation,
    Totals,
    bucket_bounds,
    bucket_of,
    histogram_buckets,
    month_of,
    nearest_rank_quantile,
    packed_hits,
    packed_to_bytes,
    packed_words_many,
    rate,
    rates,
    summarise,
    summarise_many,
    summarise_packed,
    unpack_histograms,
)

CALENDAR = WorkingCalendar.default()
DAY = 86_400


def cst(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=CHINA_TZ)


# --- buckets -------------------------------------------------------------------------------------


def test_every_edge_opens_its_own_bucket() -> None:
    assert len(BUCKET_LOWER_EDGES) == BUCKET_COUNT
    for index, edge in enumerate(BUCKET_LOWER_EDGES):
        assert bucket_of(edge) == index
        if index > 0:
            assert bucket_of(math.nextafter(edge, 0.0)) == index - 1


def test_out_of_range_values() -> None:
    assert bucket_of(-3.0) == 0
    assert bucket_of(0.0) == 0
    assert bucket_of(HISTOGRAM_MIN_DAYS / 2) == 0
    assert bucket_of(HISTOGRAM_MAX_DAYS) == OVERFLOW_BUCKET
    assert bucket_of(10_000.0) == OVERFLOW_BUCKET
    assert bucket_bounds(OVERFLOW_BUCKET) == (HISTOGRAM_MAX_DAYS, math.inf)


def test_log_buckets_are_no_wider_than_the_stated_bound() -> None:
    for index in range(1, OVERFLOW_BUCKET):
        lower, upper = bucket_bounds(index)
        assert (upper - lower) / lower == pytest.approx(RELATIVE_ERROR_BOUND)
    assert RELATIVE_ERROR_BOUND < 0.091


# --- histograms and percentiles ------------------------------------------------------------------


def _samples(rng: random.Random, kind: str, n: int) -> list[float]:
    if kind == "lognormal":
        return [rng.lognormvariate(0.3, 1.1) for _ in range(n)]
    if kind == "exponential":
        return [rng.expovariate(1 / 2.5) for _ in range(n)]
    if kind == "same-day":
        return [rng.uniform(0.0, 0.4) for _ in range(n)]
    return [rng.choice([0.0, 0.5, 1.0, 1.0, 3.0, 30.0, 700.0]) for _ in range(n)]  # ties and overflow


def test_merge_adds_counts_and_equals_the_histogram_of_all_values() -> None:
    rng = random.Random(1)
    a, b = _samples(rng, "lognormal", 300), _samples(rng, "exponential", 200)
    merged = Histogram.of(a).merged(Histogram.of(b))
    assert merged == Histogram.of(a + b)
    assert merged == Histogram.of(b).merged(Histogram.of(a))
    assert merged.total == 500
    assert Histogram().merged(Histogram.of(a)) == Histogram.of(a)


def test_merge_of_a_retraction_cancels_out() -> None:
    assert Histogram.from_buckets({3: 2, 5: 1}).merged(Histogram.from_buckets({3: -2})) == Histogram.from_buckets({5: 1})
    with pytest.raises(ValueError):
        Histogram((1, 2, 3))


@pytest.mark.parametrize("kind", ["lognormal", "exponential", "same-day", "discrete"])
@pytest.mark.parametrize("q", [0.1, 0.5, 0.9, 0.99, 1.0])
def test_percentile_lies_in_the_bucket_of_the_exact_value(kind: str, q: float) -> None:
    rng = random.Random(f"{kind}-{q}")
    for n in (1, 2, 7, 100, 2_001):
        values = _samples(rng, kind, n)
        exact = nearest_rank_quantile(values, q)
        estimate = Histogram.of(values).quantile(q)
        lower, upper = bucket_bounds(bucket_of(exact))
        assert lower <= estimate <= upper
        if math.isinf(upper):
            assert estimate == HISTOGRAM_MAX_DAYS  # a lower bound above the last edge
        elif exact >= HISTOGRAM_MIN_DAYS:
            assert abs(estimate - exact) <= RELATIVE_ERROR_BOUND * exact
        else:
            assert abs(estimate - exact) <= HISTOGRAM_MIN_DAYS


def test_packed_histograms_merge_by_integer_addition() -> None:
    rng = random.Random(3)
    matters = [{m: bucket_of(rng.lognormvariate(0.5, 1.5)) for m in HISTOGRAM_METRICS if rng.random() < 0.8} for _ in range(400)]
    packed = sum(packed_hits(buckets) for buckets in matters)
    expected = [Histogram.of(()) for _ in HISTOGRAM_METRICS]
    for buckets in matters:
        for index, metric in enumerate(HISTOGRAM_METRICS):
            if metric in buckets:
                expected[index] = expected[index].merged(Histogram.from_buckets({buckets[metric]: 1}))
    assert unpack_histograms(packed) == tuple(expected)
    # A retraction is a subtraction; the overflow bucket of the last metric packs too.
    last = {"complete_working_days": OVERFLOW_BUCKET}
    assert unpack_histograms(packed + packed_hits(last) - packed_hits(last)) == tuple(expected)
    assert unpack_histograms(packed_hits(last))[3] == Histogram.from_buckets({OVERFLOW_BUCKET: 1})
    assert unpack_histograms(0) == tuple(Histogram() for _ in HISTOGRAM_METRICS)
    with pytest.raises(ValueError):
        unpack_histograms(-1)


@pytest.mark.parametrize("matters", [1, 2, 17, 500])
def test_summary_from_packed_bytes_equals_summary_from_histograms(matters: int) -> None:
    rng = random.Random(matters)
    packed = 0
    for _ in range(matters):
        days = rng.choice([rng.lognormvariate(0.0, 2.0), 0.001, 600.0])
        packed += packed_hits({m: bucket_of(days * (0.5 if "working" in m else 1.0)) for m in HISTOGRAM_METRICS})
    histograms = unpack_histograms(packed)
    for metric in (0, 2):
        expected = summarise(matters, 86_400 * matters, 43_200 * matters, histograms[metric], histograms[metric + 1])
        assert summarise_packed(matters, 86_400 * matters, 43_200 * matters, packed_to_bytes(packed), metric) == expected
    assert summarise_packed(0, 0, 0, b"", 0) == summarise(0, 0, 0, Histogram(), Histogram())


def test_many_groups_at_once_give_each_group_summary_bit_for_bit() -> None:
    """The vectorised path of large answers equals the one-group path exactly: empty groups,
    a single matter (the sum cap), the overflow bucket, counts but no histogram."""
    rng = random.Random(11)
    groups: list[tuple[int, int, int, int]] = [(0, 0, 0, 0), (3, 5 * DAY, DAY, 0)]  # (count, seconds, working, packed)
    for matters in [1, 1, 2, 9, 64, 300]:
        packed, seconds = 0, 0
        for _ in range(matters):
            days = rng.choice([rng.lognormvariate(1.0, 1.5), 0.001, 700.0, 3.0])
            seconds += round(days * DAY)
            packed += packed_hits({m: bucket_of(days * (0.6 if "working" in m else 1.0)) for m in HISTOGRAM_METRICS})
        groups.append((matters, seconds, round(seconds * 0.6), packed))
    counts, seconds, working, packed = (list(column) for column in zip(*groups, strict=True))
    words = packed_words_many([packed_to_bytes(p) for p in packed])
    for metric in (0, 2):
        expected = [summarise_packed(c, s, w, packed_to_bytes(p), metric) for c, s, w, p in groups]
        assert summarise_many(counts, seconds, working, words, metric) == expected


def test_rates_of_many_groups_equal_rate() -> None:
    numerators, denominators = np.array([0, 1, 2, 7, 5, 0]), np.array([0, 3, 2, 9, 0, 4])
    expected = [rate(n, d) for n, d in zip(numerators.tolist(), denominators.tolist(), strict=True)]
    assert rates(numerators, denominators).tolist() == expected


def test_several_quantiles_in_one_pass_agree_with_one_at_a_time() -> None:
    histogram = Histogram.of(_samples(random.Random(4), "lognormal", 999))
    assert histogram.quantiles(0.5, 0.9) == (histogram.quantile(0.5), histogram.quantile(0.9))


@pytest.mark.parametrize("kind", ["lognormal", "same-day", "discrete"])
def test_capping_by_the_exact_sum_keeps_the_estimate_in_bounds(kind: str) -> None:
    rng = random.Random(kind)
    for n in (1, 2, 3, 10, 400):
        values = [round(v * DAY) / DAY for v in _samples(rng, kind, n)]
        histogram = Histogram.of(values)
        summary = summarise(n, sum(round(v * DAY) for v in values), 0, histogram, Histogram())
        for q, estimate in ((0.5, summary.median_days), (0.9, summary.p90_days)):
            exact = nearest_rank_quantile(values, q)
            lower, upper = bucket_bounds(bucket_of(exact))
            assert lower <= estimate <= max(upper, HISTOGRAM_MAX_DAYS) and estimate <= histogram.quantile(q)
        if n == 1:
            assert summary.median_days == summary.p90_days == pytest.approx(values[0])  # one matter: exact


def test_quantile_of_nothing_and_bad_q() -> None:
    assert Histogram().quantile(0.5) == 0.0
    with pytest.raises(ValueError):
        Histogram.of([1.0]).quantile(0.0)
    with pytest.raises(ValueError):
        Histogram.of([1.0]).quantile(1.5)


def test_summary_mean_is_exact_and_percentiles_bounded() -> None:
    seconds = [3_600, 21_600, 86_400, 90_000, 1_000_000]
    days = [s / DAY for s in seconds]
    summary = summarise(len(seconds), sum(seconds), sum(seconds) // 2, Histogram.of(days), Histogram.of(days))
    assert summary.count == 5
    assert summary.mean_days == sum(seconds) / 5 / DAY
    assert summary.mean_working_days == (sum(seconds) // 2) / 5 / DAY
    assert abs(summary.median_days - 1.0) <= RELATIVE_ERROR_BOUND
    assert summarise(0, 0, 0, Histogram(), Histogram()).mean_days == 0.0


# --- rates -----------------------------------------------------------------------------------------


def test_rates_with_zero_denominators_are_zero() -> None:
    assert rate(3, 0) == 0.0
    assert rate(0, 0) == 0.0
    assert rate(1, 4) == 0.25
    empty = Totals()
    assert (empty.completion_rate, empty.return_rate, empty.on_time_rate) == (0.0, 0.0, 0.0)


def test_rates_of_a_group() -> None:
    totals = Totals(matters=10, completed=6, returned=2, withdrawn=2, on_time=3, on_time_known=4, returned_duplicate=2)
    assert totals.finished == 8  # withdrawals are not finished by the entrusted court
    assert totals.completion_rate == 0.75
    assert totals.return_rate == 0.25
    assert totals.completion_rate + totals.return_rate == 1.0
    assert totals.on_time_rate == 0.75
    assert totals.returns_by_reason() == {"DUPLICATE": 2}


def test_totals_add_and_subtract() -> None:
    a = Totals(matters=1, completed=1, complete_seconds=100)
    b = Totals(matters=2, returned=1, returned_other=1)
    assert (a + b) - b == a
    assert (a - a).is_zero()


# --- one matter ------------------------------------------------------------------------------------------

SUBMITTED = cst("2024-03-08T16:00:00")  # a Friday


def _facts(**changes: object) -> MatterFacts:
    base = MatterFacts("courts/gd0112/delegations/1", "gd0112", "ha0122", "gd", "ha", "DEPOSITS")
    return base.observe(Observation(at=SUBMITTED, state="SUBMITTED", submitted_at=SUBMITTED)).observe(
        Observation(at=SUBMITTED, **changes)  # type: ignore[arg-type]
    )


def test_month_is_taken_in_china_time() -> None:
    assert month_of(datetime(2024, 3, 31, 17, 0, tzinfo=UTC)) == "2024-04"
    assert month_of(datetime(2024, 3, 31, 15, 59, tzinfo=UTC)) == "2024-03"


def test_durations_in_calendar_and_working_time() -> None:
    facts = _facts(acknowledged_at=cst("2024-03-11T10:00:00"), completed_at=cst("2024-03-20T16:00:00"))
    durations = facts.durations(CALENDAR)
    # Fri 16:00 → Mon 10:00: 2.75 calendar days, of which Fri 8 h + Mon 10 h are working time.
    assert durations.ack_seconds == round(2.75 * DAY)
    assert durations.ack_working_seconds == 18 * 3_600
    # Fri 16:00 → Wed 16:00 a week later: 12 days, 8 working days.
    assert durations.complete_seconds == 12 * DAY
    assert durations.complete_working_seconds == 8 * DAY
    assert histogram_buckets(durations)["complete_working_days"] == bucket_of(8.0)


def test_a_step_before_submission_counts_as_zero() -> None:
    durations = _facts(acknowledged_at=SUBMITTED - timedelta(minutes=5)).durations(CALENDAR)
    assert (durations.ack_seconds, durations.ack_working_seconds) == (0, 0)


def test_on_time_and_overdue() -> None:
    due = cst("2024-03-18T23:59:59")
    in_time = _facts(completed_at=cst("2024-03-15T10:00:00"), finish_due_at=due)
    late = _facts(completed_at=cst("2024-03-20T10:00:00"), finish_due_at=due)
    unknown = _facts(completed_at=cst("2024-03-20T10:00:00"))
    reported = _facts(overdue=True)
    assert (in_time.on_time, in_time.overdue) == (True, False)
    assert (late.on_time, late.overdue) == (False, True)
    assert (unknown.on_time, unknown.overdue) == (None, False)
    assert (reported.on_time, reported.overdue) == (None, True)
    figures = [f.contribution(f.durations(CALENDAR)) for f in (in_time, late, unknown, reported)]
    assert [(t.on_time, t.on_time_known, t.overdue) for t in figures] == [(1, 1, 0), (0, 1, 1), (0, 0, 0), (0, 0, 1)]


def test_return_reasons() -> None:
    known = _facts(returned_at=cst("2024-03-09T10:00:00"), return_reason="NOT_WITHIN_JURISDICTION")
    unknown = _facts(returned_at=cst("2024-03-09T10:00:00"), return_reason="SOMETHING_NEW")
    assert known.contribution(Durations()).returns_by_reason() == {"NOT_WITHIN_JURISDICTION": 1}
    assert unknown.contribution(Durations()).returns_by_reason() == {"UNSPECIFIED": 1}
    assert known.final_state == "RETURNED"


def test_nothing_counts_until_the_submission_is_known() -> None:
    facts = MatterFacts("courts/a/delegations/1", "a", "b", "zj", "zj", "OTHER").observe(
        Observation(at=SUBMITTED, completed_at=SUBMITTED)
    )
    assert facts.month is None
    assert facts.contribution(facts.durations(CALENDAR)).is_zero()


def test_merging_observations_in_any_order_gives_the_same_facts() -> None:
    due, extended = cst("2024-03-18T23:59:59"), cst("2024-03-25T23:59:59")
    observations = [
        Observation(at=SUBMITTED, state="SUBMITTED", submitted_at=SUBMITTED, finish_due_at=due),
        Observation(at=cst("2024-03-11T10:00:00"), state="ACKNOWLEDGED", acknowledged_at=cst("2024-03-11T10:00:00")),
        Observation(at=cst("2024-03-12T10:00:00"), urged=True),
        Observation(at=cst("2024-03-19T00:00:00"), overdue=True, finish_due_at=due),
        Observation(at=cst("2024-03-19T09:00:00"), finish_due_at=extended),
        Observation(at=cst("2024-03-20T10:00:00"), urged=True, escalated_at=cst("2024-03-20T10:00:00")),
        Observation(
            at=cst("2024-03-21T10:00:00"),
            state="COMPLETED",
            submitted_at=SUBMITTED,
            acknowledged_at=cst("2024-03-11T10:00:00"),
            completed_at=cst("2024-03-21T10:00:00"),
        ),
    ]
    start = MatterFacts("courts/gd0112/delegations/1", "gd0112", "ha0122", "gd", "ha", "DEPOSITS")
    results = set()
    for order in itertools.islice(itertools.permutations(observations), 0, None, 97):
        facts = start
        for seen in order:
            facts = facts.observe(seen)
        results.add(facts)
    assert len(results) == 1
    (facts,) = results
    assert facts.finish_due_at == extended  # the newest word on the deadline
    assert facts.state == "COMPLETED" and facts.final_state == "COMPLETED"
    assert facts.urge_count == 2
    assert facts.on_time is True and facts.overdue is True  # reported overdue, then extended and met
