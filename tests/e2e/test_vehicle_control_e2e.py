"""Seed scenario 1 end to end over gRPC + NATS, the real service processes: 平阳县法院 (zj0326)
puts a debtor's car under control; Wenzhou traffic police (tp-330300, played by the traffic
police simulator) get it on their watch list and seize it two days later; the court is told at
once; stored → inspected → valued → listed for auction within five working days. A second car
is not listed in time and the service's scanner flags it; closing the case ends what is left.

Time in the assistance service comes from a clock file the test rewrites
(`ROGATORY_TEST_CLOCK_FILE`), so "two days later" needs no waiting.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import nats
import pytest
from nats.aio.client import Client as NATS
from rogatory.assistance.v1 import vehicle_control_pb2 as pb
from rogatory.assistance.v1 import vehicle_control_pb2_grpc
from rogatory.events.v1 import vehicle_events_pb2
from rogatory.registry.v1 import registry_pb2, registry_pb2_grpc

from delegation.calendar import CHINA_TZ
from rogatory_client import FailedPrecondition
from services.plumbing.auth import dev_credentials
from services.plumbing.subscriber import read_events
from services.tools.agency_simulator.traffic_police import TrafficPoliceSimulator
from services.tools.demo import as_court, until_case_replicated
from services.tools.launcher import SERVICES_ONLY, Stack
from tests.conftest import BACKENDS, wait_for
from tests.e2e.conftest import own_stack
from tests.e2e.test_registry_e2e import create_request

COURT = dev_credentials("court", "zj0326")
MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=CHINA_TZ)


@pytest.fixture(scope="module", params=BACKENDS)
async def vehicle_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Stack, Path]]:
    """A stack of its own: the assistance service's clock read from a file, scanner every 0.2 s."""
    data = tmp_path_factory.mktemp(f"vehicle-stack-{request.param}")
    clock = data / "clock"
    clock.write_text(MONDAY.isoformat())
    settings = {"OTEL_SDK_DISABLED": "true", "ROGATORY_TEST_CLOCK_FILE": str(clock), "ROGATORY_VEHICLE_SCAN_INTERVAL": "0.2"}
    async with own_stack(request.param, data, services=SERVICES_ONLY, **settings) as running:  # no audit, no statistics read
        yield running, clock


@pytest.fixture
async def simulator(vehicle_stack: tuple[Stack, Path]) -> AsyncIterator[TrafficPoliceSimulator]:
    stack, _ = vehicle_stack
    police = TrafficPoliceSimulator(stack.nats_url, stack.address("assistance"), ["tp-330300"])
    await police.start()
    yield police
    await police.stop()


@pytest.fixture
async def nc(vehicle_stack: tuple[Stack, Path]) -> AsyncIterator[NATS]:
    connection = await nats.connect(vehicle_stack[0].nats_url)
    yield connection
    await connection.drain()


@pytest.fixture(scope="module")
def numbers() -> Iterator[int]:
    return iter(range(9001, 10_000))


def at(clock: Path, moment: datetime) -> None:
    clock.write_text(moment.isoformat())


async def test_seed_scenario_pingyang_car_seized_and_listed_in_five_working_days(
    vehicle_stack: tuple[Stack, Path], simulator: TrafficPoliceSimulator, nc: NATS, numbers: Iterator[int]
) -> None:
    stack, clock = vehicle_stack
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with as_court("zj0326", stack.describe()) as pingyang:  # 平阳县法院's court system
        case = await pingyang.registry.CreateCase(create_request(next(numbers)))
        stub = pingyang.vehicle_controls
        at(clock, MONDAY)
        request = pb.CreateVehicleControlRequest(
            parent="courts/zj0326",
            vehicle_control=pb.VehicleControl(
                case=case.name, debtor="张三", vehicle=pb.ControlledVehicle(plate="浙C·A8B88", description="黑色丰田凯美瑞")
            ),
            request_id=str(uuid.uuid4()),
        )
        control = await stub.CreateVehicleControl(request)  # CASE_NOT_REGISTERED: the client retries
        assert "agencies/tp-330300" in control.agencies and "agencies/tp-440100" not in control.agencies

        await simulator.wait_for_plate("浙CA8B88")  # the watch list reached Wenzhou by its own subject
        at(clock, MONDAY + timedelta(days=2, hours=5))  # Wednesday 14:00: the patrol finds it
        seized = await simulator.find("浙CA8B88", seize=True)
        assert seized.state == pb.VehicleControl.SEIZED and seized.seizure.agency == "agencies/tp-330300"
        assert seized.post_seizure_target.due_time.ToDatetime(tzinfo=UTC) == datetime(
            2026, 11, 11, 23, 59, 59, 999999, tzinfo=CHINA_TZ
        )

        # The court is told at once, on its own subject.
        told = await read_events(nc.jetstream(), "ROGATORY", "rogatory.v1.vehicle.zj0326.>", since=since, until_count=3)
        about = [e for e in told if _name(e) == control.name]
        assert [e.subject.rsplit(".", 1)[1] for e in about] == ["created", "sighted", "seized"]
        await simulator.wait_for_plate("浙CA8B88", present=False)  # taken off the unit's list

        days = {"STORED": 3, "INSPECTED": 4, "VALUED": 7, "LISTED_FOR_AUCTION": 8}  # Thu, Fri, Mon, Tue
        for step, day in days.items():
            at(clock, MONDAY + timedelta(days=day))
            valuation = {"valuation": {"currency_code": "CNY", "units": 85_000}} if step == "VALUED" else {}
            recorded = await stub.RecordPostSeizureStep(
                pb.RecordPostSeizureStepRequest(name=control.name, step=pb.PostSeizureStep.Value(step), note="模拟", **valuation),  # type: ignore[arg-type]
                metadata=COURT,
            )
        assert recorded.post_seizure_target.status == pb.PostSeizureTarget.MET
        assert [s.step for s in recorded.post_seizure_steps] == [pb.STORED, pb.INSPECTED, pb.VALUED, pb.LISTED_FOR_AUCTION]
        # Wenzhou no longer sees it; Guangzhou never did.
        for agency in ("tp-330300", "tp-440100"):
            listed = await stub.ListVehicleControls(
                pb.ListVehicleControlsRequest(parent="courts/-"), metadata=dev_credentials("agency", agency)
            )
            assert control.name not in [c.name for c in listed.vehicle_controls]
    guangzhou = await read_events(nc.jetstream(), "ROGATORY", "rogatory.v1.watchlist.tp-440100.>", since=since, timeout=1.0)
    assert not guangzhou


async def test_missed_target_flagged_then_case_closed(
    vehicle_stack: tuple[Stack, Path], simulator: TrafficPoliceSimulator, nc: NATS, numbers: Iterator[int]
) -> None:
    stack, clock = vehicle_stack
    since = datetime.now(UTC) - timedelta(seconds=1)
    async with as_court("zj0326", stack.describe()) as pingyang:  # 平阳县法院's court system
        registry = pingyang.registry
        case = await registry.CreateCase(create_request(next(numbers)))
        stub = pingyang.vehicle_controls
        at(clock, MONDAY)

        def create(plate: str) -> pb.CreateVehicleControlRequest:
            vehicle = pb.ControlledVehicle(plate=plate)
            return pb.CreateVehicleControlRequest(
                parent="courts/zj0326", vehicle_control=pb.VehicleControl(case=case.name, debtor="张三", vehicle=vehicle)
            )

        late = await stub.CreateVehicleControl(create("浙CD66666"), metadata=COURT)
        still_listed = await stub.CreateVehicleControl(create("浙C77777"), metadata=COURT)
        await simulator.wait_for_plate("浙CD66666")
        await simulator.find("浙CD66666")  # seized Monday; nothing recorded after
        at(clock, MONDAY + timedelta(days=10))  # Thursday 11-12: the 5th working day (11-09) has passed

        async def flagged() -> bool:
            got = await stub.GetVehicleControl(pb.GetVehicleControlRequest(name=late.name), metadata=COURT)
            return got.post_seizure_target.status == pb.PostSeizureTarget.MISSED

        await wait_for(flagged)  # the service's scanner, on the moved clock
        missed = await read_events(
            nc.jetstream(), "ROGATORY", "rogatory.v1.vehicle.zj0326.target-missed", since=since, until_count=1
        )
        assert late.name in [_name(e) for e in missed]

        closed = await registry.CloseCase(
            registry_pb2.CloseCaseRequest(name=case.name, outcome=registry_pb2.CaseClosure.TERMINATED_THIS_ROUND),
            metadata=COURT,
        )
        assert closed.state == registry_pb2.Case.CLOSED
        await simulator.wait_for_plate("浙C77777", present=False)  # the unit was told to drop it

        async def ended() -> bool:
            got = await stub.GetVehicleControl(pb.GetVehicleControlRequest(name=still_listed.name), metadata=COURT)
            return got.state == pb.VehicleControl.CASE_CLOSED

        await wait_for(ended)
        with pytest.raises(FailedPrecondition):
            await stub.CreateVehicleControl(create("浙C88888"), metadata=COURT)


def _name(event: object) -> str:
    return vehicle_events_pb2.VehicleControlCreated.FromString(event.data).vehicle_control.name  # type: ignore[attr-defined]


async def test_simulated_county_unit_seizes_on_sight_and_only_the_owning_court_closes(
    vehicle_stack: tuple[Stack, Path], nc: NATS, numbers: Iterator[int]
) -> None:
    stack, clock = vehicle_stack
    since = datetime.now(UTC) - timedelta(seconds=1)
    at(clock, MONDAY)
    pingyang = TrafficPoliceSimulator(stack.nats_url, stack.address("assistance"), ["tp-330326"], auto_find=["浙C·99999"])
    await pingyang.start()
    try:
        async with grpc.aio.insecure_channel(stack.address("registry")) as channel:
            registry = registry_pb2_grpc.RegistryServiceStub(channel)
            case = await registry.CreateCase(create_request(next(numbers)), metadata=COURT)
            async with grpc.aio.insecure_channel(stack.address("assistance")) as assistance:
                stub = vehicle_control_pb2_grpc.VehicleControlServiceStub(assistance)
                vehicle = pb.ControlledVehicle(plate="浙C99999")
                request = pb.CreateVehicleControlRequest(
                    parent="courts/zj0326", vehicle_control=pb.VehicleControl(case=case.name, debtor="张三", vehicle=vehicle)
                )
                control = await until_case_replicated(lambda: stub.CreateVehicleControl(request, metadata=COURT))

                async def court_told() -> bool:
                    events = await read_events(
                        nc.jetstream(), "ROGATORY", "rogatory.v1.vehicle.zj0326.seized", since=since, timeout=0.5
                    )
                    return control.name in [_name(e) for e in events]

                await wait_for(court_told)  # seized by the simulator as soon as it was listed
                got = await stub.GetVehicleControl(pb.GetVehicleControlRequest(name=control.name), metadata=COURT)
                assert got.seizure.agency == "agencies/tp-330326"

            close = registry_pb2.CloseCaseRequest(name=case.name, outcome=registry_pb2.CaseClosure.EXECUTED_IN_FULL)
            for metadata, code in (
                ((), grpc.StatusCode.UNAUTHENTICATED),
                (dev_credentials("court", "zj03"), grpc.StatusCode.PERMISSION_DENIED),
                (dev_credentials("agency", "tp-330326"), grpc.StatusCode.PERMISSION_DENIED),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await registry.CloseCase(close, metadata=metadata)
                assert refused.value.code() == code
            assert (await registry.CloseCase(close, metadata=COURT)).closure.outcome == registry_pb2.CaseClosure.EXECUTED_IN_FULL
            with pytest.raises(grpc.aio.AioRpcError) as again:
                await registry.CloseCase(close, metadata=COURT)
            assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    finally:
        await pingyang.stop()
