"""Registry command handlers: the same code serves gRPC, the CLI and event-driven calls."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from rogatory.events.v1 import events_pb2
from sqlalchemy.exc import IntegrityError

from registry.agencies import AgencyCatalog
from registry.cases import CaseClosure, CaseState, CloseCase, RegisterCase, close_case, register_case
from registry.courts import CourtCatalog
from registry.errors import Aborted, AlreadyExists, NotFound
from services.contract.events import CASE_CLOSED, CASE_REGISTERED
from services.plumbing.batching import BatchLoader
from services.plumbing.db import Database
from services.plumbing.events import Event
from services.plumbing.group_commit import GroupCommitter
from services.plumbing.idempotency import REQUEST_LOG, RequestKey, earlier_resource, record
from services.plumbing.outbox import OUTBOX, Outbox
from services.registry import store
from services.registry.messages import case_to_proto
from services.registry.store import CaseQuery, CaseView


@dataclass
class RegistryHandlers:
    db: Database
    outbox: Outbox
    courts: CourtCatalog
    agencies: AgencyCatalog
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    committer: GroupCommitter = field(init=False)
    case_loader: BatchLoader[str, CaseView] = field(init=False)

    def __post_init__(self) -> None:
        self.committer = GroupCommitter(self.db)
        self.case_loader = BatchLoader("case-loader", self._cases_by_names)

    async def _cases_by_names(self, names: list[str]) -> dict[str, CaseView]:
        return await self.db.run_read(functools.partial(store.cases_by_names, names=names))

    async def load_reference_data(self) -> None:
        async with self.db.transaction() as conn:
            await store.replace_reference_data(conn, list(self.courts), list(self.agencies))

    async def create_case(self, command: RegisterCase, request: RequestKey | None = None) -> CaseView:
        """Registers a case; a retry of the same request returns the first answer.

        The hot path: validation, then one group-committed insert of the case, its parties,
        its request's log row and its event. Idempotency rests on the request log's key, so a
        first call pays no look-up; a retry (or a duplicate case number) fails the insert and
        is answered from the stored case.
        """
        case, events = register_case(command, self.courts, self.clock())
        view = store.view_of_new_case(case)
        outbox_rows = self.outbox.rows(self._registered_event(view, e.case.registered_at) for e in events)
        logged = [(REQUEST_LOG, [request.log_row(case.name)])] if request else []
        try:
            await self.committer.insert([*store.case_rows(case), *logged, (OUTBOX, outbox_rows)])
        except IntegrityError:
            if request and (earlier := await self._earlier(request)):
                return earlier
            raise AlreadyExists(
                f"case {case.number.text} is already registered as {case.name}",
                reason="CASE_ALREADY_REGISTERED",
                metadata={"name": case.name, "case_number": case.number.text},
            ) from None
        self.outbox.notify()
        return view

    async def _earlier(self, request: RequestKey | None) -> CaseView | None:
        """The case an earlier call with this request's key wrote (ALREADY_EXISTS if it asked for another)."""
        async with self.db.read() as conn:
            name = await conn.run_sync(earlier_resource, request)
            return await store.case_by_name(conn, name) if name else None

    def _registered_event(self, view: CaseView, occurred_at: datetime) -> Event:
        payload = events_pb2.CaseRegistered(case=case_to_proto(view))
        return CASE_REGISTERED.event(payload, occurred_at=occurred_at, court=view.court_id)

    async def get_case(self, name: str) -> CaseView:
        view = await self.case_loader.load(name)  # concurrent reads share one query
        if view is None:
            raise NotFound("case", name)
        return view

    async def list_cases(self, query: CaseQuery, after_seq: int, limit: int) -> list[CaseView]:
        async with self.db.read() as conn:
            return await store.list_cases(conn, query, after_seq, limit)

    # --- closing a case (CloseCase) --------------------------------------------------------------

    async def close_case(self, name: str, court_id: str, command: CloseCase, request: RequestKey | None = None) -> CaseView:
        """Closes the case as `court_id` (its own court only) and publishes `case.closed`.

        A retry of the request that closed it returns the closed case; any other call on a
        closed case is FAILED_PRECONDITION CASE_ALREADY_CLOSED.
        """
        async with self.db.read() as conn:
            view = await store.case_by_name(conn, name)
        if view is None:
            raise NotFound("case", name)
        if (earlier := await self._earlier(request)) is not None:
            return earlier
        closure = close_case(name, view.court_id, CaseState(view.state), view.version, court_id, command, self.clock())
        try:
            return await self._close(view, closure, request)
        except (Aborted, IntegrityError):
            # Two copies of one request raced (replicas on PostgreSQL): the loser answers like a later retry would.
            if (earlier := await self._earlier(request)) is not None:
                return earlier
            raise

    async def _close(self, view: CaseView, closure: CaseClosure, request: RequestKey | None) -> CaseView:
        name = view.name
        async with self.db.transaction() as conn:
            await conn.run_sync(record, request, name)
            written = await store.close_case(conn, name, expected_version=view.version, closure=closure)
            if not written:
                raise Aborted(
                    f"{name} changed while it was being closed; read it again and retry",
                    reason="VERSION_MISMATCH",
                    metadata={"case": name, "expected_version": str(view.version)},
                )
            closed = await store.case_by_name(conn, name)
            assert closed is not None
            payload = events_pb2.CaseClosed(case=case_to_proto(closed))  # type: ignore[attr-defined]
            event = CASE_CLOSED.event(payload, occurred_at=closure.closed_at, court=closed.court_id)
            await self.outbox.add(conn, [event])
        self.outbox.notify()
        return closed
