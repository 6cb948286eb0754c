"""CloseCase against real SQLite and PostgreSQL: the registry closes a case and publishes
`case.closed`; the assistance service's vehicle-control consumer ends the case's controls."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from rogatory.events.v1 import events_pb2, vehicle_events_pb2
from rogatory.registry.v1 import registry_pb2
from sqlalchemy import delete, insert, select

from assistance import vehicles as v
from registry.agencies import AgencyCatalog
from registry.cases import CloseCase
from registry.courts import CourtCatalog
from registry.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from services.assistance.vehicles.handlers import VehicleControlHandlers
from services.contract.case_replica import CaseReplica
from services.plumbing.auth import Principal, PrincipalKind
from services.plumbing.events import ReceivedEvent
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.unit_of_work import Reader, Writer
from services.registry.handlers import RegistryHandlers
from services.registry.messages import case_to_proto
from tests.conftest import Clock, request_key
from tests.integration.test_registry_store import NOW, command
from tests.integration.test_vehicle_control_store import CREATE, MONDAY, WENZHOU

CASE = "courts/zj0326/cases/2023-enf-1234"


@pytest.fixture
async def registry(service_db_factory: Any) -> RegistryHandlers:
    db = await service_db_factory("registry")
    return RegistryHandlers(Writer(db, Outbox()), Reader(db), CourtCatalog.default(), AgencyCatalog.default(), clock=lambda: NOW)


async def closed_events(registry: RegistryHandlers) -> list[tuple[str, bytes]]:
    async with registry.db.read() as conn:
        rows = (await conn.execute(select(OUTBOX.c.subject, OUTBOX.c.payload).order_by(OUTBOX.c.seq))).all()
    return [(r[0], r[1]) for r in rows if r[0].endswith(".closed")]


async def test_close_case_records_state_and_publishes(registry: RegistryHandlers) -> None:
    created = await registry.create_case(command(1234))
    closed = await registry.close_case(
        created.name, "zj0326", CloseCase("EXECUTED_IN_FULL", "已全部履行", 1), request_key("close-1", "courts/zj0326")
    )
    assert (closed.state, closed.close_outcome, closed.close_reason, closed.version) == (
        "CLOSED",
        "EXECUTED_IN_FULL",
        "已全部履行",
        2,
    )
    proto = case_to_proto(closed)
    assert proto.state == registry_pb2.Case.CLOSED and proto.closure.outcome == registry_pb2.CaseClosure.EXECUTED_IN_FULL
    assert proto.etag == 'W/"2"'
    [(subject, payload)] = await closed_events(registry)
    assert subject == "rogatory.v1.case.zj0326.closed"
    event = events_pb2.CaseClosed.FromString(payload)
    assert event.case.name == created.name and event.case.parties[1].id_number == "110105********002X"  # masked
    again = await registry.close_case(
        created.name, "zj0326", CloseCase("EXECUTED_IN_FULL"), request_key("close-1", "courts/zj0326")
    )  # a retry
    assert again.version == 2 and len(await closed_events(registry)) == 1
    with pytest.raises(FailedPrecondition) as raised:
        await registry.close_case(created.name, "zj0326", CloseCase("WITHDRAWN"), request_key("close-2", "courts/zj0326"))
    assert raised.value.reason == "CASE_ALREADY_CLOSED"
    assert (await registry.get_case(created.name)).state == "CLOSED"


async def test_close_case_refusals(registry: RegistryHandlers) -> None:
    created = await registry.create_case(command(77))
    with pytest.raises(PermissionDenied):
        await registry.close_case(created.name, "zj03", CloseCase("WITHDRAWN"))
    with pytest.raises(Aborted):
        await registry.close_case(created.name, "zj0326", CloseCase("WITHDRAWN", expected_version=5))
    with pytest.raises(NotFound):
        await registry.close_case("courts/zj0326/cases/2023-enf-9", "zj0326", CloseCase("WITHDRAWN"))
    assert (await registry.get_case(created.name)).state == "OPEN"


async def test_vehicle_controls_end_when_the_case_closes(registry: RegistryHandlers, service_db_factory: Any) -> None:
    assistance_db = await service_db_factory("assistance")
    await _seed_replica(assistance_db)
    clock = Clock(MONDAY)
    vehicles = VehicleControlHandlers(
        Writer(assistance_db, Outbox()), Reader(assistance_db), CourtCatalog.default(), AgencyCatalog.default(), clock=clock
    )
    listed = (await vehicles.create(CREATE, "zj0326")).control.name
    seized = (
        await vehicles.create(v.CreateVehicleControl("courts/zj0326", CASE, "张三", plate="浙CD12345"), "zj0326")
    ).control.name
    clock.now = MONDAY + timedelta(days=2)
    await vehicles.report_seizure(seized, WENZHOU, v.ReportSeizure(None, "鹿城区", "停车场"))
    async with assistance_db.transaction() as conn:
        await conn.execute(delete(OUTBOX))

    view = await registry.create_case(command(1234))
    closed = await registry.close_case(view.name, "zj0326", CloseCase("EXECUTED_IN_FULL"))
    event = ReceivedEvent("e-1", "rogatory.case.closed.v1", "rogatory.v1.case.zj0326.closed", "rogatory/registry", NOW,
                          events_pb2.CaseClosed(case=case_to_proto(closed)).SerializeToString(), {})  # fmt: skip
    for _attempt in range(2):  # a redelivery would reach the handler only without the inbox; it must be a no-op too
        await vehicles.writer.run(lambda tx: vehicles.apply_case_closed(tx, event))
    admin = Principal(PrincipalKind.ADMIN, "ops")
    assert (await vehicles.get(listed, admin)).control.state is v.ControlState.CASE_CLOSED
    assert (await vehicles.get(seized, admin)).control.state is v.ControlState.CASE_CLOSED
    async with assistance_db.read() as conn:
        subjects = [r[0] for r in (await conn.execute(select(OUTBOX.c.subject).order_by(OUTBOX.c.seq))).all()]
        payload = (await conn.execute(select(OUTBOX.c.payload).order_by(OUTBOX.c.seq))).scalars().first()
    # The listed control's agencies drop it; the seized one left their lists at the seizure.
    assert subjects == [
        "rogatory.v1.vehicle.zj0326.case-closed",
        *(f"rogatory.v1.watchlist.{a}.zj0326.removed" for a in ("tp-330326", "tp-330300", "tp-mps")),
        "rogatory.v1.vehicle.zj0326.case-closed",
    ]
    assert "closed" in vehicle_events_pb2.VehicleControlEnded.FromString(payload).vehicle_control.end_note
    with pytest.raises(FailedPrecondition) as raised:
        await vehicles.create(CREATE, "zj0326")
    assert raised.value.reason == "CASE_CLOSED"


async def _seed_replica(db: Any) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            insert(CaseReplica.__table__).values(  # type: ignore[attr-defined]
                name=CASE, court_id="zj0326", case_number="（2023）浙0326执1234号",
                respondents=json.dumps([{"display_name": "张三"}]), registered_at=MONDAY,
            )
        )  # fmt: skip
