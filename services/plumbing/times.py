"""Time conversions at the edges: protobuf Timestamps and Durations, UTC datetimes from the database.

A request's Timestamp or Duration outside what the protobuf types allow (year 1 … 9999;
±10,000 years, `nanos` within ±999,999,999 and of the sign of `seconds`) is INVALID_ARGUMENT
on its field, never an overflow turned INTERNAL.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from registry.errors import FieldViolation, InvalidArgument

MAX_DURATION_SECONDS = 315_576_000_000  # google/protobuf/duration.proto: about 10,000 years
_NANOS = 1_000_000_000


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def datetime_of(stamp: Timestamp, field: str) -> datetime:
    """A request's Timestamp as an aware UTC datetime; TIME_OUT_OF_RANGE when it is not a valid one."""
    try:
        return stamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise InvalidArgument.of(
            [
                FieldViolation(
                    field, "not a valid time: between 0001-01-01 and 9999-12-31, nanos 0 … 999,999,999", "TIME_OUT_OF_RANGE"
                )
            ]
        ) from None


def timedelta_of(duration: Duration, field: str) -> timedelta:
    """A request's Duration as a timedelta; DURATION_OUT_OF_RANGE when it is not a valid one."""
    seconds, nanos = duration.seconds, duration.nanos
    if abs(seconds) > MAX_DURATION_SECONDS or abs(nanos) >= _NANOS or seconds * nanos < 0:
        raise InvalidArgument.of(
            [
                FieldViolation(
                    field,
                    f"not a valid duration: at most {MAX_DURATION_SECONDS:,} s, nanos of the sign of seconds",
                    "DURATION_OUT_OF_RANGE",
                )
            ]
        )
    return duration.ToTimedelta()


def utc(value: datetime) -> datetime:
    """`value` in UTC. SQLite hands back naive datetimes: every value Rogatory stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# --- instants in JSON documents (stored aggregates) ---------------------------------------------------


def time_to_json(value: datetime | None) -> str | None:
    """ISO 8601 in UTC; the domain's datetimes are all timezone-aware."""
    return None if value is None else value.astimezone(UTC).isoformat()


def time_from_json(value: str | None) -> datetime | None:
    return None if value is None else required_time_from_json(value)


def required_time_from_json(value: str) -> datetime:
    """An instant `time_to_json` wrote (a naive one is taken as UTC)."""
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
