"""The container health probe (services/tools/healthcheck.py) against a real grpc.aio health service."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from services.tools import healthcheck

ROOT = Path(__file__).resolve().parents[2]
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def probe(address: str) -> int:
    # The probe is a blocking client; the server shares this event loop, so run it aside.
    return await asyncio.to_thread(healthcheck.main, [address])


@pytest.fixture
async def health_server() -> AsyncIterator[tuple[grpc.aio.Server, HealthServicer, str]]:
    server = grpc.aio.server()
    servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield server, servicer, f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def test_exit_status_follows_the_serving_status(health_server: tuple[grpc.aio.Server, HealthServicer, str]) -> None:
    server, servicer, address = health_server

    await servicer.set("", SERVING)
    assert await probe(address) == 0

    await servicer.set("", NOT_SERVING)  # what a draining service reports
    assert await probe(address) == 1

    await servicer.set("", SERVING)
    assert await probe(address) == 0

    await server.stop(None)
    assert await probe(address) == 1  # nobody listening


async def test_runs_as_a_module(health_server: tuple[grpc.aio.Server, HealthServicer, str]) -> None:
    _, servicer, address = health_server
    await servicer.set("", SERVING)

    async def run(*args: str) -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.tools.healthcheck",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(process.wait(), timeout=30)

    assert await run(address) == 0
    await servicer.set("", NOT_SERVING)
    assert await run(address) == 1


def test_usage_error() -> None:
    assert healthcheck.main([]) == 2
    assert healthcheck.main(["a:1", "b:2"]) == 2
