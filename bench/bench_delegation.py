"""Delegation service vs raw grpc.aio echo, and commit → subscriber delivery, in one run.

    .venv/bin/python -m bench.bench_delegation [--duration 5] [--rounds 3] [--concurrency 64]
                                               [--rate 300] [--rate-seconds 25] [--profile]

Starts an echo server, an embedded nats-server, the registry, the delegation service, the
audit appender and the turnaround projector as child processes (SQLite and JetStream in a
temp dir, deadline scanner off), registers cases,
then measures (a) echo, (b) CreateDelegation, (c) create → acknowledge → complete
lifecycles, a raw JetStream publish baseline, and (d) CreateDelegation open-loop at a fixed
rate with a JetStream subscriber timing every `submitted` event from its `ce-time`. Prints
the figures and PASS/FAIL per goal (issue 18, point 4: CPU per call of the request process
and of the whole stack, nats-server included, beside the ratios to echo) and writes
bench/results/delegation-<timestamp>.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import multiprocessing
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import grpc
import nats
import uvloop
from nats.aio.msg import Msg
from nats.js import JetStreamContext, JetStreamManager
from nats.js.api import DeliverPolicy, StorageType, StreamConfig
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.events.v1 import events_pb2
from rogatory.registry.v1 import registry_pb2_grpc

from bench.echo_server import METHOD as ECHO_METHOD
from bench.floor_server import RUNGS, floor_name
from bench.load import Call, ChannelPool, Measurement, cpu_seconds, measure, percentile
from bench.processes import ChildProcess, environment, start_worker
from services.contract.events import DELEGATION_SUBMITTED
from services.plumbing.auth import dev_credentials
from services.plumbing.events import parse_time
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.tools.demo import freeze_request, seed_case_request

STREAM = "ROGATORY"
SUBMITTED = DELEGATION_SUBMITTED.subject.filter()
JS_BENCH_STREAM, JS_BENCH_SUBJECT = "BENCHJS", "bench.js.publish"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
PYSPY = Path("/tmp/pyspy/bin/py-spy")
ECHO, CREATE, LIFECYCLE = "echo", "CreateDelegation", "Lifecycle"
PHASES = ("echo", "create", "lifecycle", "jetstream", "delivery")
LAG_GOAL_MS = 50.0  # issue 3, point 10: commit → subscriber p99

REQUESTING = dev_credentials("court", "gd0112")
ENTRUSTED = dev_credentials("court", "ha0122")
OFFICER = dg.Officer(display_name="李法官", phone="0371-62171234")
RECEIPT = dg.Attachment(kind=dg.Attachment.ASSISTANCE_RECEIPT, name="协助冻结回执.pdf", size_bytes=4096, sha256="ef" * 32)
COMPLETION = dg.Completion(outcome=dg.Completion.EXECUTED, amount_fen=700_000_000, result_documents=[RECEIPT])


# ---------------------------------------------------------------- options and results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Delegation service vs raw grpc.aio echo, and event delivery lag")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measured round (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="measured rounds; the median is reported (default 3)")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds of warm-up before each measurement")
    p.add_argument("--concurrency", type=int, default=64, help="requests (lifecycles) in flight (default 64)")
    p.add_argument("--channels", type=int, default=4, help="client channels used round-robin (default 4)")
    p.add_argument("--cases", type=int, default=256, help="cases registered for the delegations to use (default 256)")
    p.add_argument("--rate", type=float, default=300.0, help="open-loop CreateDelegation rate for delivery lag (default 300/s)")
    p.add_argument("--rate-seconds", type=float, default=25.0, help="seconds at --rate (default 25)")
    p.add_argument("--step-seconds", type=float, default=10.0, help="seconds per lower rate tried (--rate not kept or too slow)")
    p.add_argument("--max-steps", type=int, default=4, help="lower rates tried at most (default 4)")
    p.add_argument("--in-flight-cap", type=int, default=2000, help="open loop: sends skipped above this many in flight")
    p.add_argument("--phases", default=",".join(PHASES), help=f"comma-separated subset of {','.join(PHASES)}")
    p.add_argument("--profile", action="store_true", help="py-spy the delegation service during CreateDelegation and delivery")
    p.add_argument(
        "--floors", action="store_true", help=f"also measure no-work servers of the same contract ({', '.join(RUNGS)})"
    )
    p.add_argument("--no-save", action="store_true", help="do not write the JSON result")
    args = p.parse_args(argv)
    args.phases = [x for x in args.phases.split(",") if x]
    if unknown := set(args.phases) - set(PHASES):
        p.error(f"unknown phases {sorted(unknown)}")
    return args


@dataclass
class Children:
    echo: ChildProcess | None = None
    nats: EmbeddedNatsServer | None = None
    registry: ChildProcess | None = None
    delegation: ChildProcess | None = None
    audit: ChildProcess | None = None  # the audit appender, chaining every event
    turnaround: ChildProcess | None = None  # the turnaround projector: the delegation events into the statistics
    data_dir: Path | None = None
    floors: dict[str, ChildProcess] = field(default_factory=dict)
    floor_reply: Path | None = None  # the real reply the floor servers answer, written before they are measured

    def pids(self) -> dict[str, int]:
        procs = {"echo": self.echo, **self.stack(), "nats-server": self.nats}
        procs.update((f"floor-{rung}", floor) for rung, floor in self.floors.items())
        pids = {name: c.process.pid for name, c in procs.items() if c and c.process}
        return {**pids, "bench client": os.getpid()}

    def stack(self) -> dict[str, ChildProcess | None]:
        return {"registry": self.registry, "delegation": self.delegation, "audit": self.audit, "turnaround": self.turnaround}

    def stack_pids(self) -> list[int]:
        """Every process a delegation costs CPU in: the services, their workers and nats-server."""
        return [c.process.pid for c in (*self.stack().values(), self.nats) if c and c.process]


@dataclass
class DeliveryRun:
    """One open-loop run at a fixed rate, with the subscriber's view of it."""

    rate: float
    seconds: float
    sent: int
    acked: int
    errors: dict[str, int]
    skipped_over_cap: int
    offered_rate: float  # sends / send window
    achieved_rate: float  # replies / (first send → last reply)
    send_lateness_p99_ms: float  # how late the client kept its own timetable
    rpc_p50_ms: float
    rpc_p99_ms: float
    events_matched: int
    events_duplicate: int
    events_other: int
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    lag_p99_by_quarter_ms: list[float]  # growth over the run shows a relay falling behind
    reply_p50_ms: float  # ce-time → the RPC reply reaching the client
    reply_p99_ms: float
    event_after_reply_p50_ms: float  # the RPC reply → the event reaching the subscriber
    event_after_reply_p99_ms: float
    cpu_percent: dict[str, float] = field(default_factory=dict)

    @property
    def sustained(self) -> bool:
        return not self.errors and not self.skipped_over_cap and self.achieved_rate >= 0.97 * self.rate

    @property
    def all_delivered(self) -> bool:
        return self.events_matched == self.acked and self.events_duplicate == 0


@dataclass
class Report:
    environment: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    cpu_percent: dict[str, dict[str, float]] = field(default_factory=dict)  # per phase, per process
    jetstream: list[dict[str, Any]] = field(default_factory=list)
    delivery: list[DeliveryRun] = field(default_factory=list)
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    floor_verdicts: list[dict[str, Any]] = field(default_factory=list)  # what no work at all reaches: not the run's verdict
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    settle: dict[str, dict[str, Any]] = field(default_factory=dict)  # backlog waited for before each phase
    log_tails: dict[str, str] = field(default_factory=dict)

    @property
    def had_errors(self) -> bool:
        return any(r.errors for m in self.measurements for r in m.rounds) or any(d.errors for d in self.delivery)

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and all(v["pass"] for v in self.verdicts)


# ---------------------------------------------------------------- child processes


def start_children(tmp: Path, stack: contextlib.ExitStack, *, floors: bool = False) -> Children:
    """Every stop is registered before its start, so a failure or Ctrl-C at any point cleans up."""
    c = Children(data_dir=tmp / "data")
    if floors:
        c.floor_reply = tmp / "floor-reply.bin"
        for rung in RUNGS:
            options = [
                "--addr",
                f"127.0.0.1:{free_port()}",
                "--rung",
                rung,
                "--service",
                "delegation",
                "--reply",
                str(c.floor_reply),
            ]
            floor = ChildProcess(f"floor-{rung}", "bench.floor_server", options, {}, tmp)
            stack.callback(floor.stop)
            c.floors[rung] = floor.start()
    c.echo = ChildProcess("echo", "bench.echo_server", ["--addr", f"127.0.0.1:{free_port()}"], {}, tmp)
    stack.callback(c.echo.stop)
    c.echo.start()
    c.nats = EmbeddedNatsServer(tmp / "jetstream")  # sync_interval: always, like the services' default
    stack.callback(c.nats.stop)  # registered before the services, so stopped after them
    c.nats.start()
    common = {"NATS_URL": c.nats.url, "ROGATORY_DATA_DIR": str(c.data_dir), "ROGATORY_STREAM": STREAM}
    c.registry = ChildProcess(
        "registry", "services.registry.main", [], {**common, "REGISTRY_ADDR": f"127.0.0.1:{free_port()}"}, tmp
    )
    stack.callback(c.registry.stop)
    c.registry.start()
    env = {**common, "DELEGATION_ADDR": f"127.0.0.1:{free_port()}", "ROGATORY_SCAN_INTERVAL": "0"}  # no scanner in the figures
    c.delegation = ChildProcess("delegation", "services.delegation.main", [], env, tmp)
    stack.callback(c.delegation.stop)
    c.delegation.start()
    c.audit = start_worker("audit", common, tmp, stack)
    c.turnaround = start_worker("turnaround", common, tmp, stack)
    return c


class CpuMeter:
    """CPU % of a core per process over a phase: where the machine's two cores went.

    The delegation service's main (event-loop) thread is listed on its own: the rest of that
    process is the aiosqlite worker threads and gRPC's poller.
    """

    def __init__(self, pids: dict[str, int]):
        self.stats = {name: Path(f"/proc/{pid}/stat") for name, pid in pids.items()}
        if pid := pids.get("delegation"):
            self.stats["delegation main thread"] = Path(f"/proc/{pid}/task/{pid}/stat")
        self.start = {name: cpu_seconds(stat) for name, stat in self.stats.items()}
        self.began = time.perf_counter()

    def percent(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.began
        return {n: round(100 * (cpu_seconds(stat) - self.start[n]) / elapsed, 1) for n, stat in self.stats.items()}


# ---------------------------------------------------------------- workloads


def echo_call(pool: ChannelPool) -> Call:
    """Raw bytes as long as a CreateDelegation request: the ceiling, same client set-up."""
    methods = pool.round_robin(lambda channel: channel.unary_unary(ECHO_METHOD))
    payload = os.urandom(freeze_request("courts/gd0112/cases/01JBENCHMARK0000000000000").ByteSize())
    return lambda: next(methods)(payload)


class DelegationWorkload:
    """CreateDelegation (a DEPOSITS freeze, fresh request_id) over the registered cases, and whole lifecycles."""

    def __init__(self, pool: ChannelPool, cases: list[str]):
        self.stubs = pool.round_robin(delegation_pb2_grpc.DelegationServiceStub)
        self.cases = itertools.cycle(cases)
        self.reply_size = 0

    async def create(self) -> None:
        reply = await next(self.stubs).CreateDelegation(freeze_request(next(self.cases)), metadata=REQUESTING)
        self.reply_size = reply.ByteSize()

    async def lifecycle(self) -> None:
        """create → acknowledge (entrusted court, officer) → complete (EXECUTED), each with the last etag."""
        stub = next(self.stubs)
        created = await stub.CreateDelegation(freeze_request(next(self.cases)), metadata=REQUESTING)
        ack = dg.AcknowledgeDelegationRequest(name=created.name, officer=OFFICER, etag=created.etag)
        acknowledged = await stub.AcknowledgeDelegation(ack, metadata=ENTRUSTED)
        done = dg.CompleteDelegationRequest(name=created.name, completion=COMPLETION, etag=acknowledged.etag)
        await stub.CompleteDelegation(done, metadata=ENTRUSTED)


async def register_cases(registry_addr: str, count: int, in_flight: int = 16) -> list[str]:
    """Registers `count` cases of gd0112; the last one alone, after the others, so it is the newest event."""
    async with grpc.aio.insecure_channel(registry_addr) as channel:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        numbers = iter(range(1, count))
        names: list[str] = []

        async def worker() -> None:
            for n in numbers:
                names.append((await stub.CreateCase(seed_case_request(n), metadata=REQUESTING)).name)

        await asyncio.gather(*(worker() for _ in range(in_flight)))
        names.append((await stub.CreateCase(seed_case_request(count), metadata=REQUESTING)).name)
    return names


async def until_replicated(workload: DelegationWorkload, case: str, timeout: float = 60.0) -> float:
    """Seconds until CreateDelegation for `case` stops answering FAILED_PRECONDITION (CASE_NOT_REGISTERED)."""
    started = time.perf_counter()
    stub = next(workload.stubs)
    while True:
        try:
            await stub.CreateDelegation(freeze_request(case), metadata=REQUESTING)
            return time.perf_counter() - started
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION or time.perf_counter() - started > timeout:
                raise
            await asyncio.sleep(0.05)


# ---------------------------------------------------------------- closed-loop phases (a)-(c)


async def measure_and_print(
    name: str,
    call: Call,
    args: argparse.Namespace,
    report: Report,
    pids: dict[str, int],
    server: str = "delegation",
    stack_pids: list[int] | None = None,
) -> Measurement:
    """`server` names the process in `pids` whose CPU per call is reported; `stack_pids` every
    process of the stack, for the whole stack's CPU per call beside it."""
    meter = CpuMeter(pids)
    m = await measure(
        name, call, args.concurrency, seconds=args.duration, rounds=args.rounds, warmup=args.warmup,
        server_pid=pids[server], stack_pids=stack_pids or [],
    )  # fmt: skip
    report.cpu_percent[name] = meter.percent()
    report.measurements.append(m)
    r = m.median
    lifecycle = name.startswith(LIFECYCLE)
    per_call = f"  = {3 * r.rps:6.0f} calls/s" if lifecycle else ""
    unit = "lifecycle" if lifecycle else "call"
    cpu = f"  server CPU {r.server_cpu_ms_per_call:.3f} ms/{unit}" if r.server_cpu_ms_per_call else ""
    if r.stack_cpu_ms_per_call:
        cpu += f", whole stack {r.stack_cpu_ms_per_call:.3f}"
    print(
        f"  {name:<27} @{args.concurrency:<3} {r.rps:8.0f}/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms{per_call}{cpu}",
        flush=True,
    )
    print(f"    CPU % of a core: {fmt_cpu(report.cpu_percent[name])}", flush=True)
    if failed := [x for x in m.rounds if x.errors]:
        print(f"    errors: {[x.error_codes for x in failed]}; first: {failed[0].first_error}", flush=True)
    return m


# ---------------------------------------------------------------- raw JetStream publish baseline


async def js_publish_round(js: JetStreamContext, payload: bytes, in_flight: int, seconds: float) -> float:
    """Messages/s with `in_flight` publishers each awaiting every ack (js.publish)."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def publisher() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await js.publish(JS_BENCH_SUBJECT, payload, stream=JS_BENCH_STREAM)
            count += 1

    began = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(in_flight)))
    return count / (time.perf_counter() - began)


async def bench_jetstream(nats_url: str, payload_size: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Same server, file storage, fsync always: the ceiling for the outbox relay's publishing."""
    nc = await nats.connect(nats_url)
    results = []
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=JS_BENCH_STREAM, subjects=[JS_BENCH_SUBJECT], storage=StorageType.FILE))
        payload = os.urandom(payload_size)
        for in_flight in (1, args.concurrency):
            await js_publish_round(js, payload, in_flight, args.warmup)
            rates = [await js_publish_round(js, payload, in_flight, args.duration) for _ in range(args.rounds)]
            results.append({"in_flight": in_flight, "payload_bytes": payload_size, "msgs_per_s": statistics.median(rates),
                            "rounds": [round(r) for r in rates]})  # fmt: skip
            print(f"  js.publish        @{in_flight:<3} {statistics.median(rates):8.0f} msg/s (awaiting each ack, "
                  f"{payload_size} B)", flush=True)  # fmt: skip
        await js.delete_stream(JS_BENCH_STREAM)
    finally:
        await nc.drain()
    return results


# ---------------------------------------------------------------- open-loop delivery lag (d)


def outbox_unsent(db_path: Path) -> int:
    with contextlib.closing(sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0])


async def consumer_backlog(jsm: JetStreamManager) -> int:
    """Messages the durable consumers (case replica, turnaround projection) have yet to apply."""
    infos = await jsm.consumers_info(STREAM)
    return sum((c.num_pending or 0) + (c.num_ack_pending or 0) for c in infos if c.config.durable_name)


async def settle(children: Children, label: str, report: Report, timeout: float = 600.0) -> float:
    """Waits until the relays published every committed event and the durable consumers applied
    theirs, so no phase pays for the backlog of the one before; returns the seconds waited."""
    assert children.nats and children.data_dir
    databases = [children.data_dir / "registry.db", children.data_dir / "delegation.db"]
    nc = await nats.connect(children.nats.url)
    meter = CpuMeter({k: v for k, v in children.pids().items() if k in ("delegation", "nats-server")})
    started = time.perf_counter()
    first: dict[str, int] | None = None
    try:
        while time.perf_counter() - started < timeout:
            parts = {"outbox": sum(outbox_unsent(db) for db in databases), "consumers": await consumer_backlog(nc.jsm())}
            first = parts if first is None else first
            if not sum(parts.values()):
                break
            await asyncio.sleep(0.2)
    finally:
        await nc.drain()
    waited, cpu = time.perf_counter() - started, meter.percent()
    await asyncio.sleep(0.5)  # in-flight deliveries and acks
    backlog = first or {"outbox": 0, "consumers": 0}
    report.settle[label] = {"seconds": round(waited, 2), "backlog": backlog, "cpu_percent": cpu}
    if waited > 1.5:
        print(f"  (waited {waited:.1f}s before {label} for a backlog of {backlog['outbox']} unsent events and "
              f"{backlog['consumers']} unapplied deliveries; "
              f"CPU % meanwhile: {fmt_cpu(cpu)})", flush=True)  # fmt: skip
    return waited


@dataclass
class Arrival:
    arrived: float  # wall clock (time.time()) when the subscriber got the message
    ce_time: str  # the event's occurrence time, set by the service with the same clock
    data: bytes


class LagSubscriber:
    """Ordered (ephemeral push) consumer on every `submitted` event, new messages only."""

    def __init__(self, js: JetStreamContext):
        self.js = js
        self.arrivals: list[Arrival] = []
        self.sub: Any = None

    async def start(self) -> None:
        self.sub = await self.js.subscribe(SUBMITTED, stream=STREAM, cb=self._on_message, ordered_consumer=True,
                                           deliver_policy=DeliverPolicy.NEW)  # fmt: skip

    async def _on_message(self, msg: Msg) -> None:
        # Only the timestamp here; parsing waits until the run is over.
        self.arrivals.append(Arrival(time.time(), (msg.headers or {}).get("ce-time", ""), msg.data))

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await self.sub.unsubscribe()


def subscriber_process(nats_url: str, conn: Connection) -> None:
    """Entry point of the subscriber child: its own process, so the load generator cannot delay it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops it, also on Ctrl-C
    uvloop.run(_subscribe(nats_url, conn))


async def _subscribe(nats_url: str, conn: Connection) -> None:
    """ready → (parent sends the number of RPCs acknowledged) → [(arrived, ce-time, delegation name)]."""

    async def quiet(_error: Exception) -> None:  # the parent reports what matters; no tracebacks on shutdown
        pass

    nc = await nats.connect(nats_url, error_cb=quiet, allow_reconnect=False)
    subscriber = LagSubscriber(nc.jetstream())
    try:
        await subscriber.start()
        conn.send("ready")
        expected = await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # blocks a thread, not the loop
        await wait_for_events(subscriber, expected)
    finally:
        await subscriber.stop()
        await nc.drain()
    conn.send(
        [(a.arrived, a.ce_time, events_pb2.DelegationSubmitted.FromString(a.data).delegation.name) for a in subscriber.arrivals]
    )


class SubscriberChild:
    """Starts, talks to and always stops the subscriber process."""

    def __init__(self, nats_url: str):
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked gRPC state
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=subscriber_process, args=(nats_url, child_conn), name="lag-subscriber", daemon=True)

    async def start(self, timeout: float = 60.0) -> int:
        self.process.start()
        if await self._recv(timeout) != "ready":
            raise RuntimeError("the subscriber process did not start")
        assert self.process.pid
        return self.process.pid

    async def collect(self, expected: int, timeout: float = 300.0) -> list[tuple[float, str, str]]:
        self.conn.send(expected)
        return await self._recv(timeout)  # type: ignore[no-any-return]

    async def _recv(self, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.conn.poll, timeout):
            raise TimeoutError("no answer from the subscriber process")
        return self.conn.recv()

    def stop(self, *, collected: bool) -> None:
        """After `collect` the child is leaving by itself; otherwise (an error, Ctrl-C) it is terminated now."""
        if collected:
            self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


@dataclass
class Reply:
    name: str
    replied: float  # wall clock when the reply reached the client
    created: float  # the delegation's create_time (= the event's ce-time), epoch seconds
    latency: float


@dataclass
class OpenLoop:
    sent: int = 0
    skipped: int = 0
    replies: list[Reply] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lateness: list[float] = field(default_factory=list)
    send_window: float = 0.0
    reply_window: float = 0.0


async def open_loop(pool: ChannelPool, cases: list[str], rate: float, seconds: float, cap: int) -> OpenLoop:
    """Sends CreateDelegation on a fixed timetable, never waiting for replies before the next send."""
    stubs = pool.round_robin(delegation_pb2_grpc.DelegationServiceStub)
    case_cycle = itertools.cycle(cases)
    requests = [freeze_request(next(case_cycle)) for _ in range(int(rate * seconds))]  # built beforehand
    result, pending = OpenLoop(), set[asyncio.Task[None]]()
    loop = asyncio.get_running_loop()

    async def send(request: dg.CreateDelegationRequest) -> None:
        began = loop.time()
        try:
            reply = await next(stubs).CreateDelegation(request, metadata=REQUESTING)
        except grpc.aio.AioRpcError as error:
            result.errors[error.code().name] += 1
            return
        created = reply.create_time.seconds + reply.create_time.nanos / 1e9
        result.replies.append(Reply(reply.name, time.time(), created, loop.time() - began))

    start = loop.time() + 0.05
    for i, request in enumerate(requests):
        due = start + i / rate
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        result.lateness.append(loop.time() - due)
        if len(pending) >= cap:
            result.skipped += 1
            continue
        task = loop.create_task(send(request))
        pending.add(task)
        task.add_done_callback(pending.discard)
        result.sent += 1
    result.send_window = loop.time() - start
    if pending:
        await asyncio.wait(pending, timeout=120)
    result.reply_window = loop.time() - start
    return result


async def wait_for_events(subscriber: LagSubscriber, expected: int, idle: float = 5.0, timeout: float = 120.0) -> None:
    """Until `expected` events arrived, or nothing new for `idle` seconds."""
    started = last_change = time.perf_counter()
    seen = -1
    while len(subscriber.arrivals) < expected and time.perf_counter() - started < timeout:
        if len(subscriber.arrivals) != seen:
            seen, last_change = len(subscriber.arrivals), time.perf_counter()
        elif time.perf_counter() - last_change > idle:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # catches duplicates, if any


def ms(values: list[float], q: float) -> float:
    return round(percentile(values, q) * 1e3, 2)


def quarters(pairs: list[tuple[float, float]]) -> list[float]:
    """p99 lag (ms) in each quarter of the run, by event time."""
    pairs = sorted(pairs)
    size = max(1, len(pairs) // 4)
    chunks = [pairs[i : i + size] for i in range(0, len(pairs), size)][:4]
    return [ms(sorted(lag for _, lag in chunk), 0.99) for chunk in chunks]


def summarize_delivery(
    rate: float, seconds: float, run: OpenLoop, arrivals: list[tuple[float, str, str]], cpu: dict[str, float]
) -> DeliveryRun:
    by_name = {r.name: r for r in run.replies}
    names: Counter[str] = Counter()
    lags: list[tuple[float, float]] = []  # (ce-time, lag)
    after_reply: list[float] = []
    other = 0
    for arrived, ce_time, name in arrivals:
        if name not in by_name:
            other += 1
            continue
        names[name] += 1
        if names[name] == 1:
            occurred = parse_time(ce_time).timestamp()
            lags.append((occurred, arrived - occurred))
            after_reply.append(arrived - by_name[name].replied)
    lag_values = sorted(lag for _, lag in lags)
    reply_values = sorted(r.replied - r.created for r in run.replies)
    rpc = sorted(r.latency for r in run.replies)
    return DeliveryRun(
        rate=rate, seconds=seconds, sent=run.sent, acked=len(run.replies), errors=dict(run.errors),
        skipped_over_cap=run.skipped, offered_rate=round(run.sent / run.send_window, 1),
        achieved_rate=round(len(run.replies) / run.reply_window, 1),
        send_lateness_p99_ms=ms(sorted(run.lateness), 0.99), rpc_p50_ms=ms(rpc, 0.5), rpc_p99_ms=ms(rpc, 0.99),
        events_matched=len(names), events_duplicate=sum(names.values()) - len(names), events_other=other,
        lag_p50_ms=ms(lag_values, 0.5), lag_p99_ms=ms(lag_values, 0.99), lag_max_ms=ms(lag_values, 1.0),
        lag_p99_by_quarter_ms=quarters(lags), reply_p50_ms=ms(reply_values, 0.5), reply_p99_ms=ms(reply_values, 0.99),
        event_after_reply_p50_ms=ms(sorted(after_reply), 0.5), event_after_reply_p99_ms=ms(sorted(after_reply), 0.99),
        cpu_percent=cpu,
    )  # fmt: skip


async def delivery_run(
    children: Children, pool: ChannelPool, cases: list[str], rate: float, seconds: float, args: argparse.Namespace,
    report: Report, profile_label: str | None = None,
) -> DeliveryRun:  # fmt: skip
    """One open-loop run with a fresh subscriber process, started after the outbox is empty."""
    assert children.nats
    await settle(children, f"delivery at {rate:g}/s", report)
    subscriber = SubscriberChild(children.nats.url)
    arrivals = None
    try:
        pids = {**children.pids(), "subscriber": await subscriber.start()}
        profiler = await start_profile(children, profile_label, delay=min(5.0, seconds / 4)) if profile_label else None
        meter = CpuMeter(pids)
        run = await open_loop(pool, cases, rate, seconds, args.in_flight_cap)
        cpu = meter.percent()
        arrivals = await subscriber.collect(len(run.replies))
        if profiler:
            report.profiles[profile_label or ""] = await profiler
    finally:
        subscriber.stop(collected=arrivals is not None)
    result = summarize_delivery(rate, seconds, run, arrivals, cpu)
    print_delivery(result)
    return result


def meets_lag_goal(run: DeliveryRun) -> bool:
    return run.sustained and run.all_delivered and run.lag_p99_ms <= LAG_GOAL_MS


def next_rate(last: DeliveryRun) -> float:
    """Just under what an overloaded run achieved, else 20 % lower; multiples of 10."""
    base = min(last.achieved_rate, last.rate) * 0.9 if not last.sustained else last.rate * 0.8
    return max(10.0, 10 * int(base / 10))


async def bench_delivery(
    children: Children, pool: ChannelPool, cases: list[str], args: argparse.Namespace, report: Report
) -> None:
    """`--rate` first; while a run is not sustained or misses the lag goal, lower rates (at most --max-steps)."""
    rate, seconds = args.rate, args.rate_seconds
    for step in range(args.max_steps + 1):
        if step:
            last = report.delivery[-1]
            rate, seconds = next_rate(last), args.step_seconds
            why = "not kept" if not last.sustained else f"p99 lag {last.lag_p99_ms:.0f} ms"
            print(f"  {last.rate:g}/s {why}: trying {rate:g}/s for {seconds:g}s", flush=True)
        label = f"delivery at {rate:g}/s" if args.profile else None
        run = await delivery_run(children, pool, cases, rate, seconds, args, report, label)
        report.delivery.append(run)
        if meets_lag_goal(run) or rate <= 10:
            return


def best_rates(runs: list[DeliveryRun]) -> dict[str, float | None]:
    """The highest rate kept (every event delivered), and the highest that also met the lag goal."""
    kept = [r.rate for r in runs if r.sustained and r.all_delivered]
    within = [r.rate for r in runs if meets_lag_goal(r)]
    return {"highest_sustained_rate": max(kept, default=None), "highest_rate_within_lag_goal": max(within, default=None)}


# ---------------------------------------------------------------- py-spy


async def start_profile(children: Children, label: str, delay: float, seconds: float = 5.0) -> asyncio.Task[dict[str, Any]]:
    """Starts py-spy on the delegation service `delay` seconds from now; the task gives its summary.

    Forked here, before the load starts (a fork mid-run stalls this event loop); a shell sleeps the delay.
    """
    assert children.delegation and children.delegation.process
    pid = children.delegation.process.pid
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    slug = "".join(ch if ch.isalnum() else "-" for ch in label)
    out = RESULTS_DIR / f"delegation-pyspy-{slug}-{datetime.now():%Y%m%d-%H%M%S}.txt"
    record = f"{PYSPY} record -p {pid} -d {seconds:g} -r 200 -f raw -o {out} --nonblocking --threads"
    process = await asyncio.create_subprocess_exec(
        "sh", "-c", f"sleep {delay:.2f}; exec {record}", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    return asyncio.create_task(finish_profile(process, out, pid, seconds))


async def finish_profile(process: asyncio.subprocess.Process, out: Path, pid: int, seconds: float) -> dict[str, Any]:
    try:
        _, stderr = await process.communicate()
    finally:
        if process.returncode is None:  # cancelled (Ctrl-C): do not leave py-spy attached
            process.kill()
            await process.wait()
    if not out.exists():
        return {"error": stderr.decode(errors="replace")[-500:]}
    return summarize_profile(out, pid, seconds * 200)


# Substrings of a frame (function + file) that put a sample into a group; first match per group.
PROFILE_GROUPS = {
    "gRPC handler chain (servicer + handlers)": ("services/delegation/servicer.py", "services/plumbing/rpc.py"),
    "delegation handlers (domain + store)": ("services/delegation/handlers.py",),
    "SQLAlchemy": ("sqlalchemy/",),
    "aiosqlite / sqlite3": ("aiosqlite/", "sqlite3/"),
    "protobuf (codec, messages)": ("services/delegation/codec.py", "services/delegation/messages.py", "google/protobuf"),
    "deadlines / calendar": ("delegation/deadlines.py", "delegation/calendar.py", "services/delegation/schedule.py"),
    "OpenTelemetry": ("opentelemetry/",),
    "outbox relay": ("services/plumbing/relay.py",),
    "event consumers (case replica, turnaround projection)": ("services/plumbing/consumer.py",),
    "  of which turnaround projection": ("services/delegation/turnaround.py",),
    "nats client": ("nats/aio/", "nats/js/"),
}


PROJECT_PACKAGES = ("services/", "delegation/", "registry/")
ENTRY_FRAMES = ("<module> (", "main (", "run_service (")  # the whole main thread: no information


def summarize_profile(path: Path, pid: int, samples_possible: float) -> dict[str, Any]:
    """Samples per thread, per group (inclusive) and the top own-time frames, from py-spy's raw output."""
    threads: Counter[str] = Counter()
    groups: Counter[str] = Counter()
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()  # project functions, with everything they call
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count, frames = int(count_text), stack.split(";")
        total += count
        threads["main (event loop)" if frames[0].startswith(f"thread ({pid})") else frames[0]] += count
        for function in {f.rsplit(":", 1)[0] + ")" for f in frames if any(f"({p}" in f for p in PROJECT_PACKAGES)}:
            if not function.startswith(ENTRY_FRAMES):
                inclusive[function] += count
        for group, needles in PROFILE_GROUPS.items():
            if any(n in f for f in frames for n in needles):
                groups[group] += count
        own[frames[-1]] += count

    def share(c: int) -> float:
        return round(100 * c / total, 1) if total else 0.0

    return {
        "file": str(path),
        "samples": total,
        "cores_busy": round(total / samples_possible, 2),  # samples of running threads / sampling slots
        "threads_percent": {t: share(c) for t, c in threads.most_common(6)},
        "groups_percent_inclusive": {g: share(c) for g, c in groups.most_common()},
        "top_own_percent": {f: share(c) for f, c in own.most_common(12)},
        "project_inclusive_percent": {f: share(c) for f, c in inclusive.most_common(25)},
    }


# ---------------------------------------------------------------- goals and report


def find(report: Report, workload: str) -> Measurement | None:
    return next((m for m in report.measurements if m.workload == workload), None)


def verdict(label: str, value: float, goal: float, at_least: bool, unit: str = "") -> dict[str, Any]:
    passed = value >= goal if at_least else value <= goal
    return {"label": label, "value": round(value, 3), "goal": f"{'>=' if at_least else '<='} {goal:g}{unit}", "pass": passed}


def closed_loop_verdicts(report: Report, args: argparse.Namespace, rung: str | None = None) -> list[dict[str, Any]]:
    """Throughput and latency goals against echo; with `rung`, for that floor server's calls."""
    verdicts = []
    create_name, life_name = floor_name(CREATE, rung), floor_name(LIFECYCLE, rung)
    echo, create, life = find(report, ECHO), find(report, create_name), find(report, life_name)
    c = args.concurrency
    if echo and create:  # issue 18, point 4: the goals restated on what was measured
        verdicts.append(verdict(f"{create_name} / echo throughput @{c}", create.median.rps / echo.median.rps, 0.25, True))
        verdicts.append(verdict(f"{create_name} / echo p99 latency @{c}", create.median.p99_ms / echo.median.p99_ms, 4.0, False))
    if create and not rung and (cpu := create.median.server_cpu_ms_per_call):
        verdicts.append(verdict(f"{create_name} request-process CPU @{c} (ms/call)", cpu, 1.5, False, " ms"))
        if stack := create.median.stack_cpu_ms_per_call:
            verdicts.append(verdict(f"{create_name} whole-stack CPU @{c} (ms/call)", stack, 3.0, False, " ms"))
    if echo and life:
        verdicts.append(verdict(f"{life_name} calls/s / echo throughput @{c}", 3 * life.median.rps / echo.median.rps, 0.30, True))
    return verdicts


def evaluate_goals(report: Report, args: argparse.Namespace) -> list[dict[str, Any]]:
    verdicts = closed_loop_verdicts(report, args)
    if report.delivery:
        d = report.delivery[0]
        verdicts.append(verdict(f"{d.rate:g}/s sustained (achieved / offered rate)", d.achieved_rate / d.rate, 0.97, True))
        verdicts.append(verdict(f"events received == RPCs acknowledged ({d.events_matched}/{d.acked})",
                                float(d.all_delivered), 1.0, True))  # fmt: skip
        verdicts.append(verdict(f"commit -> subscriber p99 lag @{d.rate:g}/s (ms)", d.lag_p99_ms, LAG_GOAL_MS, False, " ms"))
    return verdicts


def fmt_cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {value:.0f}" for name, value in cpu.items())


def print_delivery(d: DeliveryRun) -> None:
    state = "sustained" if d.sustained else "NOT sustained"
    print(f"  open loop {d.rate:g}/s x {d.seconds:g}s: sent {d.sent}, acked {d.acked}, errors {d.errors or 0}, "
          f"skipped {d.skipped_over_cap}; offered {d.offered_rate:.0f}/s, achieved {d.achieved_rate:.0f}/s ({state}); "
          f"send lateness p99 {d.send_lateness_p99_ms:.1f} ms", flush=True)  # fmt: skip
    print(f"    RPC p50 {d.rpc_p50_ms:.1f} / p99 {d.rpc_p99_ms:.1f} ms; events {d.events_matched} matched, "
          f"{d.events_duplicate} duplicate, {d.events_other} other", flush=True)  # fmt: skip
    print(f"    ce-time -> subscriber: p50 {d.lag_p50_ms:.1f}  p99 {d.lag_p99_ms:.1f}  max {d.lag_max_ms:.1f} ms; "
          f"p99 per quarter {d.lag_p99_by_quarter_ms}", flush=True)  # fmt: skip
    print(f"    ce-time -> RPC reply p50 {d.reply_p50_ms:.1f} / p99 {d.reply_p99_ms:.1f} ms; reply -> event "
          f"p50 {d.event_after_reply_p50_ms:.1f} / p99 {d.event_after_reply_p99_ms:.1f} ms", flush=True)  # fmt: skip
    print(f"    CPU % of a core: {fmt_cpu(d.cpu_percent)}", flush=True)


def print_report(report: Report) -> None:
    print(f"\n{'workload':<27}{'RPC/s':>9}{'calls/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}   rounds /s")
    for m in report.measurements:
        r, calls = m.median, m.median.rps * (3 if m.workload.startswith(LIFECYCLE) else 1)
        rounds = " ".join(f"{x.rps:.0f}" for x in m.rounds)
        noisy = "  (noisy: rounds differ > 30%)" if max(x.rps for x in m.rounds) > 1.3 * min(x.rps for x in m.rounds) else ""
        print(f"{m.workload:<27}{r.rps:>9.0f}{calls:>9.0f}{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}{sum(x.errors for x in m.rounds):>8}   {rounds}{noisy}")  # fmt: skip
    for j in report.jetstream:
        print(f"{'js.publish @' + str(j['in_flight']):<18}{j['msgs_per_s']:>9.0f} msg/s  rounds {j['rounds']}")
    for d in report.delivery:
        print(f"delivery {d.rate:>5g}/s  achieved {d.achieved_rate:.0f}/s, lag p50 {d.lag_p50_ms:.1f} p99 {d.lag_p99_ms:.1f} "
              f"max {d.lag_max_ms:.1f} ms, events {d.events_matched}/{d.acked} acked")  # fmt: skip
    if report.delivery:
        best = {k: "none" if v is None else f"{v:g}/s" for k, v in best_rates(report.delivery).items()}
        print(f"highest rate sustained: {best['highest_sustained_rate']}; highest within the {LAG_GOAL_MS:g} ms p99 lag "
              f"goal: {best['highest_rate_within_lag_goal']} (of the rates tried)")  # fmt: skip
    if report.verdicts:
        print()
    for v in report.verdicts:
        print(f"{v['label']:<52} {v['value']:8.2f}  (goal {v['goal']})  {'PASS' if v['pass'] else 'FAIL'}")
    if report.floor_verdicts:
        print("\nthe same ratios with no work behind the contract (a ceiling for the service, not its result):")
    for v in report.floor_verdicts:
        print(f"{v['label']:<52} {v['value']:8.2f}  (goal {v['goal']})  {'within reach' if v['pass'] else 'OUT OF REACH'}")
    for label, p in report.profiles.items():
        print(f"\npy-spy, delegation service during {label} ({p.get('cores_busy')} cores busy): {p.get('file', p.get('error'))}")
        for key in ("threads_percent", "groups_percent_inclusive", "top_own_percent", "project_inclusive_percent"):
            print(f"  {key}:")
            for name, value in p.get(key, {}).items():
                print(f"    {value:5.1f}  {name}")
    for name, tail in report.log_tails.items():
        print(f"\n--- {name} log tail ---\n{tail}")


def save(args: argparse.Namespace, report: Report) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"delegation-{datetime.now():%Y%m%d-%H%M%S}.json"
    document = {
        "finished": datetime.now().astimezone().isoformat(timespec="seconds"),
        "options": vars(args),
        "environment": report.environment,
        "measurements": [m.to_json() for m in report.measurements],
        "cpu_percent": report.cpu_percent,
        "jetstream_publish": report.jetstream,
        "delivery": [{**asdict(d), "sustained": d.sustained, "all_delivered": d.all_delivered} for d in report.delivery],
        "delivery_best_rates": best_rates(report.delivery),
        "goals": report.verdicts,
        "floor_goals": report.floor_verdicts,
        "settle": report.settle,
        "profiles": report.profiles,
        "log_tails": report.log_tails,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


# ---------------------------------------------------------------- entry point


async def bench_service(children: Children, args: argparse.Namespace, report: Report) -> None:
    assert children.registry and children.delegation and children.nats
    began = time.perf_counter()
    cases = await register_cases(children.registry.address, args.cases)
    pool = ChannelPool(children.delegation.address, args.channels)
    try:
        await pool.ready()
        workload = DelegationWorkload(pool, cases)
        lag = await until_replicated(workload, cases[-1])
        print(
            f"  {len(cases)} cases registered; replicated {lag:.2f}s after the last ({time.perf_counter() - began:.1f}s)",
            flush=True,
        )
        if children.floors:
            await bench_floors(children, cases, workload, args, report)
        if "create" in args.phases:
            await settle(children, CREATE, report)
            profiler = await start_profile(children, "create", delay=args.warmup + 0.5) if args.profile else None  # 1st round
            await measure_and_print(CREATE, workload.create, args, report, children.pids(), stack_pids=children.stack_pids())
            if profiler:
                report.profiles["CreateDelegation"] = await profiler
        if "lifecycle" in args.phases:
            await settle(children, LIFECYCLE, report)
            await measure_and_print(
                LIFECYCLE, workload.lifecycle, args, report, children.pids(), stack_pids=children.stack_pids()
            )
        if "jetstream" in args.phases:
            await settle(children, "js.publish", report)
            report.jetstream = await bench_jetstream(children.nats.url, workload.reply_size or 1200, args)
        if "delivery" in args.phases:
            await bench_delivery(children, pool, cases, args, report)
    finally:
        await pool.close()


async def bench_floors(
    children: Children, cases: list[str], service: DelegationWorkload, args: argparse.Namespace, report: Report
) -> None:
    """CreateDelegation and lifecycles against the floor servers, which answer a real reply of the service."""
    assert children.floor_reply
    reply = await next(service.stubs).CreateDelegation(freeze_request(cases[0]), metadata=REQUESTING)
    children.floor_reply.write_bytes(reply.SerializeToString())
    for rung, floor in children.floors.items():
        pool = ChannelPool(floor.address, args.channels)
        try:
            await pool.ready()
            workload = DelegationWorkload(pool, cases)  # the same client building the same requests
            server = f"floor-{rung}"
            if "create" in args.phases:
                await measure_and_print(floor_name(CREATE, rung), workload.create, args, report, children.pids(), server)
            if "lifecycle" in args.phases:
                await measure_and_print(floor_name(LIFECYCLE, rung), workload.lifecycle, args, report, children.pids(), server)
        finally:
            await pool.close()


async def run(children: Children, args: argparse.Namespace, report: Report) -> None:
    """Fills `report` as it goes, so an interrupted run still shows what it measured."""
    current = asyncio.current_task()
    assert current is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)  # SIGTERM cleans up like Ctrl-C
    if "echo" in args.phases:
        assert children.echo
        pool = ChannelPool(children.echo.address, args.channels)
        try:
            await pool.ready()
            await measure_and_print(ECHO, echo_call(pool), args, report, children.pids(), server="echo")
        finally:
            await pool.close()
    await bench_service(children, args, report)


def log_tails(children: Children) -> dict[str, str]:
    return {c.name: c.log_tail() for c in (children.delegation, children.registry, children.echo) if c}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = Report(environment())
    print(f"{os.cpu_count()} CPUs, load {report.environment['loadavg_1m_at_start']:.2f}; {args.rounds} x {args.duration:g}s "
          f"rounds after {args.warmup:g}s warm-up; {args.concurrency} in flight; {args.channels} channels; "
          f"delivery at {args.rate:g}/s for {args.rate_seconds:g}s", flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="rogatory-bench-") as tmp, contextlib.ExitStack() as stack:
        children = start_children(Path(tmp), stack, floors=args.floors)
        print(f"  children: {children.pids()}", flush=True)
        try:
            uvloop.run(run(children, args, report))
        except (KeyboardInterrupt, asyncio.CancelledError):
            print_report(report)
            print("\ninterrupted; stopping the child processes", file=sys.stderr)
            return 130
        except Exception:
            print_report(report)
            print("\n".join(f"--- {k} log tail ---\n{v}" for k, v in log_tails(children).items()), file=sys.stderr)
            raise
        if report.had_errors:
            report.log_tails = log_tails(children)  # read before the temp dir goes
    report.verdicts = evaluate_goals(report, args)
    report.floor_verdicts = [v for rung in children.floors for v in closed_loop_verdicts(report, args, rung)]
    print_report(report)
    if not args.no_save:
        print(f"\nwrote {save(args, report)}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
