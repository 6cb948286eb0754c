"""Delegation command handlers: the same code serves gRPC, the CLI and event-driven calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rogatory.events.v1 import events_pb2
from sqlalchemy.ext.asyncio import AsyncConnection

from delegation.matters import CreateDelegation, Delegation, create_delegation
from registry.courts import CourtCatalog
from registry.errors import NotFound
from services.case_replica import replica_of
from services.delegation import store
from services.delegation.messages import delegation_to_proto
from services.delegation.store import DelegationQuery, StoredDelegation
from services.plumbing.db import Database
from services.plumbing.events import Event, subject
from services.plumbing.idempotency import create_once
from services.plumbing.ids import new_id
from services.plumbing.outbox import Outbox

DELEGATION_SUBMITTED = "rogatory.delegation.submitted.v1"


def delegation_subject(delegation: Delegation, verb: str) -> str:
    """`rogatory.v1.delegation.{requesting}.{entrusted}.{verb}`: each court can subscribe to its side."""
    return subject("delegation", delegation.requesting_court_id, delegation.entrusted_court_id, verb)


@dataclass
class DelegationHandlers:
    db: Database
    outbox: Outbox
    courts: CourtCatalog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    id_factory: Callable[[], str] = new_id  # injected like the clock, so tests can fix ids

    async def create_delegation(self, command: CreateDelegation, request_id: str = "") -> StoredDelegation:
        """Submits a delegation; a retry with the same request_id returns the first answer."""

        async def write(conn: AsyncConnection) -> StoredDelegation:
            return await self._submit(conn, command, request_id)

        return await create_once(self.db, self.outbox, request_id, store.delegation_by_request_id, write)

    async def _submit(self, conn: AsyncConnection, command: CreateDelegation, request_id: str) -> StoredDelegation:
        # The case is looked up on the writing connection, so the check and the write commit together.
        replica = await replica_of(conn, command.case)
        case_court_id = replica["court_id"] if replica else None
        delegation, events = create_delegation(command, self.courts, case_court_id, self.clock(), delegation_id=self.id_factory())
        seq = await store.insert_delegation(conn, delegation, request_id or None)
        await self.outbox.add(conn, [_submitted_event(e.delegation) for e in events])
        return StoredDelegation(seq, delegation)

    async def get_delegation(self, name: str) -> StoredDelegation:
        async with self.db.read() as conn:
            stored = await store.delegation_by_name(conn, name)
        if stored is None:
            raise NotFound("delegation", name)
        return stored

    async def list_delegations(self, query: DelegationQuery, after_seq: int, limit: int) -> list[StoredDelegation]:
        async with self.db.read() as conn:
            return await store.list_delegations(conn, query, after_seq, limit)


def _submitted_event(delegation: Delegation) -> Event:
    payload = events_pb2.DelegationSubmitted(delegation=delegation_to_proto(delegation))
    subject_ = delegation_subject(delegation, "submitted")
    return Event(DELEGATION_SUBMITTED, subject_, payload, occurred_at=delegation.created_at)
