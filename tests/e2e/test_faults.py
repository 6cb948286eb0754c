"""Proof under faults (issue 6), against real processes: the nats-server killed and restarted
in the middle of a burst of 1,000 delegations, the delegation service killed with SIGKILL
in the middle of a burst of lifecycles and restarted, and a three-node JetStream cluster
losing a node under load. Afterwards every accepted request is in the database and its
event in the stream exactly once, and every consumer applied every event once.

Clients do what a court system must: retry a failed call with the same `request_id`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import nats
import pytest
from nats.js.api import StreamInfo
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc

from services.contract.events import of_type
from services.delegation.turnaround import CONSUMER as TURNAROUND_CONSUMER
from services.plumbing.auth import dev_credentials
from services.plumbing.events import ReceivedEvent
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.plumbing.subscriber import read_events
from services.tools.demo import as_court, delegate_freeze, freeze_request, until_case_replicated
from services.tools.launcher import ServiceProcess, Stack
from tests.conftest import wait_for
from tests.e2e.test_delegation_assistance_e2e import register_case
from tests.integration.test_consumer_inbox import rogatory

REQUESTING = dev_credentials("court", "gd0112")
ENTRUSTED = dev_credentials("court", "ha0122")
OFFICER = dg.Officer(display_name="李法官", phone="0371-62171234")
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED}


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL"))}
    return {**env, "ROGATORY_SCAN_INTERVAL": "0", "ROGATORY_SHUTDOWN_GRACE": "5", **extra}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    running = Stack(tmp_path / "stack", base_env=base_env()).start()
    try:
        yield running
    finally:
        running.stop()


@dataclass
class Burst:
    """Calls with request ids, retried until they succeed, as a court system would."""

    channel: grpc.aio.Channel
    answers: dict[str, dg.Delegation] = field(default_factory=dict)  # request_id → first answer received
    retries: Counter[str] = field(default_factory=Counter)

    @property
    def stub(self) -> delegation_pb2_grpc.DelegationServiceStub:
        return delegation_pb2_grpc.DelegationServiceStub(self.channel)

    async def until_done(self, request_id: str, call: Callable[[], Awaitable[dg.Delegation]]) -> dg.Delegation:
        for _ in range(600):
            try:
                answer = await call()
            except grpc.aio.AioRpcError as error:
                if error.code() not in RETRYABLE:
                    raise
                self.retries[error.code().name] += 1
                await asyncio.sleep(0.05)  # the service or NATS is coming back
                continue
            self.answers.setdefault(request_id, answer)
            return answer
        raise AssertionError(f"{request_id} never succeeded")

    async def create(self, case: str) -> tuple[str, dg.Delegation]:
        request = freeze_request(case)
        return request.request_id, await self.until_done(
            request.request_id, lambda: self.stub.CreateDelegation(request, metadata=REQUESTING, timeout=10)
        )

    async def acknowledge(self, name: str) -> dg.Delegation:
        request = dg.AcknowledgeDelegationRequest(name=name, officer=OFFICER, request_id=str(uuid.uuid4()))
        return await self.until_done(
            request.request_id, lambda: self.stub.AcknowledgeDelegation(request, metadata=ENTRUSTED, timeout=10)
        )


async def in_parallel(count: int, workers: int, job: Callable[[int], Awaitable[None]]) -> None:
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await job(n)

    await asyncio.gather(*(worker() for _ in range(workers)))


def query(db: Path, sql: str, *args: object) -> list[tuple]:  # type: ignore[type-arg]
    """One statement on a service's SQLite file, committed; the connection closed (a bare
    `with sqlite3.connect()` commits but leaves it open)."""
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        return conn.execute(sql, args).fetchall()


async def stream_events(nats_url: str, subject_filter: str, expected: int) -> list[ReceivedEvent]:
    """Every event on `subject_filter`; retried while a cluster that lost a node re-elects leaders."""
    nc = await nats.connect(nats_url.split(","))
    try:
        for attempt in range(30):
            try:
                return await read_events(nc.jetstream(), "ROGATORY", subject_filter, until_count=expected, timeout=60)
            except (nats.js.errors.ServiceUnavailableError, nats.errors.TimeoutError):
                if attempt == 29:
                    raise
                await asyncio.sleep(1.0)
        raise AssertionError("unreachable")
    finally:
        await nc.close()


async def outbox_drained(db: Path, timeout: float = 60) -> int:
    """Waits until the relay published every outbox row; returns how many rows there are."""
    await wait_for(lambda: query(db, "SELECT count(*) FROM outbox WHERE sent_at IS NULL")[0][0] == 0, timeout=timeout)
    return int(query(db, "SELECT count(*) FROM outbox")[0][0])


async def assert_published_once_and_applied_once(data_dir: Path, nats_url: str) -> list[ReceivedEvent]:
    """Stream count by event id = outbox rows, no duplicates; the turnaround projection and the
    audit log each applied every delegation event once."""
    delegation_db, turnaround_db, audit_db = data_dir / "delegation.db", data_dir / "turnaround.db", data_dir / "audit.db"
    rows = await outbox_drained(delegation_db)
    subjects = query(delegation_db, "SELECT count(*) FROM outbox WHERE subject LIKE 'rogatory.v1.delegation.%'")[0][0]
    events = await stream_events(nats_url, "rogatory.v1.delegation.>", subjects)
    ids = Counter(e.event_id for e in events)
    assert len(events) == subjects and not [i for i, n in ids.items() if n > 1], "an event was lost or published twice"
    assert rows == len(query(delegation_db, "SELECT DISTINCT event_id FROM outbox"))
    projected = f"SELECT count(*) FROM inbox WHERE consumer = '{TURNAROUND_CONSUMER}'"
    await wait_for(lambda: query(turnaround_db, projected)[0][0] == len(ids), timeout=60)
    audited = "SELECT count(DISTINCT event_id), count(*) FROM audit_log WHERE subject LIKE 'rogatory.v1.delegation.%'"
    await wait_for(lambda: query(audit_db, audited)[0] == (len(ids), len(ids)), timeout=60)
    return events


async def test_nats_killed_and_restarted_mid_burst_loses_and_doubles_nothing(stack: Stack) -> None:
    assert stack.nats is not None
    case = await register_case(stack, 910_001)
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel, as_court("gd0112", stack.describe()) as huangpu:
        await until_case_replicated(lambda: delegate_freeze(huangpu, case))
        burst = Burst(channel)

        async def chaos() -> None:
            await wait_for(lambda: len(burst.answers) >= 300, timeout=120)
            stack.nats.stop(kill=True)  # type: ignore[union-attr]
            await wait_for(lambda: len(burst.answers) >= 500, timeout=120)  # writes go on: database and outbox only
            stack.nats.start()  # type: ignore[union-attr]  # same port, same JetStream store

        async def create(_n: int) -> None:
            await burst.create(case)

        await asyncio.gather(chaos(), in_parallel(1000, 32, create))

    assert len(burst.answers) == 1000
    matters = query(stack.data_dir / "delegation.db", "SELECT count(*) FROM delegation")[0][0]
    assert matters == 1001  # the 1,000 and the one that waited for the case
    events = await assert_published_once_and_applied_once(stack.data_dir, stack.nats_url)
    submitted = Counter(e.subject.rsplit(".", 1)[1] for e in events)["submitted"]
    assert submitted == 1001


async def test_service_killed_mid_burst_loses_no_accepted_request_and_applies_nothing_twice(stack: Stack) -> None:
    case = await register_case(stack, 910_002)
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel, as_court("gd0112", stack.describe()) as huangpu:
        await until_case_replicated(lambda: delegate_freeze(huangpu, case))
        burst = Burst(channel)
        created: dict[str, str] = {}  # create request_id → delegation name

        async def lifecycle(_n: int) -> None:
            request_id, delegation = await burst.create(case)
            created[request_id] = delegation.name
            await burst.acknowledge(delegation.name)

        async def chaos() -> None:
            await wait_for(lambda: len(burst.answers) >= 120, timeout=120)
            old = stack.processes["delegation"]
            old.kill()  # SIGKILL: no drain, no flush
            stack.processes["delegation"] = await asyncio.to_thread(ServiceProcess("delegation", old.env).start)

        await asyncio.gather(chaos(), in_parallel(200, 16, lifecycle))

        stub = burst.stub
        for request_id, name in list(created.items())[::10]:  # a retry long after gets the original answer
            again = await stub.CreateDelegation(freeze_request_with(case, request_id), metadata=REQUESTING)
            assert again.name == name
        timelines = [
            await stub.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=name), metadata=REQUESTING)
            for name in created.values()
        ]

    assert len(created) == 200 and len(set(created.values())) == 200
    assert all([e.action for e in t.entries] == ["SUBMIT", "ACKNOWLEDGE"] for t in timelines), "a transition was applied twice"
    db = stack.data_dir / "delegation.db"
    assert query(db, "SELECT count(*) FROM delegation")[0][0] == 201  # one row per request id, nothing lost
    events = await assert_published_once_and_applied_once(stack.data_dir, stack.nats_url)
    steps = Counter((matter_of(e), e.subject.rsplit(".", 1)[1]) for e in events)
    assert set(steps.values()) == {1}, "a step was evented twice"
    assert {(name, verb) for name in created.values() for verb in ("submitted", "acknowledged")} <= set(steps)


def matter_of(event: ReceivedEvent) -> str:
    kind = of_type(event.event_type)
    assert kind is not None and kind.type.startswith(("rogatory.delegation.", "rogatory.supervision."))
    return kind.parse(event.data).delegation.name  # type: ignore[attr-defined]


def freeze_request_with(case: str, request_id: str) -> dg.CreateDelegationRequest:
    request = freeze_request(case)
    request.request_id = request_id
    return request


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[list[EmbeddedNatsServer]]:
    routes = [free_port() for _ in range(3)]
    nodes = [
        EmbeddedNatsServer(tmp_path / f"n{i}", cluster=("rogatory", routes[i], [p for p in routes if p != routes[i]]), server_name=f"n{i}")
        for i in range(3)
    ]  # fmt: skip
    try:
        for node in nodes:
            node.start()
        nc = await nats.connect([n.url for n in nodes])
        try:  # JetStream answers once the cluster has elected its meta leader
            for _ in range(200):
                try:
                    await nc.jetstream().account_info()
                    break
                except Exception:  # noqa: BLE001 - not ready yet
                    await asyncio.sleep(0.1)
        finally:
            await nc.close()
        yield nodes
    finally:
        for node in nodes:
            node.stop()


async def stream_info(nats_url: str) -> StreamInfo:
    nc = await nats.connect(nats_url.split(","))
    try:
        return await nc.jetstream().stream_info("ROGATORY")
    finally:
        await nc.close()


async def test_a_cluster_node_killed_under_load_loses_nothing(tmp_path: Path, cluster: list[EmbeddedNatsServer]) -> None:
    urls = ",".join(n.url for n in cluster)
    stack = Stack(tmp_path / "stack", nats_url=urls, base_env=base_env(ROGATORY_STREAM_REPLICAS="3")).start()
    try:
        info = await stream_info(urls)
        assert info.config.num_replicas == 3 and info.cluster and len(info.cluster.replicas or []) == 2
        case = await register_case(stack, 910_003)
        async with (
            grpc.aio.insecure_channel(stack.address("delegation")) as channel,
            as_court("gd0112", stack.describe()) as huangpu,
        ):
            await until_case_replicated(lambda: delegate_freeze(huangpu, case))
            burst = Burst(channel)
            killed: list[str] = []

            async def chaos() -> None:
                await wait_for(lambda: len(burst.answers) >= 100, timeout=120)
                leader = (await stream_info(urls)).cluster.leader  # type: ignore[union-attr]
                victim = next(n for n in cluster if n.server_name == leader)  # the stream's leader, the hardest case
                victim.stop(kill=True)
                killed.append(leader or "")

            async def create(_n: int) -> None:
                await burst.create(case)

            await asyncio.gather(chaos(), in_parallel(400, 16, create))
        assert killed and len(burst.answers) == 400
        survivors = ",".join(n.url for n in cluster if n.server_name not in killed)
        await assert_published_once_and_applied_once(stack.data_dir, survivors)
        after = await stream_info(survivors)
        assert after.cluster and after.cluster.leader not in killed  # a new leader took over
    finally:
        stack.stop()


async def test_i15_p6_deadletter_list_and_replay_on_the_running_stack(tmp_path: Path) -> None:
    """A genuinely poisoned event on the real stack, parked, listed, and replayed once fixed:
    a faulty trigger in the delegation database refuses case replicas, so a case registered
    then is parked by `delegation-case-replica` (at ROGATORY_MAX_DELIVERIES=1, at once);
    `rogatory deadletter list` shows it; with the trigger dropped, `rogatory deadletter
    replay` has the delegation service apply it, once, and the court can delegate the case."""
    stack = Stack(tmp_path / "stack", base_env=base_env(ROGATORY_MAX_DELIVERIES="1")).start()
    delegation_db = stack.data_dir / "delegation.db"
    try:
        query(
            delegation_db, "CREATE TRIGGER faulty BEFORE INSERT ON case_replica BEGIN SELECT RAISE(ABORT, 'faulty trigger'); END"
        )
        case = await register_case(stack, 910_006)
        await wait_for(lambda: parked_in_stream(stack.nats_url), timeout=60)
        listed = (await rogatory(stack.nats_url, "deadletter", "list"))[1]
        (row,) = [line for line in listed.splitlines() if "delegation-case-replica" in line]
        assert "rogatory.case.registered.v1" in row and "rogatory.v1.case.gd0112.registered" in row
        assert "faulty trigger" in row and "1 parked event(s)" in listed  # the assistance service's replica took it
        event_id = row.split()[3]

        query(delegation_db, "DROP TRIGGER faulty")  # the bug fixed
        code, replayed = await rogatory(stack.nats_url, "deadletter", "replay", "--consumer", "delegation-case-replica")
        assert code == 0 and f"replayed {event_id}" in replayed and "to delegation-case-replica" in replayed, replayed
        async with as_court("gd0112", stack.describe()) as huangpu:
            created = await until_case_replicated(lambda: delegate_freeze(huangpu, case), attempts=300)
        assert created.case == case
        assert "no parked events" in (await rogatory(stack.nats_url, "deadletter", "list"))[1]
        applied = "SELECT count(*) FROM inbox WHERE consumer = 'delegation-case-replica' AND event_id = ?"
        assert query(delegation_db, applied, event_id) == [(1,)]
    finally:
        codes = stack.stop()
    assert all(code == 0 for code in codes.values()), codes


async def parked_in_stream(nats_url: str) -> bool:
    nc = await nats.connect(nats_url)
    try:
        info = await nc.jetstream().stream_info("ROGATORY", subjects_filter="rogatory.v1.deadletter.>")
    finally:
        await nc.close()
    return bool(info.state.subjects)
