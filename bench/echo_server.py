"""A raw grpc.aio echo server: the ceiling a Rogatory service is compared with.

`python -m bench.echo_server --addr 127.0.0.1:PORT` prints `READY echo ADDR` when serving.
Bytes in, same bytes out: a generic handler with no (de)serializers, no interceptors, and
uvloop like `services.plumbing.host.run_service`, so the only difference from a service
is the service's own work.
"""

from __future__ import annotations

import argparse

import grpc
import uvloop

from bench.processes import serve_until_signalled

SERVICE = "bench.Echo"
METHOD = f"/{SERVICE}/Echo"


async def _echo(request: bytes, _context: grpc.aio.ServicerContext) -> bytes:
    return request


def _handler() -> grpc.GenericRpcHandler:
    return grpc.method_handlers_generic_handler(SERVICE, {"Echo": grpc.unary_unary_rpc_method_handler(_echo)})


async def serve(addr: str) -> None:
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((_handler(),))
    await serve_until_signalled(server, "echo", addr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--addr", default="127.0.0.1:0")
    uvloop.run(serve(parser.parse_args().addr))


if __name__ == "__main__":
    main()
