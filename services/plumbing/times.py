"""Time conversions at the edges: protobuf Timestamps and UTC datetimes from the database."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def utc(value: datetime) -> datetime:
    """`value` in UTC. SQLite hands back naive datetimes: every value Rogatory stores is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
