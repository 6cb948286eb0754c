"""Composition root of the registry service: `python -m services.registry.main`."""

from __future__ import annotations

from rogatory.registry.v1 import registry_pb2

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.contract import events
from services.plumbing.host import ServiceHost, run_service
from services.plumbing.telemetry import add_event_attributes
from services.registry.handlers import RegistryHandlers
from services.registry.servicer import RegistryServicer

SERVICE = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"]


async def wire(host: ServiceHost) -> None:
    handlers = RegistryHandlers(host.writer, host.reader, CourtCatalog.default(), AgencyCatalog.default())
    await handlers.load_reference_data()
    servicer = RegistryServicer(handlers)
    host.add_servicer(SERVICE, servicer)
    add_event_attributes(events.span_attributes)  # relay spans name the case (the event catalog)


def main() -> None:
    run_service("registry", wire)


if __name__ == "__main__":
    main()
