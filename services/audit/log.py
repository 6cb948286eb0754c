"""Appending the stream's events to the audit chain, and reading the chain back to verify it.

Every state change writes its event in the same transaction (outbox), so auditing the
events audits every transition, whichever service made it. The appender is a durable
consumer of `rogatory.v1.>` hosted by the registry service: it takes a batch of events,
extends the chain in one transaction (the head row locked, so replicas take turns), acks
the batch after the commit, and then publishes the new head to the JetStream key-value
bucket `rogatory-audit` (key `head`) — the anchor that shows entries deleted from the end.
An event seen again (redelivery, or a republish after the duplicate window) is recognised
by its id and not appended twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, KeyNotFoundError
from sqlalchemy import bindparam, insert, select
from sqlalchemy.engine import Connection

from services.audit.chain import GENESIS, Anchor, AuditEntry, Break, entry_hash, verify
from services.audit.tables import AuditLogRow
from services.plumbing.consumer import EventConsumer, start_process_span, to_received_event
from services.plumbing.db import BulkStatement, Database
from services.plumbing.events import subject_filter

log = logging.getLogger(__name__)

AUDIT = AuditLogRow.__table__  # type: ignore[attr-defined]
CONSUMER = "registry-audit"
SUBJECTS = [subject_filter(">")]
ANCHOR_BUCKET, ANCHOR_KEY = "rogatory-audit", "head"
COLUMNS = (
    "seq",
    "stream_seq",
    "event_id",
    "event_type",
    "subject",
    "occurred_at",
    "source",
    "payload_sha256",
    "prev_hash",
    "hash",
)


async def _ignore(*_args: Any) -> None:  # the appender handles batches itself
    return None


class AuditAppender(EventConsumer):
    """A durable consumer that appends whole batches to the chain."""

    def __init__(self, db: Database, js: JetStreamContext, *, stream: str, batch: int = 256):
        super().__init__(db, js, stream=stream, durable=CONSUMER, filter_subjects=SUBJECTS, handler=_ignore, batch=batch)
        self.appended = 0
        self._anchor_kv: Any = None  # looked up once: each lookup is a JetStream API round trip

    async def _pull_loop(self, subscription: JetStreamContext.PullSubscription) -> None:
        while not self._stopping.is_set():
            try:
                messages = await subscription.fetch(self.batch, timeout=1.0)
            except (TimeoutError, NatsTimeoutError):
                continue  # nothing new: fetch raises by design
            await self.append(messages)

    async def append(self, messages: list[Msg]) -> None:
        # One CONSUMER span per event, in the event's trace (one matter, one trace), ending
        # when the batch that appends it commits.
        spans = [start_process_span(self.durable, msg, to_received_event(msg)) for msg in messages]
        try:
            head = await self._extend_chain(messages)
        except Exception:
            log.exception("audit: %d events not appended; they come back", len(messages))
            for msg in messages:
                await msg.nak(delay=1.0)
            return
        finally:
            for span in spans:
                span.end()
        for msg in messages:
            await msg.ack()
        if head is not None:
            await self._publish_anchor(head)

    async def _extend_chain(self, messages: list[Msg]) -> Anchor | None:
        events = [(msg, _event_id(msg)) for msg in messages]
        lock = not self.db.is_sqlite  # PostgreSQL: replicas take turns on the head row
        rows = await self.db.run_transaction(lambda conn: _append_new(conn, events, lock=lock))
        self.appended += len(rows)
        return Anchor(rows[-1]["seq"], rows[-1]["hash"]) if rows else None

    async def _publish_anchor(self, head: Anchor) -> None:
        try:
            if self._anchor_kv is None:
                self._anchor_kv = await _anchor_bucket(self.js, create=True)
            await self._anchor_kv.put(ANCHOR_KEY, json.dumps({"seq": head.seq, "hash": head.hash}).encode())
        except Exception:  # noqa: BLE001 - the next batch publishes a newer head
            self._anchor_kv = None  # looked up again next time, in case the bucket went
            log.warning("audit: head %d not anchored", head.seq, exc_info=True)


# Built once: at one event per batch, building them cost more than running them.
_HEAD = select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)
_HEAD_LOCKED = _HEAD.with_for_update()
_KNOWN = select(AUDIT.c.event_id).where(AUDIT.c.event_id.in_(bindparam("event_ids", expanding=True)))
_INSERT = BulkStatement(insert(AUDIT), keys=list(COLUMNS))


def _append_new(conn: Connection, events: list[tuple[Msg, str]], *, lock: bool) -> list[dict[str, Any]]:
    """Appends the events not in the chain yet after its head, in one transaction; the rows appended."""
    head = conn.execute(_HEAD_LOCKED if lock else _HEAD).mappings().first()
    seq, prev = (head["seq"], head["hash"]) if head else (0, GENESIS)
    known = set(conn.execute(_KNOWN, {"event_ids": [event_id for _, event_id in events]}).scalars())
    rows = []
    for msg, event_id in events:
        if event_id in known:
            continue
        known.add(event_id)
        seq += 1
        entry = _entry(msg, event_id, seq, prev)
        prev = entry.hash
        rows.append({c: getattr(entry, c) for c in COLUMNS})
    _INSERT.execute_sync(conn, rows)
    return rows


def _event_id(msg: Msg) -> str:
    headers = msg.headers or {}
    return headers.get("ce-id") or headers.get("Nats-Msg-Id") or f"stream:{msg.metadata.sequence.stream}"


def _entry(msg: Msg, event_id: str, seq: int, prev: str) -> AuditEntry:
    headers = msg.headers or {}
    entry = AuditEntry(
        seq=seq,
        stream_seq=msg.metadata.sequence.stream,
        event_id=event_id,
        event_type=headers.get("ce-type", ""),
        subject=msg.subject,
        occurred_at=headers.get("ce-time", ""),
        source=headers.get("ce-source", ""),
        payload_sha256=hashlib.sha256(msg.data).hexdigest(),
        prev_hash=prev,
    )
    return AuditEntry(**{**entry.__dict__, "hash": entry_hash(entry)})


async def _anchor_bucket(js: JetStreamContext, *, create: bool) -> Any:
    try:
        return await js.key_value(ANCHOR_BUCKET)
    except BucketNotFoundError:
        if not create:
            raise
        return await js.create_key_value(bucket=ANCHOR_BUCKET, history=16)


async def read_chain(db: Database) -> list[AuditEntry]:
    async with db.read() as conn:
        rows = (await conn.execute(select(AUDIT).order_by(AUDIT.c.seq))).mappings().all()
    return [AuditEntry(**{c: row[c] for c in COLUMNS}) for row in rows]


async def read_anchor(js: JetStreamContext) -> Anchor | None:
    """The last published head; None when nothing was anchored yet."""
    try:
        kv = await _anchor_bucket(js, create=False)
        value = json.loads((await kv.get(ANCHOR_KEY)).value or b"{}")
    except (BucketNotFoundError, KeyNotFoundError):
        return None
    return Anchor(int(value["seq"]), str(value["hash"]))


async def verify_log(db: Database, js: JetStreamContext | None) -> tuple[int, list[Break]]:
    """How many entries the log holds and every break in it (the anchor checked when NATS is given)."""
    entries = await read_chain(db)
    anchor = await read_anchor(js) if js is not None else None
    return len(entries), verify(entries, anchor)
