"""Table definitions every service's first migration creates (outbox, inbox, case replica).

Frozen copies of the schema at that revision: later changes get migrations of their own.
"""

import zlib

import numpy as np
import sqlalchemy as sa
from alembic import op


def create_outbox_and_inbox() -> None:
    op.create_table(
        "outbox",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), nullable=False, unique=True),
        sa.Column("event_type", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("traceparent", sa.String(64), nullable=False, server_default=""),
        sa.Column("tracestate", sa.String(512), nullable=False, server_default=""),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_outbox_unsent", "outbox", ["sent_at", "seq"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(120), primary_key=True),
        sa.Column("event_id", sa.String(36), primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False),
    )


def create_case_replica() -> None:
    op.create_table(
        "case_replica",
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("court_id", sa.String(32), nullable=False, index=True),
        sa.Column("case_number", sa.String(64), nullable=False),
        sa.Column("respondents", sa.Text(), nullable=False, server_default=""),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
    )


# --- turnaround histograms: zlib → sparse entries (delegation_0006, assistance_0008) -------------------------
# Frozen copies of the two stored formats (delegation/turnaround.py): a zlib stream of
# the packed fields' little-endian bytes, and a format byte 1 followed by (u16 field, u32 count)
# entries of the non-empty fields.

_HISTOGRAM_FIELDS = 488


def _zlib_to_sparse(stored: bytes) -> bytes:
    words = np.frombuffer(zlib.decompress(stored).ljust(4 * _HISTOGRAM_FIELDS, b"\0"), dtype="<u4")
    fields = np.flatnonzero(words)
    entries = np.empty(len(fields), dtype=[("field", "<u2"), ("count", "<u4")])
    entries["field"], entries["count"] = fields, words[fields]
    return b"\x01" + entries.tobytes() if len(fields) else b""


def _sparse_to_zlib(stored: bytes) -> bytes:
    entries = np.frombuffer(stored, dtype=[("field", "<u2"), ("count", "<u4")], offset=1)
    words = np.zeros(_HISTOGRAM_FIELDS, dtype="<u4")
    words[entries["field"]] = entries["count"]
    return zlib.compress(words.tobytes().rstrip(b"\0"), 1)


def convert_histograms(table: str, key_columns: tuple[str, ...], *, to_sparse: bool, chunk: int = 5_000) -> None:
    """Rewrites every stored histogram of `table` into the other format, `chunk` rows at a time
    in key order (keyset pages: memory stays flat however long the history)."""
    bind = op.get_bind()
    first_byte, convert = (0x78, _zlib_to_sparse) if to_sparse else (0x01, _sparse_to_zlib)
    keys = ", ".join(key_columns)
    after = f"WHERE ({keys}) > ({', '.join(f':a_{c}' for c in key_columns)})"
    match = " AND ".join(f"{c} = :k_{c}" for c in key_columns)
    update = sa.text(f"UPDATE {table} SET histograms = :h WHERE {match}")
    last: tuple[object, ...] | None = None
    while True:
        page = sa.text(f"SELECT {keys}, histograms FROM {table} {after if last else ''} ORDER BY {keys} LIMIT {chunk}")
        rows = bind.execute(page, {f"a_{c}": v for c, v in zip(key_columns, last or (), strict=False)}).all()
        if not rows:
            return
        changes = [
            {**{f"k_{c}": v for c, v in zip(key_columns, row[:-1], strict=True)}, "h": convert(bytes(row[-1]))}
            for row in rows
            if row[-1] and row[-1][0] == first_byte
        ]
        if changes:
            bind.execute(update, changes)
        last = tuple(rows[-1][:-1])


def create_request_log() -> None:
    """AIP-155 request ids in their scope (services/plumbing/idempotency.py), one row per call that wrote."""
    op.create_table(
        "request_log",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def index_request_log_age() -> None:
    """The index request_id expiry deletes by (services/plumbing/request_expiry.py)."""
    op.create_index("ix_request_log_created_at", "request_log", ["created_at"])
