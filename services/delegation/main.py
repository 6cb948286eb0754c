"""Composition root of the delegation service: `python -m services.delegation.main`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from rogatory.delegation.v1 import delegation_pb2

from registry.courts import CourtCatalog
from services.contract import events
from services.contract.case_replica import CASE_REGISTERED_ALL_COURTS, apply_case_registered
from services.delegation.handlers import DelegationHandlers
from services.delegation.scanner import DeadlineScanner
from services.delegation.seizure_replica import CONSUMER as SEIZURE_REPLICA_CONSUMER
from services.delegation.seizure_replica import SEIZURE_EVENTS, apply_seizure_changed
from services.delegation.servicer import DelegationServicer
from services.plumbing.host import ServiceHost, run_service
from services.plumbing.telemetry import add_event_attributes

SERVICE = delegation_pb2.DESCRIPTOR.services_by_name["DelegationService"]
CASE_REPLICA_CONSUMER = "delegation-case-replica"
DEADLINE_SCANNER = "deadline-scanner"


async def wire(host: ServiceHost, *, clock: Callable[[], datetime] | None = None) -> None:
    """`clock` is for tests that move time (the scanner acts days later); services use the wall clock."""
    handlers = DelegationHandlers(host.writer, host.reader, CourtCatalog.default())
    if clock is not None:
        handlers.clock = clock
    add_event_attributes(events.span_attributes)  # relay and consumer spans name the matter (the event catalog)
    servicer = DelegationServicer(handlers, host.reader_of("turnaround"))  # the projector's read model (projector.py)
    host.add_servicer(SERVICE, servicer)
    host.add_consumer(CASE_REPLICA_CONSUMER, [CASE_REGISTERED_ALL_COURTS], apply_case_registered)
    host.add_consumer(SEIZURE_REPLICA_CONSUMER, [SEIZURE_EVENTS], apply_seizure_changed)
    if host.settings.scan_interval > 0:
        host.add_periodic(DEADLINE_SCANNER, host.settings.scan_interval, DeadlineScanner(handlers).scan_once)


def main() -> None:
    run_service("delegation", wire)


if __name__ == "__main__":
    main()
