"""Composition of property queries inside the assistance process (called from services/assistance/main.py)."""

from __future__ import annotations

from datetime import timedelta

from rogatory.assistance.v1 import property_query_pb2

from registry.courts import CourtCatalog
from services.assistance.queries.dispatch import RequestDispatcher
from services.assistance.queries.handlers import QueryHandlers
from services.assistance.queries.replies import ReplyListener
from services.assistance.queries.scanner import QueryTimeoutScanner
from services.assistance.queries.servicer import PropertyQueryServicer
from services.plumbing.host import ServiceHost

SERVICE = property_query_pb2.DESCRIPTOR.services_by_name["PropertyQueryService"]


def wire_property_queries(host: ServiceHost, courts: CourtCatalog) -> QueryHandlers:
    """Adds PropertyQueryService, the request dispatcher, the reply listener and the timeout scanner to the assistance process."""
    agencies = host.agencies
    resend_after = timedelta(seconds=host.settings.query_resend_seconds)
    dispatcher = RequestDispatcher(host.writer, host.reader, host.nc, source=host.source, resend_after=resend_after)
    handlers = QueryHandlers(host.writer, host.reader, courts, agencies, dispatch=dispatcher.submit)
    host.add_servicer(SERVICE, PropertyQueryServicer(handlers))
    host.consumers.append(ReplyListener(host.nc, handlers).consumer)
    host.workers.append(dispatcher)
    host.add_periodic("property-query-timeouts", 1.0, QueryTimeoutScanner(handlers).scan_once)
    return handlers
