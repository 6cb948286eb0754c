"""Composition root of the turnaround projector: `python -m services.delegation.projector`.

The turnaround read model (turnaround.py) and the delegation metrics recorded from events
(metrics.py), in a process of their own with their own database (`{data_dir}/turnaround.db`
on SQLite, schema `{prefix}turnaround` on PostgreSQL): projecting every delegation event cost
the delegation service's request process ≈ 0.6–0.8 ms of CPU per CreateDelegation (issue 18,
point 1), and on SQLite the two contended for one write lock. The delegation service reads
this database to answer GetTurnaroundStatistics (`ServiceHost.reader_of`). It serves gRPC
health only, and Prometheus metrics (the turnaround histograms and counters).

Its durable consumer, `turnaround-projector`, replays the stream from the beginning on its
first start (migration turnaround_0001).
"""

from __future__ import annotations

from delegation.calendar import WorkingCalendar
from registry.courts import CourtCatalog
from services.contract import events
from services.delegation import metrics as delegation_metrics
from services.delegation.turnaround import CONSUMER, SUBJECTS, TurnaroundProjection
from services.plumbing.consumer import OnApplied
from services.plumbing.host import ServiceHost, run_service
from services.plumbing.telemetry import add_event_attributes

PROCESS = "turnaround"
#: Seconds the projector lets events gather after a short batch: one transaction per ~LINGER of
#: traffic (its aggregate rows written once) instead of per few events; the statistics lag by that much.
LINGER = 0.05


async def wire(host: ServiceHost) -> None:
    add_event_attributes(events.span_attributes)  # consumer spans name the matter (the event catalog)
    projection = TurnaroundProjection(CourtCatalog.default(), WorkingCalendar.default())
    host.add_consumer(
        CONSUMER,
        [SUBJECTS],
        batch_handler=projection.apply_batch,
        hooks=OnApplied(delegation_metrics.record_events),
        linger=LINGER,
    )


def main() -> None:
    run_service(PROCESS, wire)


if __name__ == "__main__":
    main()
