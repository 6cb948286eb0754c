"""The real stack for end-to-end tests: its own nats-server and the three service processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client as NATS

from rogatory_client import AsyncClient, Credentials, Endpoints
from services.tools.launcher import Stack
from tests.conftest import drop_schemas, require_postgres


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
async def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL"))}
    env["OTEL_SDK_DISABLED"] = "false"
    env.update(getattr(request.module, "STACK_ENV", {}))  # a test module's own settings
    prefix = ""
    url = None
    if request.param == "postgres":
        url = await require_postgres()
        prefix = f"e{uuid.uuid4().hex[:10]}_"
        env.update(DATABASE_URL=url, ROGATORY_DB_SCHEMA_PREFIX=prefix)
    running = Stack(tmp_path_factory.mktemp(f"stack-{request.param}"), base_env=env).start()
    try:
        yield running
    finally:
        codes = running.stop()
        if url:
            await drop_schemas(url, prefix)
    assert all(code == 0 for code in codes.values()), f"services did not exit cleanly: {codes}"


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


@pytest.fixture(scope="module")
def sequence_numbers() -> Iterator[Iterator[int]]:
    yield iter(range(1, 1_000_000))


def buf_binary() -> str:
    import sysconfig  # noqa: PLC0415

    return str(Path(sysconfig.get_path("scripts")) / "buf")
