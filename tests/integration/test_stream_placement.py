"""A service starting beside a JetStream cluster that cannot place its replicated stream yet
(the cluster still forming, a node still down) waits for it instead of failing at start-up
with "no suitable peers for placement" (seen in CI: a 3-node cluster's third peer not yet known)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from services.plumbing.messaging import ensure_stream
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from tests.conftest import wait_for


@pytest.fixture
def three_nodes(tmp_path: Path) -> Iterator[list[EmbeddedNatsServer]]:
    """A 3-node cluster's servers, none started."""
    routes = [free_port() for _ in range(3)]
    nodes = [
        EmbeddedNatsServer(tmp_path / f"n{i}", cluster=("placement", routes[i], [p for p in routes if p != routes[i]]), server_name=f"n{i}")
        for i in range(3)
    ]  # fmt: skip
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def test_a_replicated_stream_is_created_once_the_cluster_can_place_it(
    three_nodes: list[EmbeddedNatsServer], caplog: pytest.LogCaptureFixture
) -> None:
    first, second, third = three_nodes
    first.start()
    second.start()  # a quorum elects a meta leader; three replicas need the third node
    nc = await nats.connect([first.url, second.url])
    try:
        js = nc.jetstream()

        async def jetstream_answers() -> bool:
            try:
                await js.account_info()
                return True
            except Exception:  # noqa: BLE001 - no meta leader yet
                return False

        await wait_for(jetstream_answers)
        with caplog.at_level(logging.WARNING, logger="services.plumbing.messaging"):
            creating = asyncio.ensure_future(ensure_stream(js, "PLACEMENT", replicas=3))
            await wait_for(lambda: "no suitable peers" in caplog.text or creating.done())
            assert not creating.done(), "the stream was placed on two nodes, or the failure was not waited out"
            third.start()
            await asyncio.wait_for(creating, 60)
        info = await js.stream_info("PLACEMENT")
        assert info.config.num_replicas == 3
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
    finally:
        await nc.close()
