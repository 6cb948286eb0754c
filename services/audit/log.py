"""Appending the stream's events to the audit chain, anchoring its heads, and verifying it.

Every state change writes its event in the same transaction (outbox), so auditing the
events audits every transition, whichever service made it. The appender is a durable
consumer of `rogatory.v1.>` run by the audit process (main.py): it takes a batch of events,
extends the chain as one unit of that process's write door (services/plumbing/unit_of_work.py:
the head row locked on PostgreSQL, so replicas take turns; the new entries written with one
multi-row INSERT), acks the batch after the commit, and then publishes the new head to the
append-only stream of anchored heads (services/audit/anchors.py). An event seen again
(redelivery, or a republish after the duplicate window) is recognised by its id and not
appended twice. It runs on the one consumer class (services/plumbing/consumer.py) as its
batch handler and hooks, so an outage is waited out as by every consumer; an event it
cannot append is retried, backed off, and never dead-lettered: the chain must hold every
event. Its reads outside a batch (the head at start, `audit-verify`) go through the read door.

Heads are anchored after the commit, never before: a crash in between leaves the newest
entries unanchored for a while (the appender anchors the database's head when it starts
again, and `audit-verify` names them), but never an anchored head the database does not
hold — that can only mean tampering. So the appender extends the chain only from a head
that holds the last head anchored (its own or another replica's, which it hears on the
anchor subject): checked when it starts and in every append transaction. When the chain no
longer holds it (rows deleted from the end, an entry rewritten and every later hash
recomputed), the appender appends nothing, leaves the events in the stream, publishes an
`AuditChainBroken` alert, reports NOT_SERVING for `rogatory.audit` on the gRPC health
service, and checks again every `recheck_interval` seconds: it resumes by itself once an
operator has restored the database so that it holds the anchored head again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js import JetStreamContext
from rogatory.events.v1 import alert_events_pb2
from sqlalchemy import bindparam, inspect, select
from sqlalchemy.engine import Connection

from services.audit.anchors import (
    ANCHOR_STREAM,
    ANCHOR_SUBJECT,
    AnchorsUnavailable,
    decode_anchor,
    ensure_anchor_stream,
    last_anchor,
    publish_anchor,
    read_anchors,
)
from services.audit.chain import GENESIS, Anchor, AuditEntry, Break, anchor_break, entry_hash, verify
from services.audit.tables import AuditLogRow
from services.contract.events import ALERT_AUDIT_BROKEN, AUDIT_CONSUMER
from services.plumbing.consumer import Consumer, ConsumerHooks, GiveBack, JetStreamSource
from services.plumbing.events import ReceivedEvent, envelope_headers, subject_filter
from services.plumbing.unit_of_work import Reader, Tx, Writer

log = logging.getLogger(__name__)

AUDIT = AuditLogRow.__table__  # type: ignore[attr-defined]
CONSUMER = AUDIT_CONSUMER
SUBJECTS = [subject_filter(">")]
AUDIT_HEALTH = "rogatory.audit"  # the gRPC health service name of the audit appender
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


class ChainTampered(GiveBack):
    """The chain in the database no longer holds the last anchored head."""

    def __init__(self, problem: Break, anchored: Anchor, head_seq: int):
        super().__init__(problem.problem)
        self.problem, self.anchored, self.head_seq = problem, anchored, head_seq


class AuditAppender(ConsumerHooks):
    """Appends whole batches to the chain and anchors each head: the batch handler and the
    hooks of a durable consumer of every event (`self.consumer`, run by the audit process)."""

    def __init__(
        self,
        writer: Writer,
        reader: Reader,
        js: JetStreamContext,
        nc: NATS,
        *,
        stream: str,
        batch: int = 256,
        health: HealthServicer | None = None,
        anchor_replicas: int = 1,
        recheck_interval: float = 5.0,
        linger: float = 0.0,
    ):
        self.reader = reader
        self.js = js
        self.nc = nc
        self.health = health
        self.anchor_replicas = anchor_replicas
        self.recheck_interval = recheck_interval
        self.appended = 0
        self.anchored: Anchor | None = None  # the last head anchored, by any replica
        self.refusal: ChainTampered | None = None  # set while the chain does not hold `anchored`
        self._unanchored: Anchor | None = None  # a committed head whose publication failed
        self._appending: tuple[Anchor, int] | None = None  # (head, entries) of the last append transaction
        self._lock = not writer.db.is_sqlite  # PostgreSQL: replicas take turns on the head row
        self._anchor_subscription: Subscription | None = None
        source = JetStreamSource(js, stream=stream, durable=CONSUMER, filter_subjects=SUBJECTS)
        # The chain is its own inbox (an event id already chained is skipped), and no event is
        # given up on: the chain must hold every one, so one it cannot append is retried,
        # backed off, until it can be (never dead-lettered).
        self.consumer = Consumer(
            source, writer=writer, batch_handler=self.append, hooks=self, inbox=False, max_deliveries=None, batch=batch,
            linger=linger,
        )  # fmt: skip

    async def started(self) -> None:
        await self._set_serving(False)  # until the chain is checked against the last anchored head

    async def subscribing(self) -> None:
        """Before each (re)subscription: the anchor stream, the latest anchored head, and the
        check that the chain still holds it."""
        await ensure_anchor_stream(self.js, self.anchor_replicas)
        if self._anchor_subscription is None:  # core NATS resubscribes by itself after a reconnect
            self._anchor_subscription = await self.nc.subscribe(ANCHOR_SUBJECT, cb=self._heard)
        if latest := await last_anchor(self.js):
            self._note_anchored(latest)
        await self._check()

    async def before_fetch(self) -> bool:
        """Nothing is fetched while refusing: the chain is checked again every `recheck_interval`."""
        if self.refusal is None:
            return True
        if await self.consumer.rest(self.recheck_interval):
            await self._check()
        return False

    async def idle(self) -> None:
        await self._anchor_unanchored()  # idle: the moment to retry a failed publication

    def append(self, tx: Tx, events: Sequence[ReceivedEvent]) -> None:
        """The batch handler, a unit of the write door: appends the events not chained yet
        after the head. Raises ChainTampered (appending nothing, the batch given back) when
        the chain does not hold the last anchored head."""
        rows = _append_new(tx, events, lock=self._lock, anchored=self.anchored)
        self._appending = (Anchor(rows[-1]["seq"], rows[-1]["hash"]), len(rows)) if rows else None

    async def applied(self, events: Sequence[ReceivedEvent]) -> None:
        """The batch is committed and acked: its head is anchored now, never before."""
        appended, self._appending = self._appending, None
        if appended is None:
            return
        head, entries = appended
        self.appended += entries
        self._unanchored = head
        await self._anchor_unanchored()

    async def gave_back(self, reason: GiveBack) -> None:
        if isinstance(reason, ChainTampered):  # the events wait in the stream until the chain is restored
            await self._refuse(reason)

    async def stopped(self) -> None:
        if self._anchor_subscription is not None:
            with contextlib.suppress(Exception):  # the connection may already be gone
                await self._anchor_subscription.unsubscribe()
        await self._set_serving(False)

    async def _heard(self, msg: Msg) -> None:
        try:
            self._note_anchored(decode_anchor(msg.data))
        except (ValueError, KeyError, TypeError):
            log.warning("audit: unreadable anchor on %s ignored", msg.subject)

    def _note_anchored(self, anchor: Anchor) -> None:
        if self.anchored is None or anchor.seq > self.anchored.seq:
            self.anchored = anchor

    async def _check(self) -> None:
        """Refuses, or resumes, depending on whether the chain holds the last anchored head;
        anchors the chain's head when it is newer (e.g. after a crash before publishing)."""
        anchored = self.anchored
        head, problem = await self.reader.run(lambda conn: _check_head(conn, anchored))
        if problem is not None and anchored is not None:
            await self._refuse(ChainTampered(problem, anchored, head.seq if head else 0))
            return
        if self.refusal is not None:
            log.warning("audit: the chain holds the anchored head %d again: appending resumes", self.refusal.anchored.seq)
            self.refusal = None
        await self._set_serving(True)
        if head is not None and (anchored is None or head.seq > anchored.seq):
            self._unanchored = head
            await self._anchor_unanchored()

    async def _anchor_unanchored(self) -> None:
        head = self._unanchored
        if head is None:
            return
        try:
            await publish_anchor(self.js, head)
        except Exception:  # noqa: BLE001 - retried when idle; the next batch publishes a newer head
            log.warning("audit: head %d not anchored yet", head.seq, exc_info=True)
            return
        self._note_anchored(head)
        if self._unanchored == head:
            self._unanchored = None

    async def _refuse(self, tampered: ChainTampered) -> None:
        first = self.refusal is None
        self.refusal = tampered
        if not first:
            return
        log.error(
            "audit: ALERT the audit log no longer holds the head anchored at entry %d: %s. Appending stopped "
            "(health %s NOT_SERVING) until the database holds that head again; see `rogatory audit-verify`",
            tampered.anchored.seq, tampered.problem.problem, AUDIT_HEALTH,
        )  # fmt: skip
        await self._set_serving(False)
        await self._alert(tampered)

    async def _alert(self, tampered: ChainTampered) -> None:
        now = datetime.now(UTC)
        alert = alert_events_pb2.AuditChainBroken(
            consumer=CONSUMER,
            anchored_seq=tampered.anchored.seq,
            anchored_hash=tampered.anchored.hash,
            chain_head_seq=tampered.head_seq,
            problem=tampered.problem.problem,
        )
        alert.detect_time.FromDatetime(now)
        headers = envelope_headers(
            event_id=f"alert:{CONSUMER}:{tampered.anchored.seq}:{tampered.anchored.hash}",  # replicas alert once
            event_type=ALERT_AUDIT_BROKEN.type, occurred_at=now, source=f"rogatory/consumer/{CONSUMER}", traceparent="", tracestate="",
        )  # fmt: skip
        try:
            await self.js.publish(ALERT_AUDIT_BROKEN.subject.format(), alert.SerializeToString(), headers=headers)
        except Exception:  # noqa: BLE001 - the log line and the health status still say it
            log.exception("audit: the alert could not be published")

    async def _set_serving(self, serving: bool) -> None:
        if self.health is not None:
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            await self.health.set(AUDIT_HEALTH, status)


# Built once: at one event per batch, building them cost more than running them.
_HEAD = select(AUDIT).order_by(AUDIT.c.seq.desc()).limit(1)
_HEAD_LOCKED = _HEAD.with_for_update()
_HASH_AT = select(AUDIT.c.hash).where(AUDIT.c.seq == bindparam("seq"))
_KNOWN = select(AUDIT.c.event_id).where(AUDIT.c.event_id.in_(bindparam("event_ids", expanding=True)))


def _append_new(tx: Tx, events: Sequence[ReceivedEvent], *, lock: bool, anchored: Anchor | None) -> list[dict[str, Any]]:
    """Appends the events not in the chain yet after its head, as one unit (two reads, and
    the entries written with the batch's rows in one multi-row INSERT); the rows appended.
    Raises ChainTampered, appending nothing, when the chain does not hold `anchored`."""
    conn = tx.connection
    head = conn.execute(_HEAD_LOCKED if lock else _HEAD).mappings().first()
    seq, prev = (head["seq"], head["hash"]) if head else (0, GENESIS)
    if anchored is not None and (problem := _anchor_problem(conn, seq, prev, anchored)):
        raise ChainTampered(problem, anchored, seq)
    known = set(conn.execute(_KNOWN, {"event_ids": [_event_id(event) for event in events]}).scalars())
    rows = []
    for event in events:
        event_id = _event_id(event)
        if event_id in known:
            continue
        known.add(event_id)
        seq += 1
        entry = _entry(event, event_id, seq, prev)
        prev = entry.hash
        rows.append({c: getattr(entry, c) for c in COLUMNS})
    tx.insert(AUDIT, rows)
    return rows


def _anchor_problem(conn: Connection, head_seq: int, head_hash: str, anchored: Anchor) -> Break | None:
    """Whether the chain ending at (head_seq, head_hash) holds `anchored`: usually the head
    itself, so no query."""
    if anchored.seq == head_seq:
        found: str | None = head_hash
    else:
        found = conn.execute(_HASH_AT, {"seq": anchored.seq}).scalar() if anchored.seq < head_seq else None
    return anchor_break(anchored, found, head_seq)


def _check_head(conn: Connection, anchored: Anchor | None) -> tuple[Anchor | None, Break | None]:
    """The chain's head, and why it does not hold `anchored` (None when it does)."""
    head = conn.execute(_HEAD).mappings().first()
    seq, hash_ = (head["seq"], head["hash"]) if head else (0, GENESIS)
    problem = _anchor_problem(conn, seq, hash_, anchored) if anchored is not None else None
    return (Anchor(seq, hash_) if head else None), problem


def _event_id(event: ReceivedEvent) -> str:
    return event.event_id or f"stream:{event.stream_seq}"


def _entry(event: ReceivedEvent, event_id: str, seq: int, prev: str) -> AuditEntry:
    entry = AuditEntry(
        seq=seq,
        stream_seq=event.stream_seq,
        event_id=event_id,
        event_type=event.event_type,
        subject=event.subject,
        occurred_at=event.headers.get("ce-time", ""),
        source=event.source,
        payload_sha256=hashlib.sha256(event.data).hexdigest(),
        prev_hash=prev,
    )
    return AuditEntry(**{**entry.__dict__, "hash": entry_hash(entry)})


class NoAuditLog(Exception):
    """The database holds no audit log: it has no audit_log table (not the audit database,
    or one never migrated), so there is nothing to verify."""


async def read_chain(reader: Reader) -> list[AuditEntry]:
    """The whole chain, oldest entry first, read through the read door."""
    return await reader.run(_read_chain)


def _read_chain(conn: Connection) -> list[AuditEntry]:
    if not inspect(conn).has_table(AUDIT.name):
        raise NoAuditLog(f"has no {AUDIT.name} table")
    rows = conn.execute(select(AUDIT).order_by(AUDIT.c.seq)).mappings().all()
    return [AuditEntry(**{c: row[c] for c in COLUMNS}) for row in rows]


INTACT, BROKEN, UNVERIFIED = "INTACT", "BROKEN", "UNVERIFIED"


@dataclass(frozen=True)
class Verification:
    """What `audit-verify` found."""

    entries: int
    breaks: list[Break]
    anchors: list[Anchor] | None  # None: the anchored heads could not be read
    unchecked: str = ""  # why not

    @property
    def outcome(self) -> str:
        """BROKEN on any break; UNVERIFIED when the chain holds but its anchors could not be
        checked (what the chain cannot show alone would not have shown); else INTACT."""
        return BROKEN if self.breaks else UNVERIFIED if self.anchors is None else INTACT

    def summary(self) -> str:
        text = f"audit log: {self.entries} entries, {self.outcome}"
        if self.anchors is None:
            return text + (
                f": the anchored heads could not be checked ({self.unchecked}), so entries deleted from the end,"
                " or rewritten with every later hash recomputed, would not show"
            )
        last = max((a.seq for a in self.anchors), default=0)
        text += f", checked against {len(self.anchors)} anchored head(s)"
        if self.outcome == INTACT and self.entries > last:
            newest = f"entry {last + 1} is" if self.entries == last + 1 else f"entries {last + 1}..{self.entries} are"
            text += f"; {newest} not anchored yet"
        return text


async def verify_log(reader: Reader, js: JetStreamContext | None, *, unchecked: str = "NATS not given") -> Verification:
    """Checks the chain and that it holds every anchored head (read from `js`); without
    `js`, or when the anchors cannot be read, says why (`unchecked`)."""
    entries = await read_chain(reader)
    anchors: list[Anchor] | None = None
    if js is not None:
        try:
            anchors = await read_anchors(js)
        except AnchorsUnavailable as exc:
            unchecked = str(exc)
    breaks = verify(entries, anchors or ())
    if entries and anchors == []:  # a running appender anchors its head at once: the stream was replaced
        anchors, unchecked = None, f"no head of the chain was ever anchored in {ANCHOR_STREAM}"
    return Verification(len(entries), breaks, anchors, unchecked)
