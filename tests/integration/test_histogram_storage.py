"""Stored turnaround histograms: the sparse format, the zlib rows written before it, and the
migrations that rewrite one into the other (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
import zlib

import pytest
from alembic import command
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, insert, select

from delegation.turnaround import (
    HISTOGRAM_METRICS,
    PACKED_FIELDS,
    bucket_of,
    decode_histograms,
    encode_histograms,
    packed_hits,
    packed_to_bytes,
    summed_histogram_words,
)
from services.assistance.tables import AgencyTurnaroundAggregateRow
from services.delegation.turnaround import AGG
from services.migrations.common import convert_histograms
from services.plumbing.db import Database
from services.plumbing.migrations import alembic_config, upgrade_to_head

AGENCY_AGG = AgencyTurnaroundAggregateRow.__table__  # type: ignore[attr-defined]


def random_packed(rng: random.Random, matters: int) -> int:
    packed = 0
    for _ in range(matters):
        days = rng.lognormvariate(1.0, 2.0)
        packed += packed_hits({m: bucket_of(days) for m in HISTOGRAM_METRICS})
    return packed


def test_encoding_round_trips_and_reads_the_zlib_rows_of_before() -> None:
    rng = random.Random(3)
    for packed in [0, 1, 1 << (32 * (PACKED_FIELDS - 1)), *(random_packed(rng, n) for n in (1, 5, 400))]:
        stored = encode_histograms(packed)
        assert decode_histograms(stored) == packed
        assert (stored == b"") == (packed == 0)
        assert decode_histograms(zlib.compress(packed_to_bytes(packed), 1)) == packed  # the first format
    with pytest.raises(ValueError):
        encode_histograms(-1)
    with pytest.raises(ValueError):
        decode_histograms(b"\x07abc")


def test_histograms_summed_per_group_equal_the_sum_of_the_packed_ints() -> None:
    rng = random.Random(5)
    packed = [random_packed(rng, rng.randrange(0, 40)) for _ in range(30)]
    groups = [rng.randrange(6) for _ in packed]
    # Old and new rows mixed, as after an upgrade that has not rewritten every row yet.
    stored = [zlib.compress(packed_to_bytes(p), 1) if i % 3 == 0 and p else encode_histograms(p) for i, p in enumerate(packed)]
    words = summed_histogram_words(stored, groups, 7)
    for group in range(7):
        expected = sum(p for p, g in zip(packed, groups, strict=True) if g == group)
        assert int.from_bytes(words[group].astype("<u4").tobytes(), "little") == expected
    assert not words[6].any()  # a group without rows


async def migrate(db: Database, service: str, revision: str) -> None:
    config = alembic_config(service)

    def run(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


AGGREGATE_KEY = {"entrusted": "ha0122", "requesting": "gd0112", "matter_kind": "DEPOSITS", "month": "2026-11"}
AGENCY_KEY = {"agency_id": "bank-icbc", "kind": "FREEZE", "month": "2026-11"}


@pytest.mark.parametrize(
    ("service", "table", "before", "key"),
    [
        ("delegation", AGG, "delegation_0005", {**AGGREGATE_KEY, "entrusted_province": "ha", "requesting_province": "gd"}),
        ("assistance", AGENCY_AGG, "assistance_0007", AGENCY_KEY),
    ],
)
async def test_the_migration_rewrites_every_histogram_and_back(service_db_factory, service, table, before, key) -> None:  # type: ignore[no-untyped-def]
    db = await service_db_factory(service)
    rng = random.Random(9)
    packed = [random_packed(rng, n) for n in (0, 1, 3, 250)] * 3  # more rows than one page of a small chunk
    rows = [{**key, "histograms": encode_histograms(p), **_distinct(table, i)} for i, p in enumerate(packed)]
    async with db.transaction() as conn:
        await conn.execute(insert(table), rows)

    await migrate(db, service, before)
    stored = await _histograms(db, table)
    assert all(blob[:1] == b"\x78" for blob in stored if blob), "downgraded rows are zlib streams"
    assert [decode_histograms(blob) for blob in stored] == packed

    await upgrade_to_head(db, service)
    stored = await _histograms(db, table)
    assert all(blob[:1] == b"\x01" for blob in stored if blob), "upgraded rows are sparse"
    assert [decode_histograms(blob) for blob in stored] == packed


def _distinct(table: object, i: int) -> dict[str, object]:
    """Key values that make row i's primary key its own."""
    if table is AGG:
        return {"grain": "CCKM", "cross_province": True, "month": f"20{10 + i:02d}-01"}
    return {"month": f"20{10 + i:02d}-01"}


async def _histograms(db: Database, table: object) -> list[bytes]:
    async with db.read() as conn:
        rows = (await conn.execute(select(table.c.month, table.c.histograms).order_by(table.c.month))).all()  # type: ignore[attr-defined]
    return [bytes(row[1]) for row in rows]


async def test_the_rewrite_pages_through_the_table_by_key(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await service_db_factory("assistance")
    packed = [random_packed(random.Random(i), i % 4) for i in range(23)]
    async with db.transaction() as conn:
        await conn.execute(
            insert(AGENCY_AGG),
            [{**AGENCY_KEY, "histograms": encode_histograms(p), **_distinct(AGENCY_AGG, i)} for i, p in enumerate(packed)],
        )

    def convert(connection: Connection, to_sparse: bool) -> None:
        with Operations.context(MigrationContext.configure(connection)):
            convert_histograms("agency_turnaround_aggregate", ("agency_id", "kind", "month"), to_sparse=to_sparse, chunk=5)

    for to_sparse, first_byte in ((False, b"\x78"), (True, b"\x01")):
        async with db.engine.begin() as conn:
            await conn.run_sync(convert, to_sparse)
        stored = await _histograms(db, AGENCY_AGG)
        assert all(blob[:1] == first_byte for blob in stored if blob)
        assert [decode_histograms(blob) for blob in stored] == packed
