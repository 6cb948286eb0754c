"""Container health probe: `python -m services.tools.healthcheck HOST:PORT`.

Asks the standard gRPC health service (`grpc.health.v1.Health/Check`, service "" = the
whole server) and exits 0 only if the answer is SERVING; anything else (NOT_SERVING while
a service drains on SIGTERM, connection refused, a 2 s timeout) exits 1. Only grpcio and
grpcio-health-checking are used, so it runs in the service image as is.

Under mutual TLS (`ROGATORY_TLS_CERT_FILE` set) the probe connects with TLS, trusting
`ROGATORY_TLS_CA_FILE` (default: the client CA, which usually signed the server too) and
presenting `ROGATORY_HEALTHCHECK_CERT_FILE` / `_KEY_FILE` — e.g. `rogatory certs --client
admin:healthcheck` — since the server asks every caller for a certificate.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

TIMEOUT_SECONDS = 2.0


def check(address: str, *, service: str = "", timeout: float = TIMEOUT_SECONDS) -> bool:
    """True iff the server at `address` reports SERVING for `service`."""
    # A probe talks to the local process: never route it through an HTTP(S)_PROXY.
    with _channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            response = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
        except grpc.RpcError as exc:
            code = exc.code() if isinstance(exc, grpc.Call) else None
            print(f"unhealthy: {address}: {code.name if code else exc}", file=sys.stderr)
            return False
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        print(f"unhealthy: {address}: {status}", file=sys.stderr)
        return False
    return True


def _channel(address: str) -> grpc.Channel:
    options = [("grpc.enable_http_proxy", 0)]
    if not os.environ.get("ROGATORY_TLS_CERT_FILE"):
        return grpc.insecure_channel(address, options=options)
    ca = os.environ.get("ROGATORY_TLS_CA_FILE") or os.environ.get("ROGATORY_TLS_CLIENT_CA_FILE", "")
    cert, key = os.environ.get("ROGATORY_HEALTHCHECK_CERT_FILE", ""), os.environ.get("ROGATORY_HEALTHCHECK_KEY_FILE", "")
    credentials = grpc.ssl_channel_credentials(
        Path(ca).read_bytes() if ca else None,
        private_key=Path(key).read_bytes() if key else None,
        certificate_chain=Path(cert).read_bytes() if cert else None,
    )
    host = address.rsplit(":", 1)[0]
    options.append(("grpc.ssl_target_name_override", host if host not in ("0.0.0.0", "") else "localhost"))
    return grpc.secure_channel(address, credentials, options=options)


def main(argv: Sequence[str] | str | None = None) -> int:
    """Exit status for the probe; `argv` is the argument list or just the address."""
    if isinstance(argv, str):
        argv = [argv]
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m services.tools.healthcheck HOST:PORT", file=sys.stderr)
        return 2
    return 0 if check(args[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
