"""Composition of property queries inside the assistance process (called from services/assistance/main.py)."""

from __future__ import annotations

from pathlib import Path

from rogatory.assistance.v1 import property_query_pb2, property_query_pb2_grpc

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.assistance.queries.dispatch import RequestDispatcher
from services.assistance.queries.handlers import QueryHandlers
from services.assistance.queries.replies import ReplyConsumer
from services.assistance.queries.scanner import QueryTimeoutScanner
from services.assistance.queries.servicer import PropertyQueryServicer
from services.plumbing.host import ServiceHost

SERVICE = property_query_pb2.DESCRIPTOR.services_by_name["PropertyQueryService"]


def agency_catalog(host: ServiceHost) -> AgencyCatalog:
    """The shipped agency table, or the CSV file ROGATORY_AGENCIES_FILE names (same columns; e.g. the benchmark's 1,000 banks)."""
    path = host.settings.agencies_file
    return AgencyCatalog.from_csv(Path(path).read_text(encoding="utf-8")) if path else AgencyCatalog.default()


def wire_property_queries(host: ServiceHost, courts: CourtCatalog) -> QueryHandlers:
    """Adds PropertyQueryService, the reply consumer and the timeout scanner to the assistance process."""
    agencies = agency_catalog(host)
    dispatcher = RequestDispatcher(host.db, host.js, source=host.source)
    handlers = QueryHandlers(host.db, host.outbox, courts, agencies, dispatch=dispatcher.submit)
    host.add_servicer(
        SERVICE, PropertyQueryServicer(handlers), property_query_pb2_grpc.add_PropertyQueryServiceServicer_to_server
    )
    host.consumers.append(
        ReplyConsumer(host.db, host.js, handlers, stream=host.settings.stream_name, max_deliveries=host.settings.max_deliveries)
    )
    host.workers.append(dispatcher)
    host.add_periodic("property-query-timeouts", 1.0, QueryTimeoutScanner(handlers).scan_once)
    return handlers
