"""Composition root of the audit process: `python -m services.audit.main`.

The audit appender (services/audit/log.py) in a process of its own, with its own database
(`{data_dir}/audit.db` on SQLite, schema `{prefix}audit` on PostgreSQL): chaining every event
of the stream costs the registry's request process nothing (issue 18, point 1), and on SQLite
the registry never waits for the audit's write lock. It serves gRPC health only (service
`rogatory.audit` NOT_SERVING while the chain no longer holds the last anchored head) and
Prometheus metrics like the services.
"""

from __future__ import annotations

from services.audit.log import AuditAppender
from services.contract import events
from services.plumbing.host import ServiceHost, run_service
from services.plumbing.telemetry import add_event_attributes

#: Seconds the appender lets events gather after a short batch: one transaction and one anchor
#: per ~LINGER of traffic instead of per few events (issue 18); the chain lags by that much.
LINGER = 0.05


async def wire(host: ServiceHost) -> None:
    appender = AuditAppender(
        host.writer, host.reader, host.js, host.nc, stream=host.settings.stream_name, health=host.health,
        anchor_replicas=host.settings.stream_replicas, linger=LINGER,
    )  # fmt: skip
    host.consumers.append(appender.consumer)
    add_event_attributes(events.span_attributes)  # the audit's spans name the matter of a delegation event (the event catalog)


def main() -> None:
    run_service("audit", wire)


if __name__ == "__main__":
    main()
