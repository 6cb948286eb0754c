"""Registry command handlers: the same code serves gRPC, the CLI and event-driven calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from rogatory.events.v1 import events_pb2
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from registry.agencies import AgencyCatalog
from registry.cases import CaseState, CloseCase, RegisterCase, close_case, register_case
from registry.courts import CourtCatalog
from registry.errors import Aborted, AlreadyExists, NotFound
from services.contract.events import CASE_CLOSED, CASE_REGISTERED
from services.plumbing.batching import BatchLoader
from services.plumbing.db import Database
from services.plumbing.events import Event
from services.plumbing.idempotency import RequestKey
from services.plumbing.unit_of_work import Insert, Reader, Tx, Writer
from services.registry import store
from services.registry.messages import case_to_proto, render_case
from services.registry.store import CaseQuery, CaseView


@dataclass
class RegistryHandlers:
    writer: Writer
    reader: Reader
    courts: CourtCatalog
    agencies: AgencyCatalog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    case_loader: BatchLoader[str, CaseView] = field(init=False)

    def __post_init__(self) -> None:
        self.case_loader = self.reader.loader("case-loader", store.cases_by_names)

    @property
    def db(self) -> Database:
        """The service's database, for tests and tools that look at its rows."""
        return self.writer.db

    async def load_reference_data(self) -> None:
        await self.writer.run(lambda tx: store.replace_reference_data(tx.connection, list(self.courts), list(self.agencies)))

    async def create_case(self, command: RegisterCase, request: RequestKey | None = None) -> CaseView:
        """Registers a case; a retry of the same request returns the first answer.

        The hot path: validation, then the case's rows and its event go with the write door's
        batch (one multi-row insert per table for every case registered meanwhile); a
        duplicate case number fails only its own request.
        """
        case, events = register_case(command, self.courts, self.clock())
        new = store.view_of_new_case(case)
        view = replace(new, rendered=render_case(new))  # one rendering for the event and the reply
        registered = [self._registered_event(view, e.case.registered_at) for e in events]
        register = Insert(store.case_rows(case), registered, view)
        try:
            return await self.writer.run(register, request=request, resource_of=_name, replay=_case_named)
        except IntegrityError:
            raise AlreadyExists(
                f"case {case.number.text} is already registered as {case.name}",
                reason="CASE_ALREADY_REGISTERED",
                metadata={"name": case.name, "case_number": case.number.text},
            ) from None

    def _registered_event(self, view: CaseView, occurred_at: datetime) -> Event:
        payload = events_pb2.CaseRegistered(case=case_to_proto(view))
        return CASE_REGISTERED.event(payload, occurred_at=occurred_at, court=view.court_id)

    async def get_case(self, name: str) -> CaseView:
        view = await self.case_loader.load(name)  # concurrent reads share one query
        if view is None:
            raise NotFound("case", name)
        return view

    async def list_cases(self, query: CaseQuery, after_seq: int, limit: int) -> list[CaseView]:
        return await self.reader.run(lambda conn: store.list_cases(conn, query, after_seq, limit))

    # --- closing a case (CloseCase) --------------------------------------------------------------

    async def close_case(self, name: str, court_id: str, command: CloseCase, request: RequestKey | None = None) -> CaseView:
        """Closes the case as `court_id` (its own court only) and publishes `case.closed`.

        A retry of the request that closed it returns the closed case; any other call on a
        closed case is FAILED_PRECONDITION CASE_ALREADY_CLOSED.
        """

        def close(tx: Tx) -> CaseView:
            view = _case_named(tx.connection, name)
            closure = close_case(name, view.court_id, CaseState(view.state), view.version, court_id, command, self.clock())
            if not store.close_case(tx.connection, name, expected_version=view.version, closure=closure):
                raise Aborted(
                    f"{name} changed while it was being closed; read it again and retry",
                    reason="VERSION_MISMATCH",
                    metadata={"case": name, "expected_version": str(view.version)},
                )
            closed = _case_named(tx.connection, name)
            payload = events_pb2.CaseClosed(case=case_to_proto(closed))  # type: ignore[attr-defined]
            tx.emit(CASE_CLOSED.event(payload, occurred_at=closure.closed_at, court=closed.court_id))
            return closed

        return await self.writer.run(close, request=request, resource_of=_name, replay=_case_named)


def _name(view: CaseView) -> str:
    return view.name


def _case_named(conn: Connection, name: str) -> CaseView:
    view = store.case_by_name(conn, name)
    if view is None:
        raise NotFound("case", name)
    return view
