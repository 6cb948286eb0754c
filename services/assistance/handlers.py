"""Assistance command handlers: the same code serves gRPC, the CLI and event-driven calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rogatory.events.v1 import events_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from assistance.notices import AssistanceNotice, CreateNotice, create_notice
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import NotFound
from services.assistance import store
from services.assistance.messages import notice_to_proto
from services.assistance.store import NoticeQuery, StoredNotice
from services.case_replica import replica_of
from services.plumbing.db import Database
from services.plumbing.events import Event, subject
from services.plumbing.idempotency import create_once
from services.plumbing.ids import new_id
from services.plumbing.outbox import Outbox

NOTICE_SENT = "rogatory.notice.sent.v1"


def notice_subject(notice: AssistanceNotice, verb: str) -> str:
    """`rogatory.v1.notice.{court}.{agency}.{verb}`: an agency subscribes to `notice.*.{agency}.>`."""
    return subject("notice", notice.court_id, notice.agency_id, verb)


@dataclass
class AssistanceHandlers:
    db: Database
    outbox: Outbox
    courts: CourtCatalog
    agencies: AgencyCatalog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id  # injected like the clock, so tests can fix ids

    async def create_notice(self, command: CreateNotice, request_id: str = "") -> StoredNotice:
        """Sends a notice; a retry with the same request_id returns the first answer."""

        async def write(conn: AsyncConnection) -> StoredNotice:
            return await self._send(conn, command, request_id)

        return await create_once(self.db, self.outbox, request_id, store.notice_by_request_id, write)

    async def _send(self, conn: AsyncConnection, command: CreateNotice, request_id: str) -> StoredNotice:
        # The case is looked up on the writing connection, so the check and the write commit together.
        replica = await replica_of(conn, command.case)
        case_court_id = replica["court_id"] if replica else None
        notice, events = create_notice(
            command, self.courts, self.agencies, case_court_id, self.clock(), notice_id=self.id_factory()
        )
        seq = await store.insert_notice(conn, notice, request_id or None)
        await self.outbox.add(conn, [_sent_event(e.notice) for e in events])
        return StoredNotice(seq, notice)

    async def get_notice(self, name: str) -> StoredNotice:
        async with self.db.read() as conn:
            stored = await store.notice_by_name(conn, name)
        if stored is None:
            raise NotFound("assistance notice", name)
        return stored

    async def list_notices(self, query: NoticeQuery, after_seq: int, limit: int) -> list[StoredNotice]:
        async with self.db.read() as conn:
            return await store.list_notices(conn, query, after_seq, limit)


def _sent_event(notice: AssistanceNotice) -> Event:
    payload = events_pb2.AssistanceNoticeSent(assistance_notice=notice_to_proto(notice))
    return Event(NOTICE_SENT, notice_subject(notice, "sent"), payload, occurred_at=notice.created_at)
