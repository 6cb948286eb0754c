"""SIMULATED traffic police for the demo and the tests — not a real agency system.

`TrafficPoliceSimulator` plays one or more traffic-police units the way their systems would
use Rogatory: it keeps each unit's watch list from the unit's own events
(`rogatory.v1.watchlist.{agency}.>`, after loading the current list over gRPC), and when it is
told that a patrol "finds" a plate or VIN it reports the sighting and, if asked, the seizure
over gRPC as that unit, with the Python client and the unit's development token
(`rogatory_client`, `dev:agency:{agency}`).

    simulator = TrafficPoliceSimulator(nats_url, assistance_address, ["tp-330300"])
    await simulator.start()
    await simulator.wait_for_plate("浙C12345")
    control = await simulator.find("浙C12345", seize=True)
    await simulator.stop()

`auto_find` lists plates/VINs it seizes as soon as they appear on a watch list (the demo).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import nats
from grpc.aio import ClientInterceptor
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from rogatory.assistance.v1 import vehicle_control_pb2 as pb

from assistance.plates import normalize_plate, normalize_vin
from rogatory_client import AsyncClient, Credentials, Endpoints, RogatoryError
from services.contract.events import WATCHLIST_ENTRY_ADDED, family, of_type

log = logging.getLogger(__name__)
ON_WATCH_LIST = (pb.VehicleControl.ACTIVE, pb.VehicleControl.SIGHTED)


@dataclass
class TrafficPoliceSimulator:
    nats_url: str
    assistance_address: str
    agency_ids: list[str]
    stream: str = "ROGATORY"
    auto_find: Iterable[str] = ()  # plates / VINs seized as soon as they are listed
    location: str = "模拟巡逻卡口"  # where the simulated patrol sees and seizes
    custody: str = "模拟涉案车辆停车场"  # where seized vehicles are held
    #: agency id → control name → the control as last heard of
    watch_lists: dict[str, dict[str, pb.VehicleControl]] = field(default_factory=dict)
    reports: list[pb.VehicleControl] = field(default_factory=list)  # what it reported, for the demo
    interceptors: Sequence[ClientInterceptor] = ()  # on every unit's calls (the load benchmark times them)
    _nc: NATS | None = None
    _units: dict[str, AsyncClient] = field(default_factory=dict)  # each unit's system, with its own credential
    _subscriptions: list[object] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        for agency_id in self.agency_ids:
            credentials = Credentials.dev_token(f"agency:{agency_id}")
            endpoints = Endpoints(assistance=self.assistance_address)
            self._units[agency_id] = AsyncClient(credentials, endpoints, interceptors=self.interceptors)
        self._nc = await nats.connect(self.nats_url, name="traffic-police-simulator")
        js = self._nc.jetstream()
        for agency_id in self.agency_ids:
            self.watch_lists[agency_id] = {}
            # Subscribe first, then load the list: an event racing the load is applied after it.
            subscription = await js.subscribe(
                family("agency", "watchlist").filter_for(agency_id),  # what its NATS user may read
                stream=self.stream,
                cb=self._on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
            self._subscriptions.append(subscription)
            for control in await self._load(agency_id):
                await self._note(agency_id, control, listed=True)

    async def stop(self) -> None:
        for task in list(self._tasks):
            await task
        for subscription in self._subscriptions:
            try:
                await subscription.unsubscribe()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass
        if self._nc is not None:
            await self._nc.drain()
        for unit in self._units.values():
            await unit.close()

    # --- what the test or the demo asks -------------------------------------------------------------

    def listed(self, agency_id: str | None = None) -> list[pb.VehicleControl]:
        lists = [self.watch_lists[agency_id]] if agency_id else self.watch_lists.values()
        return [c for watch_list in lists for c in watch_list.values()]

    async def wait_for_plate(self, plate_or_vin: str, *, present: bool = True, timeout: float = 10.0) -> None:
        """Until some simulated unit has (or, present=False, no longer has) the vehicle on its list."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: (self._entry(plate_or_vin) is not None) == present), timeout)

    async def find(self, plate_or_vin: str, *, seize: bool = True, agency_id: str | None = None) -> pb.VehicleControl:
        """A patrol of `agency_id` (default: the first unit that lists it) finds the vehicle:
        report the sighting and, with `seize`, the seizure. Returns the control as reported."""
        found = self._entry(plate_or_vin, agency_id)
        if found is None:
            raise LookupError(f"{plate_or_vin} is on no watch list of {', '.join(self.agency_ids)}")
        agency, control = found
        stub = self._units[agency].vehicle_controls
        sighting = pb.VehicleSighting(location=self.location, note="模拟：巡逻发现布控车辆")
        result = await stub.ReportVehicleSighting(pb.ReportVehicleSightingRequest(name=control.name, sighting=sighting))
        self.reports.append(result)
        if seize:
            seizure = pb.VehicleSeizure(location=self.location, custody=self.custody, note="模拟：已扣押并移交停车场")
            result = await stub.ReportVehicleSeizure(pb.ReportVehicleSeizureRequest(name=control.name, seizure=seizure))
            self.reports.append(result)
        return result

    # --- keeping the watch lists ------------------------------------------------------------------

    async def _load(self, agency_id: str) -> list[pb.VehicleControl]:
        stub = self._units[agency_id].vehicle_controls
        controls: list[pb.VehicleControl] = []
        token = ""
        while True:
            page = await stub.ListVehicleControls(pb.ListVehicleControlsRequest(parent="courts/-", page_token=token))
            controls.extend(page.vehicle_controls)
            if not (token := page.next_page_token):
                return controls

    async def _on_message(self, msg: Msg) -> None:
        agency_id, kind = msg.subject.split(".")[3], of_type((msg.headers or {}).get("ce-type", ""))
        if agency_id not in self.watch_lists or kind is None:
            return
        control = kind.parse(msg.data).vehicle_control  # type: ignore[attr-defined]
        await self._note(agency_id, control, listed=kind is WATCHLIST_ENTRY_ADDED and control.state in ON_WATCH_LIST)

    async def _note(self, agency_id: str, control: pb.VehicleControl, *, listed: bool) -> None:
        async with self._changed:
            if listed:
                self.watch_lists[agency_id][control.name] = control
            else:
                self.watch_lists[agency_id].pop(control.name, None)
            self._changed.notify_all()
        wanted = {normalize_plate(p) for p in self.auto_find} | {normalize_vin(p) for p in self.auto_find}
        if listed and wanted & {control.vehicle.plate, control.vehicle.vin} - {""}:
            task = asyncio.create_task(self._auto_seize(agency_id, control))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _auto_seize(self, agency_id: str, control: pb.VehicleControl) -> None:
        try:
            await self.find(control.vehicle.plate or control.vehicle.vin, agency_id=agency_id)
        except RogatoryError as error:  # e.g. another unit seized it first
            log.info("simulated seizure of %s by %s refused: %s", control.name, agency_id, error)

    def _entry(self, plate_or_vin: str, agency_id: str | None = None) -> tuple[str, pb.VehicleControl] | None:
        keys = {normalize_plate(plate_or_vin), normalize_vin(plate_or_vin)}
        for agency in [agency_id] if agency_id else self.agency_ids:
            for control in self.watch_lists.get(agency, {}).values():
                if keys & ({control.vehicle.plate, control.vehicle.vin} - {""}):
                    return agency, control
        return None
