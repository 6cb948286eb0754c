"""The ports of a stack's services are chosen when they bind, not ahead: a port picked free by
the launcher and bound seconds later (after the service's imports) could be taken meanwhile, by
another test's server or any outgoing connection's local port, and the service did not start
("[Errno 98] Address already in use" on its metrics port, in CI under load). A restarted
service binds the addresses it had, which its callers hold."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.plumbing.nats_server import EmbeddedNatsServer
from services.tools import launcher
from services.tools.launcher import ServiceProcess, Stack


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another process listens on by the time a service binds."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


async def serving(address: str) -> bool:
    async with grpc.aio.insecure_channel(address) as channel:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    return answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_a_port_taken_between_choosing_and_binding_does_not_stop_a_service(
    tmp_path: Path, nats_server: EmbeddedNatsServer, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever the launcher would pick ahead is taken by the time the service binds.
    monkeypatch.setattr(launcher, "free_port", lambda: taken_port)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL"))}
    stack = Stack(tmp_path / "stack", nats_url=nats_server.url, base_env=env)
    stack.start(services=("registry",))
    try:
        registry = stack.processes["registry"]
        address, metrics = registry.address, registry.metrics_address
        assert taken_port not in {int(address.rsplit(":", 1)[1]), int(metrics.rsplit(":", 1)[1])}
        assert stack.metrics == {"registry": metrics}
        assert await serving(address)

        registry.kill()  # as by SIGKILL; restarted with the environment it had, as the supervisor does
        again = ServiceProcess("registry", registry.env).start()
        stack.processes["registry"] = again
        assert (again.address, again.metrics_address) == (address, metrics)
        assert await serving(address)
    finally:
        codes = stack.stop()
    assert codes == {"registry": 0}


async def test_a_service_does_not_share_a_port_another_server_listens_on(tmp_path: Path, nats_server: EmbeddedNatsServer) -> None:
    """gRPC sets SO_REUSEPORT by default: a service given a port another gRPC server of the same
    user held (another stack on a shared machine) bound it too, and the kernel split the calls
    between the two. It must fail to start instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL"))}
    with socket.socket() as other_server:
        other_server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as gRPC's own listeners
        other_server.bind(("127.0.0.1", 0))
        other_server.listen()
        held = f"127.0.0.1:{other_server.getsockname()[1]}"
        stack = Stack(
            tmp_path / "stack",
            nats_url=nats_server.url,
            base_env={**env, "REGISTRY_ADDR": held, "REGISTRY_METRICS_ADDR": "127.0.0.1:0"},
            fixed_ports=True,
        )
        with pytest.raises(RuntimeError, match="registry did not start"):
            stack.start(services=("registry",))
