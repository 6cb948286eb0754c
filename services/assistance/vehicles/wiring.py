"""Wires the vehicle watch list into the assistance service (`services/assistance/main.py`);
its settings (environment variables) are in `settings.py`."""

from __future__ import annotations

from rogatory.assistance.v1 import vehicle_control_pb2

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.assistance.vehicles.handlers import CASE_CLOSED_ALL_COURTS, VehicleControlHandlers
from services.assistance.vehicles.scanner import VehicleControlScanner
from services.assistance.vehicles.servicer import VehicleControlServicer
from services.assistance.vehicles.settings import VehicleSettings
from services.plumbing.host import ServiceHost

SERVICE = vehicle_control_pb2.DESCRIPTOR.services_by_name["VehicleControlService"]
CASE_CLOSED_CONSUMER = "assistance-vehicle-case-closed"


def wire_vehicle_control(host: ServiceHost) -> VehicleControlHandlers:
    settings = VehicleSettings()
    handlers = VehicleControlHandlers(
        host.writer, host.reader, CourtCatalog.default(), AgencyCatalog.default(), settings.policy(), clock=settings.clock()
    )
    host.add_servicer(SERVICE, VehicleControlServicer(handlers))
    host.add_consumer(CASE_CLOSED_CONSUMER, [CASE_CLOSED_ALL_COURTS], handlers.apply_case_closed)
    if settings.scan_interval > 0:
        host.add_periodic("vehicle-control-scanner", settings.scan_interval, VehicleControlScanner(handlers).scan_once)
    return handlers
