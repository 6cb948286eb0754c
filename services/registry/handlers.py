"""Registry command handlers: the same code serves gRPC, the CLI and event-driven calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from rogatory.events.v1 import events_pb2
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from registry.agencies import AgencyCatalog
from registry.cases import RegisterCase, register_case
from registry.courts import CourtCatalog
from registry.errors import AlreadyExists, NotFound
from services.plumbing.db import Database
from services.plumbing.events import Event, subject
from services.plumbing.idempotency import create_once
from services.plumbing.outbox import Outbox
from services.registry import store
from services.registry.messages import case_to_proto
from services.registry.store import CaseQuery, CaseView

CASE_REGISTERED = "rogatory.case.registered.v1"


def case_registered_subject(court_id: str) -> str:
    return subject("case", court_id, "registered")


@dataclass
class RegistryHandlers:
    db: Database
    outbox: Outbox
    courts: CourtCatalog
    agencies: AgencyCatalog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def load_reference_data(self) -> None:
        async with self.db.transaction() as conn:
            await store.replace_reference_data(conn, list(self.courts), list(self.agencies))

    async def create_case(self, command: RegisterCase, request_id: str = "") -> CaseView:
        """Registers a case; a retry with the same request_id returns the first answer."""
        case, events = register_case(command, self.courts, self.clock())

        async def write(conn: AsyncConnection) -> CaseView:
            seq = await store.insert_case(conn, case, request_id or None)
            view = store.view_of_new_case(seq, case)
            await self.outbox.add(conn, [self._registered_event(view, e.case.registered_at) for e in events])
            return view

        try:
            return await create_once(self.db, self.outbox, request_id, store.case_by_request_id, write)
        except IntegrityError:
            raise AlreadyExists(
                f"case {case.number.text} is already registered as {case.name}",
                reason="CASE_ALREADY_REGISTERED",
                metadata={"name": case.name, "case_number": case.number.text},
            ) from None

    def _registered_event(self, view: CaseView, occurred_at: datetime) -> Event:
        payload = events_pb2.CaseRegistered(case=case_to_proto(view))
        return Event(CASE_REGISTERED, case_registered_subject(view.court_id), payload, occurred_at=occurred_at)

    async def get_case(self, name: str) -> CaseView:
        async with self.db.read() as conn:
            view = await store.case_by_name(conn, name)
        if view is None:
            raise NotFound("case", name)
        return view

    async def list_cases(self, query: CaseQuery, after_seq: int, limit: int) -> list[CaseView]:
        async with self.db.read() as conn:
            return await store.list_cases(conn, query, after_seq, limit)
