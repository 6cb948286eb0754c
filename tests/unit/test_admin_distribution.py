"""The histogram behind the report's chart of completion times (GetTurnaroundStatistics
with include_distributions): non-empty buckets, exact edges at whole powers of two days."""

from __future__ import annotations

import math

from delegation.turnaround import HISTOGRAM_METRICS, histogram_buckets, packed_distribution, packed_hits, packed_to_bytes
from delegation.turnaround import Durations as MatterDurations

DAY = 86_400
COMPLETE = HISTOGRAM_METRICS.index("complete_days")


def packed(*complete_days: float) -> bytes:
    total = sum(
        packed_hits(histogram_buckets(MatterDurations(complete_seconds=round(d * DAY), complete_working_seconds=0)))
        for d in complete_days
    )
    return packed_to_bytes(total)


def test_distribution_lists_non_empty_buckets_shortest_first() -> None:
    buckets = packed_distribution(packed(0.5, 0.5, 3.0, 40.0), COMPLETE)
    assert [n for _, _, n in buckets] == [2, 1, 1]
    for (lower, upper, _), days in zip(buckets, (0.5, 3.0, 40.0), strict=True):
        assert lower <= days < upper
    assert [lower for lower, _, _ in buckets] == sorted(lower for lower, _, _ in buckets)


def test_whole_powers_of_two_days_are_bucket_edges() -> None:
    [(lower, upper, n)] = packed_distribution(packed(2.0), COMPLETE)
    assert lower == 2.0 and upper > 2.0 and n == 1


def test_overflow_bucket_has_no_upper_bound_and_empty_histogram_has_no_buckets() -> None:
    [(lower, upper, _)] = packed_distribution(packed(600.0), COMPLETE)
    assert lower == 512.0 and upper == math.inf
    assert packed_distribution(b"", COMPLETE) == []
