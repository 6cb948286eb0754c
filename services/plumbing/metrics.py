"""OpenTelemetry metrics, once per process: readable by Prometheus, exported by OTLP.

Every process gets a MeterProvider with a Prometheus reader (the collector registers with
`prometheus_client`'s registry; recording costs a few microseconds and only happens per
event, not per RPC). `<SERVICE>_METRICS_ADDR` (e.g. `127.0.0.1:9464`) serves it as
`/metrics` for Prometheus to scrape; `make run` turns it on for each service. With
`OTEL_EXPORTER_OTLP_ENDPOINT` (or `…_METRICS_ENDPOINT`) set, metrics are also pushed by
OTLP every `OTEL_METRIC_EXPORT_INTERVAL` ms (SDK default 60 s), unless
`OTEL_METRICS_EXPORTER` leaves out `otlp`. `OTEL_SDK_DISABLED=true`
turns both off. Instruments live beside the code that records them; they are created on
the API's meter, which works before and without the SDK.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from opentelemetry import metrics
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

log = logging.getLogger(__name__)
_lock = threading.Lock()
_configured = False
_http_server: Any = None

#: Bucket boundaries for matter turnaround, in seconds: an hour to half a year, dense
#: around the statutory 7, 15 and 30 days.
TURNAROUND_BUCKETS = tuple(hours * 3600.0 for hours in (1, 4, 12, 24, 48, 72, 120, 168, 240, 360, 480, 720, 1440, 2160, 4320))
#: Relay lag and other plumbing delays, in seconds: a millisecond to a minute.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def configure_metrics(service_name: str) -> None:
    """Installs the global MeterProvider; later calls are no-ops (one provider per process)."""
    global _configured
    with _lock:
        if _configured or os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
            return
        from opentelemetry.exporter.prometheus import PrometheusMetricReader  # noqa: PLC0415 - only with the SDK on

        readers: list[MetricReader] = [PrometheusMetricReader()]
        if _push_by_otlp():
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter  # noqa: PLC0415

            readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
        resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", f"rogatory-{service_name}")})
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
        _configured = True


def _push_by_otlp() -> bool:
    """An OTLP endpoint is set and `OTEL_METRICS_EXPORTER` (default `otlp`) asks for it: a
    trace-only collector (Jaeger) gets `OTEL_METRICS_EXPORTER=prometheus` or `none`."""
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
    exporters = {e.strip() for e in os.environ.get("OTEL_METRICS_EXPORTER", "otlp").split(",")}
    return bool(endpoint) and "otlp" in exporters


def serve_prometheus(address: str) -> str:
    """Serves `/metrics` on `host:port` (port 0: a free one); returns the address bound.

    One endpoint per process: a second call returns the first address.
    """
    global _http_server
    from prometheus_client import start_http_server  # noqa: PLC0415

    with _lock:
        if _http_server is None:
            host, _, port = address.rpartition(":")
            _http_server, _thread = start_http_server(int(port), addr=host or "127.0.0.1")
        bound_host, bound_port = _http_server.server_address[:2]
    return f"{bound_host}:{bound_port}"


def stop_prometheus() -> None:
    global _http_server
    with _lock:
        if _http_server is not None:
            _http_server.shutdown()
            _http_server.server_close()
            _http_server = None


def shutdown_metrics() -> None:
    """Exports what is pending (OTLP) and stops the readers; the process is ending."""
    stop_prometheus()
    provider = metrics.get_meter_provider()
    if isinstance(provider, MeterProvider):
        provider.shutdown()


def meter(name: str) -> metrics.Meter:
    return metrics.get_meter(name)
