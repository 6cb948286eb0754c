"""Turnaround statistics of delegated matters: what one matter adds to the figures, and how
the added-up figures are read back (DOMAIN.md, "What users measure").

The read model keeps, per matter, a `MatterFacts` built only from recorded timestamps
(submission, acknowledgement, completion, return, withdrawal, the FINISH deadline) and,
per group of matters, the sum of every matter's contribution (`MatterFacts.contribution`,
a `Totals`, and its histogram buckets). Because a contribution is a pure function of the
facts, a change of facts changes the sums by `after - before`, whatever order the events
arrive in.

Durations are summarised by

- **mean**: exact. Sums are kept in whole seconds (integers), so adding and retracting a
  matter leaves no floating-point residue;
- **median and p90**: from a fixed-bucket histogram (`bucket_of`), kept packed in one
  integer per group (`packed_hits`, `unpack_histograms`). Buckets are log-spaced,
  `BUCKETS_PER_DOUBLING` = 8 per doubling from `HISTOGRAM_MIN_DAYS` (1/64 day = 22.5 min)
  to `HISTOGRAM_MAX_DAYS` (512 days), plus one bucket below and one above. The estimate
  lies in the same bucket as the exact nearest-rank percentile, so the error is below
  that bucket's width: under 2^(1/8) - 1 ≈ 9.05 % of the true value between 22.5 min and
  512 days, under 22.5 min below that; at or above 512 days the estimate is 512 days
  (a lower bound). Histograms merge by adding counts, so any grouping can be answered.

Pure domain: no clock, no I/O.
"""

from __future__ import annotations

import math
import sys
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from itertools import accumulate
from operator import add
from typing import NamedTuple

import numpy as np

from delegation.calendar import CHINA_TZ, WorkingCalendar
from delegation.matters import DelegationState, ReturnReason

SECONDS_PER_DAY = 86_400

# --- histogram buckets ---------------------------------------------------------------------------

HISTOGRAM_MIN_DAYS = 1 / 64
HISTOGRAM_MAX_DAYS = 512.0
BUCKETS_PER_DOUBLING = 8
_LOG_BUCKETS = BUCKETS_PER_DOUBLING * round(math.log2(HISTOGRAM_MAX_DAYS / HISTOGRAM_MIN_DAYS))
#: Bucket 0 is [0, MIN); 1.._LOG_BUCKETS are log-spaced; the last is [MAX, ∞).
BUCKET_COUNT = _LOG_BUCKETS + 2
OVERFLOW_BUCKET = BUCKET_COUNT - 1
#: Lower edge of every bucket, in days.
BUCKET_LOWER_EDGES: tuple[float, ...] = (0.0,) + tuple(
    HISTOGRAM_MIN_DAYS * 2 ** (i / BUCKETS_PER_DOUBLING) for i in range(_LOG_BUCKETS + 1)
)
#: The four histograms every group keeps, in their packed order.
HISTOGRAM_METRICS: tuple[str, ...] = ("ack_days", "ack_working_days", "complete_days", "complete_working_days")
_BUCKET_WIDTHS = tuple(b - a for a, b in zip(BUCKET_LOWER_EDGES, BUCKET_LOWER_EDGES[1:], strict=False))
#: Worst relative error of a percentile between MIN and MAX days.
RELATIVE_ERROR_BOUND = 2 ** (1 / BUCKETS_PER_DOUBLING) - 1


def bucket_of(days: float) -> int:
    """The histogram bucket of a duration in days (negative durations count as 0)."""
    if days < HISTOGRAM_MIN_DAYS:
        return 0
    if days >= HISTOGRAM_MAX_DAYS:
        return OVERFLOW_BUCKET
    index = 1 + int(BUCKETS_PER_DOUBLING * math.log2(days / HISTOGRAM_MIN_DAYS))
    # log2 may round across an edge; the edges table is the truth.
    while index > 1 and days < BUCKET_LOWER_EDGES[index]:
        index -= 1
    while index < OVERFLOW_BUCKET and days >= BUCKET_LOWER_EDGES[index + 1]:
        index += 1
    return index


def bucket_bounds(index: int) -> tuple[float, float]:
    """[lower, upper) of a bucket in days; upper is inf for the overflow bucket."""
    upper = BUCKET_LOWER_EDGES[index + 1] if index < OVERFLOW_BUCKET else math.inf
    return BUCKET_LOWER_EDGES[index], upper


_EMPTY = (0,) * BUCKET_COUNT


@dataclass(frozen=True)
class Histogram:
    """Counts per bucket (dense, BUCKET_COUNT long). Immutable: `merged` returns a new one."""

    counts: tuple[int, ...] = _EMPTY

    def __post_init__(self) -> None:
        if len(self.counts) != BUCKET_COUNT:
            raise ValueError(f"a histogram has {BUCKET_COUNT} buckets, got {len(self.counts)}")

    @classmethod
    def of(cls, values_in_days: Iterable[float]) -> Histogram:
        counts = [0] * BUCKET_COUNT
        for value in values_in_days:
            counts[bucket_of(value)] += 1
        return cls(tuple(counts))

    @classmethod
    def from_buckets(cls, counts: Mapping[int, int]) -> Histogram:
        dense = [0] * BUCKET_COUNT
        for index, n in counts.items():
            dense[index] += n
        return cls(tuple(dense))

    @property
    def total(self) -> int:
        return sum(self.counts)

    def merged(self, other: Histogram) -> Histogram:
        return Histogram(tuple(map(add, self.counts, other.counts)))

    def quantile(self, q: float) -> float:
        """The q-quantile in days (nearest rank, interpolated inside its bucket); 0.0 when empty."""
        return self.quantiles(q)[0]

    def quantiles(self, *qs: float) -> tuple[float, ...]:
        """Several quantiles from one pass over the buckets."""
        if any(not 0.0 < q <= 1.0 for q in qs):
            raise ValueError(f"every q must be in (0, 1], got {qs}")
        return quantiles_of(self.counts, qs)


def quantiles_of(
    counts: Sequence[int], qs: Iterable[float], first_bucket: int = 0, sum_days: float | None = None
) -> tuple[float, ...]:
    """Quantiles (days) of the dense counts of buckets first_bucket, first_bucket + 1, …;
    0.0 for no counts. One C-level accumulate, then one bisect per quantile.

    With the exact sum of the values, each estimate is also capped by sum / (n - k + 1), a
    bound on the k-th smallest of n non-negative values: still inside the true value's
    bucket, and exact when the group holds one matter.
    """
    cumulative = list(accumulate(counts))
    if not cumulative or cumulative[-1] <= 0:
        return tuple(0.0 for _ in qs)
    total, estimates = cumulative[-1], []
    for q in qs:
        rank = _rank(q, total)
        estimate = _at(counts, cumulative, first_bucket, rank)
        estimates.append(estimate if sum_days is None else min(estimate, sum_days / (total - rank + 1)))
    return tuple(estimates)


def _at(counts: Sequence[int], cumulative: list[int], first_bucket: int, rank: int) -> float:
    """The rank-th smallest value, interpolated inside the bucket that holds it."""
    position = bisect_left(cumulative, rank)
    index, n = first_bucket + position, counts[position]
    if index == OVERFLOW_BUCKET:
        return HISTOGRAM_MAX_DAYS  # nothing is known above the last edge but that
    return BUCKET_LOWER_EDGES[index] + _BUCKET_WIDTHS[index] * (rank - cumulative[position] + n - 0.5) / n


def _rank(q: float, total: int) -> int:
    """Nearest rank: the ceil(q * total)-th smallest value (the epsilon absorbs 0.9 * 10 = 9.000…1)."""
    return max(1, math.ceil(q * total - 1e-9))


# --- packed histograms ------------------------------------------------------------------------------------
#
# The four histograms of a group live in one Python int: bucket b of metric m is the unsigned
# FIELD_BITS-wide field at position m * BUCKET_COUNT + b. Adding two packed ints adds every
# bucket at once (no field overflows below 2^32 matters), so merging a group's rows costs
# one big-int addition per row instead of a loop over buckets; a row's delta may subtract,
# as long as no field of the result goes below zero (sums of contributions never do).

FIELD_BITS = 32
PACKED_FIELDS = 4 * BUCKET_COUNT  # len(HISTOGRAM_METRICS) * BUCKET_COUNT


def packed_hits(buckets: Mapping[str, int]) -> int:
    """One count in each metric's bucket (from `histogram_buckets`), packed."""
    return sum(1 << (FIELD_BITS * (HISTOGRAM_METRICS.index(metric) * BUCKET_COUNT + b)) for metric, b in buckets.items())


PACKED_BYTES = PACKED_FIELDS * FIELD_BITS // 8


def packed_to_bytes(packed: int) -> bytes:
    """Little-endian bytes of a packed int with no negative field, trailing zeros dropped."""
    if packed < 0:
        raise ValueError("a packed histogram cannot be negative")
    return packed.to_bytes((packed.bit_length() + 7) // 8, "little")


def unpack_histograms(packed: int) -> tuple[Histogram, ...]:
    """The four histograms (HISTOGRAM_METRICS order) of a packed int with no negative field."""
    words = packed_words(packed_to_bytes(packed))
    return tuple(Histogram(tuple(words[m * BUCKET_COUNT : (m + 1) * BUCKET_COUNT])) for m in range(len(HISTOGRAM_METRICS)))


def packed_words(data: bytes) -> memoryview:
    """The PACKED_FIELDS unsigned 32-bit fields of `packed_to_bytes` output."""
    data = data.ljust(PACKED_BYTES, b"\0")
    if sys.byteorder == "big":
        swapped = array("I", data)
        swapped.byteswap()
        return memoryview(swapped)
    return memoryview(data).cast("I")


def summarise_packed(count: int, seconds: int, working_seconds: int, data: bytes, metric: int) -> DurationSummary:
    """`summarise` for metric `metric` (calendar days) and `metric + 1` (working days) of
    `packed_to_bytes` output, without building Histogram objects (the hot path of a query)."""
    if count == 0:
        return _NOTHING
    words = packed_words(data)
    median, p90 = _packed_quantiles(data, words, metric * BUCKET_COUNT, seconds / SECONDS_PER_DAY)
    working_median, working_p90 = _packed_quantiles(data, words, (metric + 1) * BUCKET_COUNT, working_seconds / SECONDS_PER_DAY)
    day = count * SECONDS_PER_DAY
    return DurationSummary(count, seconds / day, median, p90, working_seconds / day, working_median, working_p90)


def _packed_quantiles(data: bytes, words: memoryview, start: int, sum_days: float) -> tuple[float, ...]:
    # Leave out the empty buckets at both ends (bytes.strip, C speed) before accumulating.
    raw = data[start * 4 : (start + BUCKET_COUNT) * 4]
    first = (len(raw) - len(raw.lstrip(b"\0"))) // 4
    end = (len(raw.rstrip(b"\0")) + 3) // 4
    return quantiles_of(words[start + first : start + end], _MEDIAN_P90, first, sum_days)


def packed_distribution(data: bytes, metric: int) -> list[tuple[float, float, int]]:
    """The non-empty buckets of metric `metric` of `packed_to_bytes` output, shortest first,
    as (lower days, upper days or inf, count): a group's histogram for charts."""
    words = packed_words(data)
    start = metric * BUCKET_COUNT
    return [(*bucket_bounds(b), n) for b in range(BUCKET_COUNT) if (n := words[start + b])]


def nearest_rank_quantile(values: Iterable[float], q: float) -> float:
    """The exact nearest-rank q-quantile of `values`, the definition the histogram estimates."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[_rank(q, len(ordered)) - 1]


# --- rates and summaries --------------------------------------------------------------------------


def rate(numerator: int, denominator: int) -> float:
    """numerator / denominator, and 0.0 for an empty denominator (a double cannot say "none")."""
    return numerator / denominator if denominator > 0 else 0.0


def rates(numerators: np.ndarray, denominators: np.ndarray) -> np.ndarray:
    """`rate` of each pair of int64 counts (equal to it: both sides are exact below 2^53)."""
    result: np.ndarray = np.divide(numerators, denominators, out=np.zeros(len(numerators)), where=denominators > 0)
    return result


class DurationSummary(NamedTuple):  # a NamedTuple: built for every group of every answer
    count: int  # type: ignore[assignment]  # shadows tuple.count, which nothing calls on a summary
    mean_days: float
    median_days: float
    p90_days: float
    mean_working_days: float
    median_working_days: float
    p90_working_days: float


_MEDIAN_P90 = (0.5, 0.9)
_NOTHING = DurationSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def summarise(count: int, seconds: int, working_seconds: int, days: Histogram, working_days: Histogram) -> DurationSummary:
    """Mean from the exact sums; median and p90 from the histograms (capped by the sums)."""
    median, p90 = quantiles_of(days.counts, _MEDIAN_P90, 0, seconds / SECONDS_PER_DAY)
    working_median, working_p90 = quantiles_of(working_days.counts, _MEDIAN_P90, 0, working_seconds / SECONDS_PER_DAY)
    return DurationSummary(
        count=count,
        mean_days=rate(seconds, count) / SECONDS_PER_DAY,
        median_days=median,
        p90_days=p90,
        mean_working_days=rate(working_seconds, count) / SECONDS_PER_DAY,
        median_working_days=working_median,
        p90_working_days=working_p90,
    )


def summarise_many(
    counts: Sequence[int], seconds: Sequence[int], working_seconds: Sequence[int], words: np.ndarray, metric: int
) -> list[DurationSummary]:
    """`summarise_packed` for many groups at once: `words` holds each group's PACKED_FIELDS
    histogram fields (one row per group). The quantiles of every group come from a few array
    operations instead of a Python loop per group (the cost of answers with 1,000+ groups);
    each figure equals `summarise_packed`'s bit for bit (the same IEEE operations in the same
    order)."""
    days = _quantiles_many(words[:, metric * BUCKET_COUNT : (metric + 1) * BUCKET_COUNT], seconds)
    working = _quantiles_many(words[:, (metric + 1) * BUCKET_COUNT : (metric + 2) * BUCKET_COUNT], working_seconds)
    summaries = []
    for count, s, w, (median, p90), (working_median, working_p90) in zip(
        counts, seconds, working_seconds, days.tolist(), working.tolist(), strict=True
    ):
        if count == 0:
            summaries.append(_NOTHING)
            continue
        day = count * SECONDS_PER_DAY
        summaries.append(DurationSummary(count, s / day, median, p90, w / day, working_median, working_p90))
    return summaries


_EDGES = np.array(BUCKET_LOWER_EDGES)
_WIDTHS = np.array((*_BUCKET_WIDTHS, 0.0))  # the overflow bucket is answered with HISTOGRAM_MAX_DAYS


def _quantiles_many(counts: np.ndarray, seconds: Sequence[int]) -> np.ndarray:
    """Median and p90 (columns) of each row of bucket counts, as `quantiles_of` with the sum cap."""
    counts = counts.astype(np.int64, copy=False)
    cumulative = np.cumsum(counts, axis=1)
    total = cumulative[:, -1]
    sum_days = np.asarray(seconds, dtype=np.int64) / SECONDS_PER_DAY
    rows = np.arange(len(counts))
    estimates = np.zeros((len(counts), len(_MEDIAN_P90)))
    with np.errstate(divide="ignore", invalid="ignore"):  # empty rows divide by 0; they are answered 0.0
        for column, q in enumerate(_MEDIAN_P90):
            rank = np.maximum(1, np.ceil(q * total - 1e-9)).astype(np.int64)
            position = np.minimum((cumulative < rank[:, None]).sum(axis=1), BUCKET_COUNT - 1)  # bisect_left
            n, below = counts[rows, position], cumulative[rows, position]
            inside = _EDGES[position] + _WIDTHS[position] * (rank - below + n - 0.5) / n
            estimate = np.where(position == OVERFLOW_BUCKET, HISTOGRAM_MAX_DAYS, inside)
            estimate = np.minimum(estimate, sum_days / (total - rank + 1))
            estimates[:, column] = np.where(total > 0, estimate, 0.0)
    return estimates


def packed_words_many(data: Sequence[bytes]) -> np.ndarray:
    """`packed_words` of many `packed_to_bytes` outputs, one row each (int64)."""
    joined = b"".join(d.ljust(PACKED_BYTES, b"\0") for d in data)
    return np.frombuffer(joined, dtype="<u4").reshape(len(data), PACKED_FIELDS).astype(np.int64)


# Stored histograms: a format byte, then one (u16 field index, u32 count) entry per non-empty
# field of the packed int (most of its PACKED_FIELDS fields are empty). A query decodes all
# its rows with one numpy call, where zlib (the first format, still read) took ~6 µs a row,
# and encoding is ~3x cheaper than zlib's, which the projection pays per row it writes.
_SPARSE_FORMAT = 1
_ZLIB_FORMAT = 0x78  # the first byte of every zlib stream
_ENTRY = np.dtype([("field", "<u2"), ("count", "<u4")])


def encode_histograms(packed: int) -> bytes:
    """A packed histogram as stored (b"" when empty)."""
    if not packed:
        return b""
    if packed < 0:
        raise ValueError("a packed histogram cannot be negative")
    words = np.frombuffer(packed.to_bytes(PACKED_BYTES, "little"), dtype="<u4")
    fields = np.flatnonzero(words)
    entries = np.empty(len(fields), dtype=_ENTRY)
    entries["field"], entries["count"] = fields, words[fields]
    return bytes((_SPARSE_FORMAT,)) + entries.tobytes()


def decode_histograms(stored: bytes | None) -> int:
    """The packed int of a stored histogram."""
    if not stored:
        return 0
    if stored[0] == _ZLIB_FORMAT:
        return int.from_bytes(zlib.decompress(stored), "little")
    words = np.zeros(PACKED_FIELDS, dtype="<u4")
    entries = _entries(stored)
    words[entries["field"]] = entries["count"]
    return int.from_bytes(words.tobytes(), "little")


def _entries(stored: bytes) -> np.ndarray:
    if stored[0] != _SPARSE_FORMAT:
        raise ValueError(f"unknown histogram format {stored[0]}")
    return np.frombuffer(stored, dtype=_ENTRY, offset=1)


def summed_histogram_words(stored: Sequence[bytes | None], groups: Sequence[int], group_count: int) -> np.ndarray:
    """The histogram fields summed per group: row g holds the PACKED_FIELDS fields of the sum
    of the stored histograms whose entry in `groups` is g."""
    words = np.zeros(group_count * PACKED_FIELDS, dtype=np.int64)
    # Pass k adds the k-th histogram of every group: within a pass no cell repeats (a group
    # once, each field once), so a plain indexed add is exact, and a group has only a few rows.
    passes: list[tuple[list[memoryview], list[int], list[int]]] = []
    seen = [0] * group_count
    for blob, group in zip(stored, groups, strict=True):
        if not blob:
            continue
        if blob[0] == _ZLIB_FORMAT:  # a row written before the sparse format
            words[group * PACKED_FIELDS : (group + 1) * PACKED_FIELDS] += np.asarray(packed_words(zlib.decompress(blob)))
            continue
        if blob[0] != _SPARSE_FORMAT:
            raise ValueError(f"unknown histogram format {blob[0]}")
        k = seen[group]
        seen[group] = k + 1
        if k == len(passes):
            passes.append(([], [], []))
        parts, offsets, sizes = passes[k]
        parts.append(memoryview(blob)[1:])
        offsets.append(group * PACKED_FIELDS)
        sizes.append((len(blob) - 1) // _ENTRY.itemsize)
    for parts, offsets, sizes in passes:
        entries = np.frombuffer(b"".join(parts), dtype=_ENTRY)
        words[np.repeat(np.asarray(offsets, dtype=np.int64), sizes) + entries["field"]] += entries["count"]
    return words.reshape(group_count, PACKED_FIELDS)


# --- the additive figures -----------------------------------------------------------------------------

#: Return reasons counted separately; anything else is counted as unspecified.
RETURN_REASONS: tuple[ReturnReason, ...] = tuple(ReturnReason)


@dataclass(frozen=True)
class Totals:
    """Additive counters of a set of matters: a matter's contribution, or a group's sum.

    Field names are also the column names of the aggregate table.
    """

    matters: int = 0
    completed: int = 0
    returned: int = 0
    withdrawn: int = 0
    overdue: int = 0  # went overdue at some time (MatterFacts.overdue)
    open_overdue: int = 0  # open and overdue now (MatterFacts.open_overdue)
    on_time: int = 0
    on_time_known: int = 0  # completed matters whose FINISH deadline is known
    returned_not_within_jurisdiction: int = 0
    returned_materials_incomplete: int = 0
    returned_duplicate: int = 0
    returned_other: int = 0
    returned_unspecified: int = 0
    ack_count: int = 0
    ack_seconds: int = 0
    ack_working_seconds: int = 0
    complete_count: int = 0
    complete_seconds: int = 0
    complete_working_seconds: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(**{name: getattr(self, name) + getattr(other, name) for name in TOTAL_FIELDS})

    def __sub__(self, other: Totals) -> Totals:
        return Totals(**{name: getattr(self, name) - getattr(other, name) for name in TOTAL_FIELDS})

    def is_zero(self) -> bool:
        return not any(getattr(self, name) for name in TOTAL_FIELDS)

    @property
    def finished(self) -> int:
        """Matters the entrusted court closed: completed or returned (办结 = 完成 + 退回).

        Withdrawals are the requesting court's doing and are left out, so completion and
        return rates add up to 1, as in the published figures (92.78 % + 7.22 %).
        """
        return self.completed + self.returned

    @property
    def completion_rate(self) -> float:
        return rate(self.completed, self.finished)

    @property
    def return_rate(self) -> float:
        return rate(self.returned, self.finished)

    @property
    def on_time_rate(self) -> float:
        return rate(self.on_time, self.on_time_known)

    def returns_by_reason(self) -> dict[str, int]:
        """Non-zero return counts by reason name (ReturnReason values, plus "UNSPECIFIED")."""
        return {reason: n for reason, column in REASON_COLUMNS if (n := getattr(self, column))}


TOTAL_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Totals))


def _reason_field(reason: str) -> str:
    return f"returned_{reason.lower()}"


#: (reason name, Totals field) of every return count.
REASON_COLUMNS = tuple((r.value, _reason_field(r.value)) for r in RETURN_REASONS) + (("UNSPECIFIED", "returned_unspecified"),)


@dataclass(frozen=True)
class Durations:
    """One matter's turnaround, in whole seconds, calendar and working time."""

    ack_seconds: int | None = None
    ack_working_seconds: int | None = None
    complete_seconds: int | None = None
    complete_working_seconds: int | None = None


def histogram_buckets(durations: Durations) -> dict[str, int]:
    """The bucket each measured duration falls in, by histogram metric."""
    values = {
        "ack_days": durations.ack_seconds,
        "ack_working_days": durations.ack_working_seconds,
        "complete_days": durations.complete_seconds,
        "complete_working_days": durations.complete_working_seconds,
    }
    return {metric: bucket_of(seconds / SECONDS_PER_DAY) for metric, seconds in values.items() if seconds is not None}


# --- one matter -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """What one event tells about a matter. None / False / "" mean "says nothing"."""

    at: datetime  # when the event happened
    state: str = ""  # the state after the event
    submitted_at: datetime | None = None
    acknowledged_at: datetime | None = None
    completed_at: datetime | None = None
    returned_at: datetime | None = None
    withdrawn_at: datetime | None = None
    return_reason: str = ""
    finish_due_at: datetime | None = None  # the FINISH deadline as the event's snapshot has it
    overdue: bool = False  # a deadline of the matter passed (an `overdue` event)
    # Whether a deadline of the entrusted court stands overdue, as the event's snapshot of the
    # matter has it; None when the event carries no deadlines.
    overdue_now: bool | None = None
    urged: bool = False  # one urge (催办)
    escalated_at: datetime | None = None


@dataclass(frozen=True)
class MatterFacts:
    """Everything the statistics need about one matter, merged from its events in any order.

    Merge rules (`observe`): a timestamp keeps its earliest value, flags only turn on, the
    state and the FINISH deadline follow the newest event that says something about them,
    urges add up (the consumer's inbox drops redeliveries). So a late, early or repeated
    snapshot never undoes what a newer one said.
    """

    name: str
    requesting_court_id: str
    entrusted_court_id: str
    requesting_province: str
    entrusted_province: str
    matter_kind: str
    submitted_at: datetime | None = None
    acknowledged_at: datetime | None = None
    completed_at: datetime | None = None
    returned_at: datetime | None = None
    withdrawn_at: datetime | None = None
    return_reason: str = ""
    finish_due_at: datetime | None = None
    finish_due_seen_at: datetime | None = None
    state: str = ""
    state_at: datetime | None = None
    overdue_reported: bool = False
    overdue_now: bool = False  # as the newest event that carried deadlines had it
    overdue_now_seen_at: datetime | None = None
    urge_count: int = 0
    escalated_at: datetime | None = None

    @property
    def cross_province(self) -> bool:
        return self.requesting_province != self.entrusted_province

    @property
    def month(self) -> str | None:
        """Month of submission in China time, "YYYY-MM"; None until the submission is known."""
        return month_of(self.submitted_at) if self.submitted_at else None

    @property
    def final_state(self) -> str:
        if self.completed_at:
            return DelegationState.COMPLETED.value
        if self.returned_at:
            return DelegationState.RETURNED.value
        if self.withdrawn_at:
            return DelegationState.WITHDRAWN.value
        return self.state

    @property
    def on_time(self) -> bool | None:
        """Completed by the FINISH deadline; None when not completed or the deadline is unknown."""
        if self.completed_at is None or self.finish_due_at is None:
            return None
        return self.completed_at <= self.finish_due_at

    @property
    def overdue(self) -> bool:
        """Went overdue at some time: a deadline was marked overdue, or completed after its FINISH deadline."""
        return self.overdue_reported or self.on_time is False

    @property
    def open_overdue(self) -> bool:
        """Open (not completed, returned or withdrawn) with a deadline of the entrusted court
        overdue now: what ListOverdueDelegations lists, as of the matter's latest event."""
        finished = self.completed_at is not None or self.returned_at is not None or self.withdrawn_at is not None
        return self.overdue_now and not finished

    def observe(self, seen: Observation) -> MatterFacts:
        newer_state = bool(seen.state) and (self.state_at is None or seen.at >= self.state_at)
        newer_due = seen.finish_due_at is not None and (self.finish_due_seen_at is None or seen.at >= self.finish_due_seen_at)
        newer_overdue = seen.overdue_now is not None and (self.overdue_now_seen_at is None or seen.at >= self.overdue_now_seen_at)
        return replace(
            self,
            submitted_at=_earliest(self.submitted_at, seen.submitted_at),
            acknowledged_at=_earliest(self.acknowledged_at, seen.acknowledged_at),
            completed_at=_earliest(self.completed_at, seen.completed_at),
            returned_at=_earliest(self.returned_at, seen.returned_at),
            withdrawn_at=_earliest(self.withdrawn_at, seen.withdrawn_at),
            return_reason=self.return_reason or seen.return_reason,
            finish_due_at=seen.finish_due_at if newer_due else self.finish_due_at,
            finish_due_seen_at=seen.at if newer_due else self.finish_due_seen_at,
            state=seen.state if newer_state else self.state,
            state_at=seen.at if newer_state else self.state_at,
            overdue_reported=self.overdue_reported or seen.overdue,
            overdue_now=seen.overdue_now if newer_overdue and seen.overdue_now is not None else self.overdue_now,
            overdue_now_seen_at=seen.at if newer_overdue else self.overdue_now_seen_at,
            urge_count=self.urge_count + (1 if seen.urged else 0),
            escalated_at=_earliest(self.escalated_at, seen.escalated_at),
        )

    def durations(self, calendar: WorkingCalendar) -> Durations:
        """Time to acknowledge and to complete, from submission; None for what did not happen."""
        if self.submitted_at is None:
            return Durations()
        ack = _elapsed(self.submitted_at, self.acknowledged_at, calendar)
        done = _elapsed(self.submitted_at, self.completed_at, calendar)
        return Durations(ack[0], ack[1], done[0], done[1])

    def contribution(self, durations: Durations) -> Totals:
        """What the matter adds to its group; nothing until its submission (month) is known."""
        if self.submitted_at is None:
            return Totals()
        returned = self.returned_at is not None
        reason_field = _reason_field(self.return_reason) if self.return_reason in _REASON_VALUES else "returned_unspecified"
        return Totals(
            matters=1,
            completed=int(self.completed_at is not None),
            returned=int(returned),
            withdrawn=int(self.withdrawn_at is not None),
            overdue=int(self.overdue),
            open_overdue=int(self.open_overdue),
            on_time=int(self.on_time is True),
            on_time_known=int(self.on_time is not None),
            ack_count=int(durations.ack_seconds is not None),
            ack_seconds=durations.ack_seconds or 0,
            ack_working_seconds=durations.ack_working_seconds or 0,
            complete_count=int(durations.complete_seconds is not None),
            complete_seconds=durations.complete_seconds or 0,
            complete_working_seconds=durations.complete_working_seconds or 0,
            **({reason_field: 1} if returned else {}),
        )


_REASON_VALUES = frozenset(reason.value for reason in RETURN_REASONS)


def month_of(instant: datetime) -> str:
    return instant.astimezone(CHINA_TZ).strftime("%Y-%m")


def _earliest(current: datetime | None, seen: datetime | None) -> datetime | None:
    if current is None:
        return seen
    if seen is None:
        return current
    return min(current, seen)


def _elapsed(start: datetime, end: datetime | None, calendar: WorkingCalendar) -> tuple[int | None, int | None]:
    if end is None:
        return None, None
    if end <= start:
        return 0, 0  # clocks of two systems; a step cannot take negative time
    return _whole_seconds(end - start), working_seconds(calendar, start, end)


def working_seconds(calendar: WorkingCalendar, start: datetime, end: datetime) -> int:
    """Working time between two instants, in whole seconds (WorkingCalendar.working_days_between)."""
    return round(calendar.working_days_between(start, end) * SECONDS_PER_DAY)


def _whole_seconds(delta: timedelta) -> int:
    return round(delta.total_seconds())
