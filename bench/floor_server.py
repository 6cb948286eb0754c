"""A service's gRPC contract with no work behind it: the floor under its calls.

    python -m bench.floor_server --addr 127.0.0.1:PORT --rung proto|plumbing
                                 [--service registry|delegation] [--reply FILE]

prints `READY floor-<rung> ADDR` when serving. Every call parses its real request message
and answers a reply built once, so what a call costs is gRPC, protobuf and (rung
`plumbing`) the service's own per-call wrapper: the W3C trace context, the SERVER span,
the caller's identity, the request's parsing and the error mapping that every Rogatory RPC goes through
(services/plumbing/rpc.py), with telemetry configured as a service configures it. Nothing
is stored: a real call cannot cost less than its floor.

registry: CreateCase and GetCase answer the benchmark's case, named and stamped.
delegation: CreateDelegation, AcknowledgeDelegation and CompleteDelegation answer the
Delegation serialised in FILE (a real reply of the service, written by the benchmark
before it measures the floor; read at the first call).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import grpc
import uvloop
from rogatory.delegation.v1 import delegation_pb2, delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from bench.processes import serve_until_signalled
from bench.workloads import create_case_request
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.plumbing.auth import Authenticator
from services.plumbing.rpc import register
from services.plumbing.telemetry import configure_telemetry

RUNGS = ("proto", "plumbing")


def floor_name(workload: str, rung: str | None) -> str:
    """How a benchmark names a workload measured against the floor server of `rung`."""
    return f"{workload}[{rung}]" if rung else workload


def registered_case() -> pb.Case:
    """What CreateCase answers for the benchmark's request: the request's case, named and stamped."""
    case = pb.Case()
    case.CopyFrom(create_case_request(1).case)
    case.name = "courts/zj0326/cases/00000000000000000000000001"
    case.create_time.GetCurrentTime()
    case.etag = "1"
    return case


class FloorServicer(registry_pb2_grpc.RegistryServiceServicer):
    def __init__(self) -> None:
        self.case = registered_case()

    async def CreateCase(self, request: pb.CreateCaseRequest, context: Any) -> pb.Case:  # noqa: N802 (gRPC's name)
        return self.case

    async def GetCase(self, request: pb.GetCaseRequest, context: Any) -> pb.Case:  # noqa: N802
        return self.case


class FloorDelegationServicer(delegation_pb2_grpc.DelegationServiceServicer):
    def __init__(self, reply_file: Path):
        self.reply_file = reply_file
        self.reply: delegation_pb2.Delegation | None = None

    def _reply(self) -> delegation_pb2.Delegation:
        if self.reply is None:
            self.reply = delegation_pb2.Delegation.FromString(self.reply_file.read_bytes())
        return self.reply

    async def CreateDelegation(self, request: Any, context: Any) -> delegation_pb2.Delegation:  # noqa: N802
        return self._reply()

    async def AcknowledgeDelegation(self, request: Any, context: Any) -> delegation_pb2.Delegation:  # noqa: N802
        return self._reply()

    async def CompleteDelegation(self, request: Any, context: Any) -> delegation_pb2.Delegation:  # noqa: N802
        return self._reply()


def add_floor(server: grpc.aio.Server, service: str, rung: str, reply_file: Path | None) -> None:
    if service == "registry":
        servicer: object = FloorServicer()
        descriptor, add = (
            pb.DESCRIPTOR.services_by_name["RegistryService"],
            registry_pb2_grpc.add_RegistryServiceServicer_to_server,
        )
    else:
        assert reply_file is not None, "--reply is required for the delegation floor"
        servicer = FloorDelegationServicer(reply_file)
        descriptor = delegation_pb2.DESCRIPTOR.services_by_name["DelegationService"]
        add = delegation_pb2_grpc.add_DelegationServiceServicer_to_server
    if rung == "plumbing":  # as ServiceHost.add_servicer registers a service's servicers
        configure_telemetry("floor")
        register(server, servicer, descriptor, Authenticator(CourtCatalog.default(), AgencyCatalog.default(), dev_tokens=True))
    else:
        add(servicer, server)


async def serve(addr: str, service: str, rung: str, reply_file: Path | None) -> None:
    server = grpc.aio.server()
    add_floor(server, service, rung, reply_file)
    await serve_until_signalled(server, f"floor-{rung}", addr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", default="127.0.0.1:0")
    parser.add_argument("--rung", choices=RUNGS, required=True)
    parser.add_argument("--service", choices=("registry", "delegation"), default="registry")
    parser.add_argument("--reply", type=Path, help="delegation: the serialised Delegation every call answers")
    args = parser.parse_args()
    uvloop.run(serve(args.addr, args.service, args.rung, args.reply))


if __name__ == "__main__":
    main()
