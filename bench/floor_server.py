"""The registry's gRPC contract with no work behind it: the floor under CreateCase and GetCase.

    python -m bench.floor_server --addr 127.0.0.1:PORT --rung proto|plumbing

prints `READY floor-<rung> ADDR` when serving. Every RegistryService call parses its real
request message and answers a Case built once at start-up, so what a call costs is gRPC,
protobuf and (rung `plumbing`) the service's own per-call wrapper: the W3C trace context,
the SERVER span, the caller's identity and the error mapping that every Rogatory RPC goes
through (services/plumbing/rpc.py), with telemetry configured as a service configures it.
Nothing is stored: a real CreateCase or GetCase cannot cost less than its floor.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc
import uvloop
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from bench.workloads import create_case_request
from services.plumbing.rpc import instrumented
from services.plumbing.telemetry import configure_telemetry

SERVICE = pb.DESCRIPTOR.services_by_name["RegistryService"]
RUNGS = ("proto", "plumbing")


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


def servicer_for(rung: str) -> object:
    if rung == "proto":
        return FloorServicer()
    configure_telemetry("floor")
    return instrumented(FloorServicer(), SERVICE)


async def serve(addr: str, rung: str) -> None:
    server = grpc.aio.server()
    registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer_for(rung), server)
    port = server.add_insecure_port(addr)
    await server.start()
    print(f"READY floor-{rung} {addr.rsplit(':', 1)[0]}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", default="127.0.0.1:0")
    parser.add_argument("--rung", choices=RUNGS, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.addr, args.rung))


if __name__ == "__main__":
    main()
