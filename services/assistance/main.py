"""Composition root of the assistance service: `python -m services.assistance.main`."""

from __future__ import annotations

from rogatory.assistance.v1 import assistance_pb2

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.assistance.handlers import AssistanceHandlers
from services.assistance.notice_wiring import wire_notices
from services.assistance.queries.wiring import wire_property_queries
from services.assistance.servicer import AssistanceServicer
from services.assistance.vehicles.wiring import wire_vehicle_control
from services.contract import events
from services.contract.case_replica import CASE_REGISTERED_ALL_COURTS, apply_case_registered
from services.plumbing.host import ServiceHost, run_service
from services.plumbing.telemetry import add_event_attributes

SERVICE = assistance_pb2.DESCRIPTOR.services_by_name["AssistanceService"]
CASE_REPLICA_CONSUMER = "assistance-case-replica"


async def wire(host: ServiceHost) -> None:
    add_event_attributes(events.span_attributes)  # relay and consumer spans name the notice or control (the event catalog)
    handlers = AssistanceHandlers(host.writer, host.reader, CourtCatalog.default(), AgencyCatalog.default())
    servicer = AssistanceServicer(handlers)
    host.add_servicer(SERVICE, servicer)
    host.add_consumer(CASE_REPLICA_CONSUMER, [CASE_REGISTERED_ALL_COURTS], apply_case_registered)
    wire_notices(host, handlers)
    wire_property_queries(host, CourtCatalog.default())
    wire_vehicle_control(host)


def main() -> None:
    run_service("assistance", wire)


if __name__ == "__main__":
    main()
