"""The vehicle watch list through its handlers and its gRPC servicer, against real SQLite and
PostgreSQL: the seed scenario on a moved clock, the events each party gets, who may see and do
what, idempotency, etags, the scanner."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status
from opentelemetry.sdk.trace import TracerProvider
from rogatory.assistance.v1 import vehicle_control_pb2 as pb
from rogatory.assistance.v1 import vehicle_control_pb2_grpc
from rogatory.events.v1 import vehicle_events_pb2
from sqlalchemy import delete, insert, select

from assistance import vehicles as v
from assistance.plates import vin_check_digit
from delegation.calendar import CHINA_TZ
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from registry.errors import Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.assistance.vehicles import store
from services.assistance.vehicles.handlers import VehicleControlHandlers
from services.assistance.vehicles.scanner import VehicleControlScanner, scan_database
from services.assistance.vehicles.servicer import VehicleControlServicer
from services.assistance.vehicles.settings import FileClock
from services.assistance.vehicles.store import ControlQuery
from services.assistance.vehicles.wiring import SERVICE
from services.contract.case_replica import CaseReplica
from services.plumbing.auth import Authenticator, Principal, PrincipalKind, dev_credentials
from services.plumbing.config import Settings
from services.plumbing.db import Database
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.rpc import register
from services.plumbing.unit_of_work import Reader, Writer
from tests.conftest import Clock, request_key

# Mon 2026-11-02 09:00 in 平阳 — an ordinary week (no holiday until 2027).
MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=CHINA_TZ)
CASE = "courts/zj0326/cases/2023-enf-1234"
COURT, WENZHOU, PINGYANG, MPS, GUANGZHOU = "zj0326", "tp-330300", "tp-330326", "tp-mps", "tp-440100"
VIN = "LSVAU2180N2183290"
VIN = VIN[:8] + vin_check_digit(VIN) + VIN[9:]
CREATE = v.CreateVehicleControl(
    parent=f"courts/{COURT}", case=CASE, debtor="张三", plate="浙C12345", vin=VIN, description="白色大众帕萨特"
)
AGENCY = {a: Principal(PrincipalKind.AGENCY, a) for a in (WENZHOU, GUANGZHOU)}


@pytest.fixture
async def db(service_db_factory: Any) -> AsyncIterator[Database]:
    database: Database = await service_db_factory("assistance")
    async with database.transaction() as conn:
        await conn.execute(
            insert(CaseReplica.__table__).values(  # type: ignore[attr-defined]
                name=CASE,
                court_id=COURT,
                case_number="（2023）浙0326执1234号",
                respondents=json.dumps([{"display_name": "张三", "kind": "PERSON", "id_number_masked": ""}]),
                registered_at=MONDAY,
            )
        )
    yield database


@pytest.fixture
def clock() -> Clock:
    return Clock(MONDAY)


@pytest.fixture
def handlers(db: Database, clock: Clock) -> VehicleControlHandlers:
    return VehicleControlHandlers(Writer(db, Outbox()), Reader(db), CourtCatalog.default(), AgencyCatalog.default(), clock=clock)


async def outbox(db: Database) -> list[tuple[str, bytes]]:
    """The events written so far, oldest first; cleared, so each check sees only the new ones."""
    async with db.transaction() as conn:
        rows = (await conn.execute(select(OUTBOX.c.subject, OUTBOX.c.payload).order_by(OUTBOX.c.seq))).all()
        await conn.execute(delete(OUTBOX))
    return [(r[0], r[1]) for r in rows]


async def watch_list(handlers: VehicleControlHandlers, agency_id: str) -> list[str]:
    return [s.control.name for s in await handlers.list(ControlQuery(agency_id=agency_id), 0, 100)]


async def test_seed_scenario_control_seizure_and_auction_listing(
    handlers: VehicleControlHandlers, clock: Clock, db: Database
) -> None:
    created = await handlers.create(CREATE, COURT, request_key("req-1", f"courts/{COURT}"))
    name = created.control.name
    subjects = [s for s, _ in await outbox(db)]
    assert subjects == [
        "rogatory.v1.vehicle.zj0326.created",
        f"rogatory.v1.watchlist.{PINGYANG}.zj0326.added",
        f"rogatory.v1.watchlist.{WENZHOU}.zj0326.added",
        f"rogatory.v1.watchlist.{MPS}.zj0326.added",
    ]
    assert await watch_list(handlers, WENZHOU) == [name]
    assert await watch_list(handlers, GUANGZHOU) == []  # Guangzhou's traffic police are not addressed

    clock.now = MONDAY + timedelta(days=1)
    sighted = await handlers.report_sighting(name, WENZHOU, v.ReportSighting(None, "104国道 鳌江段"))
    assert sighted.control.state is v.ControlState.SIGHTED
    [(subject, payload)] = await outbox(db)
    assert subject == "rogatory.v1.vehicle.zj0326.sighted"
    assert vehicle_events_pb2.VehicleSighted.FromString(payload).sighting.agency == f"agencies/{WENZHOU}"

    clock.now = MONDAY + timedelta(days=2)  # Wednesday: seized two days after the list went out
    seizure = v.ReportSeizure(None, "温州市鹿城区车站大道", "平阳县法院涉案车辆停车场")
    seized = await handlers.report_seizure(name, WENZHOU, seizure, request_key("seize-1", f"agencies/{WENZHOU}"))
    target = seized.control.target
    assert target is not None and target.due == datetime(
        2026, 11, 11, 23, 59, 59, 999999, tzinfo=CHINA_TZ
    )  # Wed + 5 working days
    events = await outbox(db)
    assert [s for s, _ in events] == [
        "rogatory.v1.vehicle.zj0326.seized",
        *(f"rogatory.v1.watchlist.{a}.zj0326.removed" for a in (PINGYANG, WENZHOU, MPS)),
    ]
    removed = vehicle_events_pb2.WatchListEntryRemoved.FromString(events[1][1])
    assert removed.vehicle_control.state == pb.VehicleControl.SEIZED
    assert await watch_list(handlers, WENZHOU) == []  # off the list once seized
    with pytest.raises(NotFound):
        await handlers.get(name, AGENCY[WENZHOU])  # an agency sees a control only while it is on its list

    for day, step in enumerate(v.STEP_ORDER, start=3):  # Thu, Fri, Sat (recorded Monday), …
        clock.now = MONDAY + timedelta(days=day)
        valuation = 8_500_000 if step is v.PostSeizureStep.VALUED else None
        await handlers.record_step(name, COURT, v.RecordStep(str(step), valuation_fen=valuation))
    final = await handlers.get(name, Principal(PrincipalKind.COURT, COURT))
    assert [s.step for s in final.control.steps] == list(v.STEP_ORDER)
    assert final.control.target is not None and final.control.target.status is v.TargetStatus.MET
    assert [s for s, _ in await outbox(db)] == ["rogatory.v1.vehicle.zj0326.step-recorded"] * 4
    report = await VehicleControlScanner(handlers).scan_once()  # nothing to flag
    assert not report.actions


async def test_scanner_flags_a_missed_target_and_expires_controls(
    handlers: VehicleControlHandlers, clock: Clock, db: Database
) -> None:
    seized = (await handlers.create(CREATE, COURT)).control.name
    listed_briefly = (
        await handlers.create(replace(CREATE, plate="浙CD12345", vin="", expire_time=MONDAY + timedelta(days=30)), COURT)
    ).control.name
    await handlers.report_seizure(seized, WENZHOU, v.ReportSeizure(None, "鹿城区", "停车场"))
    await outbox(db)
    scanner = VehicleControlScanner(handlers)
    clock.now = datetime(2026, 11, 9, 23, 59, tzinfo=CHINA_TZ)  # Mon: the 5th working day after Mon 11-02
    assert not (await scanner.scan_once()).actions
    clock.now = datetime(2026, 11, 10, 0, 1, tzinfo=CHINA_TZ)
    assert (await scanner.scan_once()).actions == {"TARGET_MISSED": 1}
    [(subject, payload)] = await outbox(db)
    assert subject == "rogatory.v1.vehicle.zj0326.target-missed"
    assert (
        vehicle_events_pb2.PostSeizureTargetMissed.FromString(payload).vehicle_control.post_seizure_target.status
        == pb.PostSeizureTarget.MISSED
    )
    assert not (await scanner.scan_once()).actions  # flagged once

    clock.now = MONDAY + timedelta(days=31)
    assert (await scanner.scan_once()).actions == {"EXPIRED": 1}
    assert [s for s, _ in await outbox(db)] == [
        "rogatory.v1.vehicle.zj0326.expired",
        *(f"rogatory.v1.watchlist.{a}.zj0326.removed" for a in (PINGYANG, WENZHOU, MPS)),
    ]
    ended = await handlers.get(listed_briefly, Principal(PrincipalKind.ADMIN, "ops"))
    assert ended.control.state is v.ControlState.EXPIRED


async def test_who_may_see_and_do_what(handlers: VehicleControlHandlers) -> None:
    name = (await handlers.create(CREATE, COURT)).control.name
    other_court = Principal(PrincipalKind.COURT, "gd0112")
    with pytest.raises(NotFound):
        await handlers.get(name, other_court)
    with pytest.raises(NotFound):  # not addressed: learns nothing, not even that it exists
        await handlers.report_seizure(name, GUANGZHOU, v.ReportSeizure(None, "广州", "停车场"))
    with pytest.raises(NotFound):
        await handlers.lift(name, "gd0112", v.LiftControl("PAID"))
    assert (await handlers.get(name, AGENCY[WENZHOU])).control.name == name
    assert [s.control.name for s in await handlers.list(ControlQuery(court_id="gd0112"), 0, 10)] == []


async def test_create_refusals(handlers: VehicleControlHandlers) -> None:
    await handlers.create(CREATE, COURT)
    with pytest.raises(AlreadyExists) as raised:
        await handlers.create(replace(CREATE, plate=""), COURT)  # same VIN, still under control
    assert raised.value.reason == "VEHICLE_ALREADY_CONTROLLED"
    with pytest.raises(InvalidArgument) as raised:
        await handlers.create(replace(CREATE, debtor="李四", plate="浙C54321", vin=""), COURT)
    assert raised.value.reason == "NOT_A_RESPONDENT"
    with pytest.raises(FailedPrecondition) as raised:
        await handlers.create(replace(CREATE, case="courts/zj0326/cases/2023-enf-9"), COURT)
    assert raised.value.reason == "CASE_NOT_REGISTERED"


async def test_the_database_refuses_a_second_live_control_that_raced_past_the_check(
    handlers: VehicleControlHandlers, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await handlers.create(CREATE, COURT)

    def nothing_live(*_args: Any) -> list[Any]:  # as if another replica had not committed yet
        return []

    monkeypatch.setattr(store, "live_controls_of_vehicle", nothing_live)
    for racing in (replace(CREATE, vin=""), replace(CREATE, plate="")):  # same plate / same VIN
        with pytest.raises(AlreadyExists) as raised:
            await handlers.create(racing, COURT)
        assert raised.value.reason == "VEHICLE_ALREADY_CONTROLLED"
    await handlers.lift(first.control.name, COURT, v.LiftControl("PAID", expected_version=1))
    again = await handlers.create(CREATE, COURT)  # an ended control does not count
    assert again.control.state is v.ControlState.ACTIVE


async def test_idempotent_retries_and_stale_etags(handlers: VehicleControlHandlers, db: Database) -> None:
    first = await handlers.create(CREATE, COURT, request_key("same", f"courts/{COURT}"))
    assert (await handlers.create(CREATE, COURT, request_key("same", f"courts/{COURT}"))).control.name == first.control.name
    name = first.control.name
    await outbox(db)
    once = await handlers.report_sighting(
        name, WENZHOU, v.ReportSighting(None, "x"), request_key("sight-1", f"agencies/{WENZHOU}")
    )
    again = await handlers.report_sighting(
        name, WENZHOU, v.ReportSighting(None, "x"), request_key("sight-1", f"agencies/{WENZHOU}")
    )
    assert again.control.version == once.control.version == 2 and len(again.control.sightings) == 1
    assert len(await outbox(db)) == 1
    with pytest.raises(Aborted):
        await handlers.lift(name, COURT, v.LiftControl("PAID", expected_version=1))
    lifted = await handlers.lift(name, COURT, v.LiftControl("PAID", expected_version=2))
    assert lifted.control.state is v.ControlState.LIFTED
    assert [s for s, _ in await outbox(db)][0] == "rogatory.v1.vehicle.zj0326.lifted"


async def test_document_round_trip(handlers: VehicleControlHandlers, clock: Clock) -> None:
    name = (await handlers.create(CREATE, COURT)).control.name
    await handlers.report_sighting(name, WENZHOU, v.ReportSighting(None, "x", "note"))
    await handlers.report_seizure(name, WENZHOU, v.ReportSeizure(None, "y", "z"))
    after = await handlers.record_step(name, COURT, v.RecordStep("STORED"))
    stored = await handlers.reader.run(lambda conn: store.control_by_name(conn, name))
    assert stored is not None and stored.control == after.control


# --- the gRPC servicer ---------------------------------------------------------------------------


@pytest.fixture
async def stub(handlers: VehicleControlHandlers) -> AsyncIterator[vehicle_control_pb2_grpc.VehicleControlServiceStub]:
    server = grpc.aio.server()
    authenticator = Authenticator(CourtCatalog.default(), AgencyCatalog.default(), dev_tokens=True)
    register(server, VehicleControlServicer(handlers), SERVICE, authenticator)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            yield vehicle_control_pb2_grpc.VehicleControlServiceStub(channel)
    finally:
        await server.stop(None)


async def test_over_grpc(stub: vehicle_control_pb2_grpc.VehicleControlServiceStub, clock: Clock) -> None:
    court, wenzhou = dev_credentials("court", COURT), dev_credentials("agency", WENZHOU)
    request = pb.CreateVehicleControlRequest(
        parent=f"courts/{COURT}",
        vehicle_control=pb.VehicleControl(case=CASE, debtor="张三", vehicle=pb.ControlledVehicle(plate="浙c·d12345")),
        request_id="grpc-1",
    )
    created = await stub.CreateVehicleControl(request, metadata=court)
    assert created.vehicle.plate == "浙CD12345" and created.state == pb.VehicleControl.ACTIVE and created.etag == 'W/"1"'
    assert list(created.agencies) == [f"agencies/{a}" for a in (PINGYANG, WENZHOU, MPS)]
    listed = await stub.ListVehicleControls(pb.ListVehicleControlsRequest(parent="courts/-"), metadata=wenzhou)
    assert [c.name for c in listed.vehicle_controls] == [created.name]
    clock.now = MONDAY + timedelta(days=2)
    seizure = pb.VehicleSeizure(location="鹿城区", custody="停车场")
    seized = await stub.ReportVehicleSeizure(
        pb.ReportVehicleSeizureRequest(name=created.name, seizure=seizure, etag='W/"1"'), metadata=wenzhou
    )
    assert seized.state == pb.VehicleControl.SEIZED and seized.seizure.agency == f"agencies/{WENZHOU}"
    assert seized.post_seizure_target.working_days == 5
    step = pb.RecordPostSeizureStepRequest(name=created.name, step=pb.STORED)
    assert (await stub.RecordPostSeizureStep(step, metadata=court)).post_seizure_steps[0].step == pb.STORED
    valued = pb.RecordPostSeizureStepRequest(name=created.name, step=pb.INSPECTED, valuation=money_pb2.Money(units=1))
    await expect_error(stub.RecordPostSeizureStep(valued, metadata=court), grpc.StatusCode.INVALID_ARGUMENT, "NOT_ALLOWED")
    filtered = await stub.ListVehicleControls(
        pb.ListVehicleControlsRequest(parent=f"courts/{COURT}", filter='plate = "浙CD12345" AND state = SEIZED'), metadata=court
    )
    assert len(filtered.vehicle_controls) == 1


async def test_grpc_errors(stub: vehicle_control_pb2_grpc.VehicleControlServiceStub) -> None:
    court = dev_credentials("court", COURT)
    bad = pb.CreateVehicleControlRequest(
        parent=f"courts/{COURT}",
        vehicle_control=pb.VehicleControl(case=CASE, debtor="张三", vehicle=pb.ControlledVehicle(plate="浙C1234")),
    )
    await expect_error(stub.CreateVehicleControl(bad, metadata=court), grpc.StatusCode.INVALID_ARGUMENT, "BAD_PLATE")
    good = pb.CreateVehicleControlRequest(
        parent=f"courts/{COURT}",
        vehicle_control=pb.VehicleControl(case=CASE, debtor="张三", vehicle=pb.ControlledVehicle(vin=VIN)),
    )
    await expect_error(
        stub.CreateVehicleControl(good, metadata=dev_credentials("agency", WENZHOU)),
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_A_COURT",
    )
    created = await stub.CreateVehicleControl(good, metadata=court)
    sighting = pb.ReportVehicleSightingRequest(name=created.name, sighting=pb.VehicleSighting(location="x"))
    await expect_error(stub.ReportVehicleSighting(sighting, metadata=court), grpc.StatusCode.PERMISSION_DENIED, "NOT_AN_AGENCY")
    await expect_error(
        stub.ReportVehicleSighting(sighting, metadata=dev_credentials("agency", GUANGZHOU)),
        grpc.StatusCode.NOT_FOUND,
        "NOT_FOUND",
    )
    await expect_error(
        stub.ListVehicleControls(pb.ListVehicleControlsRequest(parent="courts/gd0112"), metadata=court),
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_CONTROLLING_COURT",
    )


async def expect_error(call: Any, code: grpc.StatusCode, reason: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert raised.value.code() == code, raised.value.details()
    status = rpc_status.from_call(raised.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(d.Unpack(info) for d in status.details)
    assert info.reason == reason


# --- the scanner as a job, and the test clock ------------------------------------------------------


async def test_scanner_job_runs_one_pass_on_the_service_database(
    handlers: VehicleControlHandlers, service_db_factory: Any, tmp_path: Path, db: Database
) -> None:
    name = (await handlers.create(replace(CREATE, expire_time=MONDAY + timedelta(days=1)), COURT)).control.name
    if service_db_factory.url:
        settings = Settings(DATABASE_URL=service_db_factory.url, ROGATORY_DB_SCHEMA_PREFIX=service_db_factory.prefix)  # type: ignore[call-arg]
    else:
        settings = Settings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/{{service}}.db")  # type: ignore[call-arg]
    moment, report = await scan_database(settings, MONDAY + timedelta(days=2))
    assert moment == MONDAY + timedelta(days=2) and report.actions == {"EXPIRED": 1}
    assert (await handlers.get(name, Principal(PrincipalKind.COURT, COURT))).control.state is v.ControlState.EXPIRED
    assert "rogatory.v1.vehicle.zj0326.expired" in [s for s, _ in await outbox(db)]  # for the service's relay


def test_file_clock_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    clock = FileClock(path)
    assert abs(clock() - datetime.now(UTC)) < timedelta(minutes=1)  # no file: wall-clock time
    path.write_text(MONDAY.isoformat())
    assert clock() == MONDAY
    path.write_text((MONDAY + timedelta(days=2)).isoformat())
    assert clock() == MONDAY + timedelta(days=2)


async def test_reports_and_scanner_findings_join_the_controls_trace(
    handlers: VehicleControlHandlers, clock: Clock, db: Database
) -> None:
    with TracerProvider().get_tracer("test").start_as_current_span("CreateVehicleControl") as span:
        name = (await handlers.create(replace(CREATE, expire_time=MONDAY + timedelta(days=1)), COURT)).control.name
    trace_id = format(span.get_span_context().trace_id, "032x")
    await outbox(db)
    with TracerProvider().get_tracer("test").start_as_current_span("ReportVehicleSighting"):  # the agency's own call
        await handlers.report_sighting(name, WENZHOU, v.ReportSighting(None, "104国道"))
    clock.now = MONDAY + timedelta(days=2)
    assert (await VehicleControlScanner(handlers).scan_once()).actions == {"EXPIRED": 1}
    async with db.read() as conn:
        parents = (await conn.execute(select(OUTBOX.c.traceparent))).scalars().all()
    assert parents and all(p.split("-")[1] == trace_id for p in parents), (name, parents)  # one task, one trace


async def test_watch_list_pages_over_grpc(stub: vehicle_control_pb2_grpc.VehicleControlServiceStub) -> None:
    court, wenzhou = dev_credentials("court", COURT), dev_credentials("agency", WENZHOU)
    plates = [f"浙C1000{i}" for i in range(5)]
    for plate in plates:
        vehicle = pb.ControlledVehicle(plate=plate)
        request = pb.CreateVehicleControlRequest(
            parent=f"courts/{COURT}", vehicle_control=pb.VehicleControl(case=CASE, debtor="张三", vehicle=vehicle)
        )
        await stub.CreateVehicleControl(request, metadata=court)
    seen, token = [], ""
    while True:
        page = await stub.ListVehicleControls(
            pb.ListVehicleControlsRequest(parent="courts/-", page_size=2, page_token=token), metadata=wenzhou
        )
        assert len(page.vehicle_controls) <= 2
        seen += [c.vehicle.plate for c in page.vehicle_controls]
        if not (token := page.next_page_token):
            break
    assert seen == plates
    foreign = pb.ListVehicleControlsRequest(parent="courts/-", page_size=2, page_token=token or "x", filter="state = ACTIVE")
    await expect_error(stub.ListVehicleControls(foreign, metadata=wenzhou), grpc.StatusCode.INVALID_ARGUMENT, "BAD_PAGE_TOKEN")
