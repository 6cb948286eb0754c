"""`AsyncClient` and `Client`: the Rogatory services as typed stubs, one attribute per gRPC service.

    from rogatory_client import Client, Credentials, Endpoints
    from rogatory.registry.v1 import registry_pb2 as registry

    with Client(Credentials.dev_token("court:gd0112"), Endpoints()) as rogatory:
        court = rogatory.registry.GetCourt(registry.GetCourtRequest(name="courts/gd0112"))

The methods are those of the stubs generated from the protos (`rogatory.*.v1.*_pb2_grpc`),
typed by their `.pyi` files: `rogatory.registry.CreateCase` takes a `CreateCaseRequest` and
returns a `Case`. Each accepts `timeout=` (seconds for the whole call, retries included) and
`metadata=`. What every call goes through — credential, deadline, `request_id`, retries,
typed errors — is rogatory_client/policy.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from grpc import aio
from rogatory.assistance.v1 import assistance_pb2_grpc, property_query_pb2_grpc, vehicle_control_pb2_grpc
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2_grpc

from rogatory_client._sync import LoopThread, SyncChannel
from rogatory_client.credentials import Credentials
from rogatory_client.policy import DEFAULT_TIMEOUT, CallPolicy, RetryPolicy


@dataclass(frozen=True)
class Endpoints:
    """Where the three services listen (`host:port`); the defaults are `make run`'s."""

    registry: str = "127.0.0.1:50051"
    delegation: str = "127.0.0.1:50052"
    assistance: str = "127.0.0.1:50053"  # AssistanceService, VehicleControlService, PropertyQueryService

    @classmethod
    def from_run_file(cls, path: str | Path = "var/run.json") -> Endpoints:
        """The addresses `make run` wrote (`var/run.json`, or `{ROGATORY_DATA_DIR}/run.json`)."""
        addresses = json.loads(Path(path).read_text())
        return cls(addresses["registry"], addresses["delegation"], addresses["assistance"])


def _channel(
    address: str, credentials: Credentials, interceptors: Sequence[aio.ClientInterceptor], options: Sequence[tuple[str, Any]]
) -> aio.Channel:
    if credentials.secure:
        return aio.secure_channel(address, credentials.channel_credentials(), options=options, interceptors=interceptors)
    return aio.insecure_channel(address, options=options, interceptors=interceptors)


class AsyncClient:
    """The services over gRPC asyncio channels, for code running in an event loop.

    Make it in the loop that uses it (`async with AsyncClient(…) as rogatory:`), and close it.
    `interceptors` run inside the client's own, once per attempt, with the credential and the
    `request_id` in place (OpenTelemetry's makes a span per attempt); `options` are gRPC
    channel options; `timeout` is the default deadline of a call, `retry` when it is sent again.
    """

    registry: registry_pb2_grpc.RegistryServiceAsyncStub
    delegation: delegation_pb2_grpc.DelegationServiceAsyncStub
    assistance: assistance_pb2_grpc.AssistanceServiceAsyncStub
    vehicle_controls: vehicle_control_pb2_grpc.VehicleControlServiceAsyncStub
    property_queries: property_query_pb2_grpc.PropertyQueryServiceAsyncStub

    def __init__(
        self,
        credentials: Credentials,
        endpoints: Endpoints | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        interceptors: Sequence[aio.ClientInterceptor] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self.credentials = credentials
        self.endpoints = endpoints or Endpoints()
        policy = CallPolicy(credentials.metadata(), timeout, retry or RetryPolicy())
        chain = [policy, *interceptors]  # the policy outermost: `interceptors` see every attempt
        self.channels: dict[str, aio.Channel] = {
            service: _channel(address, credentials, chain, options)
            for service, address in (
                ("registry", self.endpoints.registry),
                ("delegation", self.endpoints.delegation),
                ("assistance", self.endpoints.assistance),
            )
        }
        self.registry = registry_pb2_grpc.RegistryServiceStub(self.channels["registry"])
        self.delegation = delegation_pb2_grpc.DelegationServiceStub(self.channels["delegation"])
        self.assistance = assistance_pb2_grpc.AssistanceServiceStub(self.channels["assistance"])
        self.vehicle_controls = vehicle_control_pb2_grpc.VehicleControlServiceStub(self.channels["assistance"])
        self.property_queries = property_query_pb2_grpc.PropertyQueryServiceStub(self.channels["assistance"])

    async def close(self) -> None:
        for channel in self.channels.values():
            await channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        await self.close()


class Client:
    """The same services, called synchronously: the calls of an `AsyncClient` run on a loop of
    the client's own thread (rogatory_client/_sync.py), so both behave alike. Thread-safe;
    close it (`with Client(…) as rogatory:`)."""

    registry: registry_pb2_grpc.RegistryServiceStub
    delegation: delegation_pb2_grpc.DelegationServiceStub
    assistance: assistance_pb2_grpc.AssistanceServiceStub
    vehicle_controls: vehicle_control_pb2_grpc.VehicleControlServiceStub
    property_queries: property_query_pb2_grpc.PropertyQueryServiceStub

    def __init__(
        self,
        credentials: Credentials,
        endpoints: Endpoints | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        interceptors: Sequence[aio.ClientInterceptor] = (),
        options: Sequence[tuple[str, Any]] = (),
    ) -> None:
        self._loop = LoopThread()

        async def connect() -> AsyncClient:  # the channels belong to the loop that runs them
            return AsyncClient(credentials, endpoints, timeout=timeout, retry=retry, interceptors=interceptors, options=options)

        self._async = self._loop.run(connect())
        self.credentials = credentials
        self.endpoints = self._async.endpoints
        channels = {service: SyncChannel(self._loop, channel) for service, channel in self._async.channels.items()}
        self.registry = registry_pb2_grpc.RegistryServiceStub(channels["registry"])
        self.delegation = delegation_pb2_grpc.DelegationServiceStub(channels["delegation"])
        self.assistance = assistance_pb2_grpc.AssistanceServiceStub(channels["assistance"])
        self.vehicle_controls = vehicle_control_pb2_grpc.VehicleControlServiceStub(channels["assistance"])
        self.property_queries = property_query_pb2_grpc.PropertyQueryServiceStub(channels["assistance"])

    def close(self) -> None:
        self._loop.run(self._async.close())
        self._loop.stop()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
