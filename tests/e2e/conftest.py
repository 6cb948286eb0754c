"""The real stack for end-to-end tests: a nats-server and the three service processes.

Each test process (each pytest-xdist worker) runs one stack per backend, started when a test
first asks for it and shared by every module that takes the `stack` fixture: starting a
stack costs seconds, a test milliseconds. Tests on it stay independent by creating their
own cases (distinct case numbers from the session's `sequence_numbers`) and asserting on
their own resources only. A test that kills, reconfigures or floods the services, or whose
data would show in another's figures, takes a stack of its own with `own_stack(...)`.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from rogatory_client import AsyncClient, Credentials, Endpoints
from services.tools.launcher import SERVICES, Stack
from tests.conftest import BACKENDS, drop_schemas, require_postgres


def stack_env(**extra: str) -> dict[str, str]:
    """The test process's environment for a stack, less what would point it elsewhere; tracing on
    (timelines carry trace ids) unless `extra` says otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL"))}
    return {**env, "OTEL_SDK_DISABLED": "false", **extra}


async def start_stack(
    backend: str, data_dir: Path, env: dict[str, str], services: tuple[str, ...] = SERVICES
) -> tuple[Stack, str | None, str]:
    """A started stack on `backend` (its PostgreSQL schemas under a fresh prefix), with the url and prefix to drop."""
    url, prefix = None, ""
    if backend == "postgres":
        url = await require_postgres()
        prefix = f"e{uuid.uuid4().hex[:10]}_"
        env = {**env, "DATABASE_URL": url, "ROGATORY_DB_SCHEMA_PREFIX": prefix}
    return await asyncio.to_thread(Stack(data_dir, base_env=env).start, services), url, prefix


async def stop_stack(running: Stack, url: str | None, prefix: str) -> dict[str, int]:
    codes = await asyncio.to_thread(running.stop)
    if url:
        await drop_schemas(url, prefix)
    return codes


@asynccontextmanager
async def own_stack(backend: str, data_dir: Path, *, services: tuple[str, ...] = SERVICES, **env: str) -> AsyncIterator[Stack]:
    """A stack for one test or module alone, with `env` added to its services' environment
    (`services`: e.g. SERVICES_ONLY, without the workers); stopped at the end, every service
    exiting cleanly."""
    running, url, prefix = await start_stack(backend, data_dir, stack_env(**env), services)
    try:
        yield running
    finally:
        codes = await stop_stack(running, url, prefix)
    assert all(code == 0 for code in codes.values()), f"services did not exit cleanly: {codes}"


class SharedStacks:
    """This test process's stacks, one per backend, each started on first use."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory):
        self.tmp_path_factory = tmp_path_factory
        self.running: dict[str, tuple[Stack, str | None, str]] = {}
        self._lock = asyncio.Lock()

    async def get(self, backend: str) -> Stack:
        async with self._lock:
            if backend not in self.running:
                data_dir = self.tmp_path_factory.mktemp(f"stack-{backend}")
                self.running[backend] = await start_stack(backend, data_dir, stack_env())
            return self.running[backend][0]

    async def stop(self) -> dict[str, dict[str, int]]:
        """Every stack at once."""
        stopped = await asyncio.gather(*(stop_stack(*started) for started in self.running.values()))
        return dict(zip(self.running, stopped, strict=True))


@pytest.fixture(scope="session")
async def shared_stacks(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[SharedStacks]:
    stacks = SharedStacks(tmp_path_factory)
    yield stacks
    codes = await stacks.stop()
    assert all(code == 0 for by_service in codes.values() for code in by_service.values()), (
        f"services did not exit cleanly: {codes}"
    )


@pytest.fixture(scope="module", params=BACKENDS)
async def stack(request: pytest.FixtureRequest, shared_stacks: SharedStacks) -> Stack:
    """The shared stack of the backend."""
    return await shared_stacks.get(request.param)


@pytest.fixture
async def rogatory(stack: Stack) -> AsyncIterator[AsyncClient]:
    """The stack as a court system calls it: the Python client (retries, typed errors), as an
    admin unless a call names its own caller (`metadata=dev_credentials("court", …)`)."""
    endpoints = Endpoints(stack.address("registry"), stack.address("delegation"), stack.address("assistance"))
    async with AsyncClient(Credentials.dev_token("admin:tests"), endpoints) as client:
        yield client


@pytest.fixture
async def subscriber(stack: Stack) -> AsyncIterator[NATS]:
    nc = await nats.connect(stack.nats_url)
    yield nc
    await nc.drain()


@pytest.fixture(scope="session")
def sequence_numbers() -> Iterator[Iterator[int]]:
    """Case numbers no other test of this process uses: the stacks are shared."""
    yield iter(range(1, 1_000_000))


def buf_binary() -> str:
    import sysconfig  # noqa: PLC0415

    return str(Path(sysconfig.get_path("scripts")) / "buf")
