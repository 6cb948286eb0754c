"""Mixed-workload load test of the whole stack, with raw gRPC echo and raw JetStream as references.

    .venv/bin/python -m bench.bench_load [--minutes 5] [--database-url postgresql+asyncpg://...]
                                         [--rates getcourt=20,getcase=20,...]

Starts an echo server, an embedded nats-server, the three services (SQLite in a temp dir, or
PostgreSQL with a schema prefix of its own, dropped afterwards), the simulated agencies and a
subscriber process (bench/load_children.py), measures the references (echo closed loop and at
the mix's rate, js.publish), then runs the mix open loop for `--minutes`: registry reads,
CreateCase, delegations through their whole life (some returned for supplement), assistance
notices answered by the agencies, property queries answered by the simulated agencies and
vehicle controls seized by the simulated traffic police, while the subscribers time every
event from its `ce-time`. Prints and writes bench/results/load-<timestamp>.json; exits 1 on
any error, lost flow or a service above the RSS goal. See bench/README.md.
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
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import nats
import uvloop
from google.protobuf.duration_pb2 import Duration
from google.type import money_pb2
from nats.js.api import StorageType, StreamConfig
from rogatory.assistance.v1 import assistance_pb2_grpc, property_query_pb2, property_query_pb2_grpc, vehicle_control_pb2_grpc
from rogatory.assistance.v1 import vehicle_control_pb2 as vc
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as rg
from rogatory.registry.v1 import registry_pb2_grpc

from bench.echo_server import METHOD as ECHO_METHOD
from bench.load import ChannelPool, percentile, run_round
from bench.load_children import (
    REFERENCE_AUDIENCE,
    REFERENCE_STREAM,
    REFERENCE_SUBJECT,
    agencies_process,
    subscribers_process,
)
from bench.processes import ChildProcess, environment, start_worker
from services.assistance.notice_examples import freeze_request as notice_freeze
from services.assistance.notice_examples import query_request as notice_query
from services.assistance.notice_examples import seal_request as notice_seal
from services.plumbing.auth import dev_credentials
from services.plumbing.events import envelope_headers
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.tools.demo import freeze_request as delegation_freeze

STREAM = "ROGATORY"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SERVICES = ("registry", "delegation", "assistance")
WORKERS = ("audit", "turnaround")  # started beside the services, as `make run` does
RSS_GOAL_MB = 150.0
JS_BENCH_STREAM, JS_BENCH_SUBJECT = "BENCHJS", "bench.js.publish"

GD, HA, ZJ = "gd0112", "ha0122", "zj0326"
REQUESTING, ENTRUSTED, ZJ_COURT = dev_credentials("court", GD), dev_credentials("court", HA), dev_credentials("court", ZJ)
DEBTOR = "张三"  # the respondent of every case registered here
OFFICER = dg.Officer(display_name="李法官", phone="0371-62171234")
RULING = dg.Attachment(kind=dg.Attachment.RULING, name="执行裁定书.pdf", size_bytes=48_213, sha256="12" * 32)
RECEIPT = dg.Attachment(kind=dg.Attachment.ASSISTANCE_RECEIPT, name="协助冻结回执.pdf", size_bytes=4096, sha256="ef" * 32)
COMPLETION = dg.Completion(outcome=dg.Completion.EXECUTED, amount_fen=700_000_000, result_documents=[RECEIPT])
MISSING_RULING = dg.SupplementRequest(reason=dg.SupplementRequest.MISSING_RULING, missing_items=["执行裁定书"])

#: Open-loop starts per second of each flow; found by trying on this 2-core box (bench/README.md).
DEFAULT_RATES = {
    "getcourt": 20.0,  # GetCourt
    "getcase": 20.0,  # GetCase
    "listcases": 4.0,  # ListCases (page of 20)
    "createcase": 4.0,  # CreateCase
    "delegation": 3.0,  # create → acknowledge → start → [return for supplement → supplement] → complete
    "notice": 3.0,  # CreateAssistanceNotice; the agency acknowledges and answers (2 agency RPCs)
    "query": 0.5,  # CreatePropertyQuery to 11 simulated agencies, until completed
    "vehicle": 0.5,  # CreateVehicleControl; the traffic police report sighting and seizure (2 agency RPCs)
    # References measured during the mix, under the same contention (not counted in the totals):
    "echo": 10.0,  # raw grpc.aio echo, payload as long as a CreateDelegation request
    "jspublish": 10.0,  # raw js.publish (ce-time header) to a stream of its own, timed by the same subscriber
}
REFERENCE_FLOWS = ("echo", "jspublish")
ECHO_IN_MIX, JS_IN_MIX = "echo (reference)", "js.publish (reference)"
#: RPCs one start of a flow makes from the benchmark (courts) and from the simulated agencies.
COURT_RPCS_PER_START = {"delegation": 5.0, "notice": 1.0, "query": 1.0, "vehicle": 1.0, "echo": 0.0, "jspublish": 0.0}
AGENCY_RPCS_PER_START = {"notice": 2.0, "vehicle": 2.0}


# ---------------------------------------------------------------- options


def parse_rates(text: str) -> dict[str, float]:
    rates = dict(DEFAULT_RATES)
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in rates:
            raise argparse.ArgumentTypeError(f"unknown flow {key!r}; flows: {', '.join(rates)}")
        rates[key] = float(value)
    return rates


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Mixed-workload load test of the whole stack")
    p.add_argument("--minutes", type=float, default=5.0, help="length of the mixed load (default 5)")
    p.add_argument("--rates", type=parse_rates, default=dict(DEFAULT_RATES),
                   help="flow=starts/s,... overriding " + ",".join(f"{k}={v:g}" for k, v in DEFAULT_RATES.items()))  # fmt: skip
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every rate (default 1)")
    p.add_argument("--supplement-every", type=int, default=5, help="every Nth delegation is returned for supplement (default 5)")
    p.add_argument("--database-url", default="", help="PostgreSQL (postgresql+asyncpg://...); default SQLite in a temp dir")
    p.add_argument("--cases", type=int, default=64, help="cases registered per court before the load (default 64)")
    p.add_argument("--channels", type=int, default=2, help="client channels per service (default 2)")
    p.add_argument("--in-flight-cap", type=int, default=500, help="a start due while this many of its flow run is skipped")
    p.add_argument("--drain-seconds", type=float, default=60.0, help="after the load: wait for flows to end (default 60)")
    p.add_argument("--reference-seconds", type=float, default=5.0, help="seconds per reference measurement (default 5)")
    p.add_argument("--no-save", action="store_true", help="do not write the JSON result")
    args = p.parse_args(argv)
    args.rates = {k: v * args.scale for k, v in args.rates.items()}
    return args


# ---------------------------------------------------------------- child processes


@dataclass
class Children:
    tmp: Path
    echo: ChildProcess | None = None
    nats: EmbeddedNatsServer | None = None
    services: dict[str, ChildProcess] = field(default_factory=dict)
    workers: dict[str, ChildProcess] = field(default_factory=dict)  # the audit appender, the turnaround projector
    helpers: dict[str, multiprocessing.process.BaseProcess] = field(default_factory=dict)

    def pids(self) -> dict[str, int]:
        pids = {name: c.process.pid for name, c in {**self.services, **self.workers}.items() if c.process}
        if self.nats and self.nats.process:
            pids["nats-server"] = self.nats.process.pid
        pids.update({name: p.pid for name, p in self.helpers.items() if p.pid})
        return {**pids, "bench client": os.getpid()}


def start_children(tmp: Path, args: argparse.Namespace, stack: contextlib.ExitStack) -> Children:
    """Every stop is registered before its start, so a failure or Ctrl-C at any point cleans up."""
    c = Children(tmp)
    c.echo = ChildProcess("echo", "bench.echo_server", ["--addr", f"127.0.0.1:{free_port()}"], {}, tmp)
    stack.callback(c.echo.stop)
    c.echo.start()
    c.nats = EmbeddedNatsServer(tmp / "jetstream")
    stack.callback(c.nats.stop)  # registered before the services, so stopped after them
    c.nats.start()
    common = {"NATS_URL": c.nats.url, "ROGATORY_DATA_DIR": str(tmp / "data"), "ROGATORY_STREAM": STREAM}
    if args.database_url:
        common.update(DATABASE_URL=args.database_url, ROGATORY_DB_SCHEMA_PREFIX=args.schema_prefix)
    for service in SERVICES:
        env = {**common, f"{service.upper()}_ADDR": f"127.0.0.1:{free_port()}"}
        child = ChildProcess(service, f"services.{service}.main", [], env, tmp)
        stack.callback(child.stop)
        child.start()
        c.services[service] = child
    for worker in WORKERS:
        c.workers[worker] = start_worker(worker, common, tmp, stack)
    return c


class Helper:
    """A spawned helper process (bench/load_children.py): ready → … → stop → its results."""

    def __init__(self, name: str, target: Callable[..., None], nats_url: str, assistance: str):
        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked gRPC state
        self.name = name
        self.conn, child_conn = ctx.Pipe()
        self.process = ctx.Process(target=target, args=(nats_url, assistance, child_conn), name=name, daemon=True)

    async def start(self, timeout: float = 60.0) -> Helper:
        self.process.start()
        if await self._recv(timeout) != "ready":
            raise RuntimeError(f"{self.name} did not start")
        return self

    async def finish(self, timeout: float = 120.0) -> Any:
        self.conn.send("stop")
        return await self._recv(timeout)

    async def _recv(self, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.conn.poll, timeout):
            raise TimeoutError(f"no answer from {self.name}")
        return self.conn.recv()

    def stop(self) -> None:
        self.process.join(5)
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(5)


async def drop_schemas(url: str, prefix: str) -> None:
    """Drops the schemas this run created on PostgreSQL (every service's, by prefix)."""
    from sqlalchemy import text  # noqa: PLC0415
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415

    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            rows = await conn.execute(
                text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"), {"p": f"{prefix}%"}
            )
            for (schema,) in rows.all():
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        await engine.dispose()


# ---------------------------------------------------------------- /proc: CPU and memory


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) and VmRSS, in MB."""
    values: dict[str, float] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                values[key] = round(int(rest.split()[0]) / 1024, 1)
    return values


class CpuMeter:
    """CPU % of one core per process since creation."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.start = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.began = time.perf_counter()

    def percent(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.began
        return {n: round(100 * (cpu_seconds(pid) - self.start[n]) / elapsed, 1) for n, pid in self.pids.items()}


# ---------------------------------------------------------------- requests


def case_request(court: str, code: str, n: int) -> rg.CreateCaseRequest:
    return rg.CreateCaseRequest(
        parent=f"courts/{court}",
        request_id=str(uuid.uuid4()),
        case=rg.Case(
            case_number=f"（2024）{code}执{n}号",
            parties=[
                rg.Party(
                    role=rg.Party.APPLICANT,
                    kind=rg.Party.ORGANIZATION,
                    display_name="某市农村商业银行股份有限公司",
                    id_number="91330326MA2H4B1C05",
                ),  # fmt: skip
                rg.Party(role=rg.Party.RESPONDENT, kind=rg.Party.PERSON, display_name=DEBTOR, id_number="11010519491231002X"),
            ],
            amount_owed=money_pb2.Money(currency_code="CNY", units=125_000 + n, nanos=500_000_000),
            description="借款合同纠纷",
        ),
    )


def notice_request(i: int, case: str) -> Any:
    """A deposit query or a freeze at bank-icbc, or a seal at re-440100, each on an asset of its own."""
    if i % 3 == 0:
        return notice_query(GD, case, DEBTOR)
    if i % 3 == 1:
        request = notice_freeze(GD, case, DEBTOR, amount_fen=100_000 + i)
        request.assistance_notice.target_details.deposit_account.account_number = f"62220210{i:011d}"
        return request
    return notice_seal(GD, case, DEBTOR, "re-440100", certificate_number=f"粤(2024)广州市不动产权第{i:07d}号")


def query_request(case: str) -> property_query_pb2.CreatePropertyQueryRequest:
    query = property_query_pb2.PropertyQuery(
        case=case, debtor=DEBTOR, categories=[property_query_pb2.DEPOSITS, property_query_pb2.ONLINE_FUNDS],
        response_window=Duration(seconds=60),
    )  # fmt: skip
    return property_query_pb2.CreatePropertyQueryRequest(
        parent=f"courts/{GD}", property_query=query, request_id=str(uuid.uuid4())
    )


def vehicle_request(i: int, case: str) -> vc.CreateVehicleControlRequest:
    control = vc.VehicleControl(
        case=case, debtor=DEBTOR, vehicle=vc.ControlledVehicle(plate=f"浙C{i:05d}", description="黑色轿车")
    )
    return vc.CreateVehicleControlRequest(parent=f"courts/{ZJ}", vehicle_control=control, request_id=str(uuid.uuid4()))


# ---------------------------------------------------------------- the open-loop mix


@dataclass
class Recorder:
    """Every call's latency by RPC, errors by RPC and code, flows started and ended."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: dict[str, str] = field(default_factory=dict)
    started: Counter[str] = field(default_factory=Counter)
    completed: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    lateness: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    waiting: dict[str, dict[str, float]] = field(default_factory=lambda: defaultdict(dict))  # flow → name → sent (wall)

    async def call(self, rpc: str, make: Callable[[], Awaitable[Any]]) -> Any:
        began = time.perf_counter()
        try:
            reply = await make()
        except grpc.aio.AioRpcError as error:
            key = f"{rpc} {error.code().name}"
            self.errors[key] += 1
            self.first_errors.setdefault(key, error.details() or "")
            return None
        self.latencies[rpc].append(time.perf_counter() - began)
        return reply


class Mix:
    """The flows of the mixed workload, each started on its own timetable (open loop)."""

    def __init__(
        self, channels: dict[str, ChannelPool], js: Any, gd_cases: list[str], zj_cases: list[str], args: argparse.Namespace
    ):
        self.echo_methods = channels["echo"].round_robin(lambda channel: channel.unary_unary(ECHO_METHOD))
        self.echo_payload = os.urandom(delegation_freeze("courts/gd0112/cases/01JBENCHMARK0000000000000").ByteSize())
        self.js = js
        self.registry = channels["registry"].round_robin(registry_pb2_grpc.RegistryServiceStub)
        self.delegation = channels["delegation"].round_robin(delegation_pb2_grpc.DelegationServiceStub)
        self.notices = channels["assistance"].round_robin(assistance_pb2_grpc.AssistanceServiceStub)
        self.queries = channels["assistance"].round_robin(property_query_pb2_grpc.PropertyQueryServiceStub)
        self.vehicles = channels["assistance"].round_robin(vehicle_control_pb2_grpc.VehicleControlServiceStub)
        self.gd_cases, self.zj_cases = gd_cases, zj_cases
        self.all_cases = list(gd_cases)
        self.case_numbers = itertools.count(args.cases + 1)
        self.supplement_every = args.supplement_every
        self.rec = Recorder()
        self.flows: dict[str, Callable[[int], Awaitable[None]]] = {
            "getcourt": self.get_court, "getcase": self.get_case, "listcases": self.list_cases,
            "createcase": self.create_case, "delegation": self.delegation_life, "notice": self.notice,
            "query": self.property_query, "vehicle": self.vehicle_control, "echo": self.echo, "jspublish": self.js_publish,
        }  # fmt: skip

    def pick(self, cases: list[str], i: int) -> str:
        return cases[i % len(cases)]

    async def get_court(self, i: int) -> None:
        court = ("courts/gd0112", "courts/ha0122", "courts/zj0326")[i % 3]
        await self.rec.call("GetCourt", lambda: next(self.registry).GetCourt(rg.GetCourtRequest(name=court), metadata=REQUESTING))

    async def get_case(self, i: int) -> None:
        name = self.pick(self.all_cases, i * 7)
        await self.rec.call("GetCase", lambda: next(self.registry).GetCase(rg.GetCaseRequest(name=name), metadata=REQUESTING))

    async def list_cases(self, _i: int) -> None:
        request = rg.ListCasesRequest(parent=f"courts/{GD}", page_size=20)
        await self.rec.call("ListCases", lambda: next(self.registry).ListCases(request, metadata=REQUESTING))

    async def create_case(self, _i: int) -> None:
        request = case_request(GD, "粤0112", next(self.case_numbers))
        case = await self.rec.call("CreateCase", lambda: next(self.registry).CreateCase(request, metadata=REQUESTING))
        if case is not None:
            self.all_cases.append(case.name)  # read by GetCase; new cases carry no other flow (replication is async)

    async def delegation_life(self, i: int) -> bool:
        """create → acknowledge → start → [return for supplement → supplement] → complete, each with the last etag."""
        stub, call = next(self.delegation), self.rec.call
        d = await call("CreateDelegation", lambda: stub.CreateDelegation(delegation_freeze(self.pick(self.gd_cases, i)),
                                                                         metadata=REQUESTING))  # fmt: skip
        if d is None:
            return False
        ack = dg.AcknowledgeDelegationRequest(name=d.name, officer=OFFICER, etag=d.etag)
        if (d := await call("AcknowledgeDelegation", lambda: stub.AcknowledgeDelegation(ack, metadata=ENTRUSTED))) is None:
            return False
        start = dg.StartDelegationRequest(name=d.name, etag=d.etag)
        if (d := await call("StartDelegation", lambda: stub.StartDelegation(start, metadata=ENTRUSTED))) is None:
            return False
        if self.supplement_every and i % self.supplement_every == self.supplement_every - 1:
            back = dg.ReturnDelegationForSupplementRequest(name=d.name, supplement_request=MISSING_RULING, etag=d.etag)
            if (d := await call("ReturnDelegationForSupplement",
                                lambda: stub.ReturnDelegationForSupplement(back, metadata=ENTRUSTED))) is None:  # fmt: skip
                return False
            more = dg.SupplementDelegationRequest(name=d.name, attachments=[RULING], note="补充执行裁定书", etag=d.etag)
            if (d := await call("SupplementDelegation", lambda: stub.SupplementDelegation(more, metadata=REQUESTING))) is None:
                return False
        done = dg.CompleteDelegationRequest(name=d.name, completion=COMPLETION, etag=d.etag)
        return await call("CompleteDelegation", lambda: stub.CompleteDelegation(done, metadata=ENTRUSTED)) is not None

    async def notice(self, i: int) -> None:
        request = notice_request(i, self.pick(self.gd_cases, i))
        sent = time.time()
        n = await self.rec.call("CreateAssistanceNotice", lambda: next(self.notices).CreateAssistanceNotice(request,
                                                                                                            metadata=REQUESTING))  # fmt: skip
        if n is not None:
            self.rec.waiting["notice"][n.name] = sent

    async def property_query(self, i: int) -> None:
        request = query_request(self.pick(self.gd_cases, i))
        sent = time.time()
        q = await self.rec.call(
            "CreatePropertyQuery", lambda: next(self.queries).CreatePropertyQuery(request, metadata=REQUESTING)
        )
        if q is not None:
            self.rec.waiting["query"][q.name] = sent

    async def vehicle_control(self, i: int) -> None:
        request = vehicle_request(i, self.pick(self.zj_cases, i))
        sent = time.time()
        v = await self.rec.call("CreateVehicleControl", lambda: next(self.vehicles).CreateVehicleControl(request,
                                                                                                         metadata=ZJ_COURT))  # fmt: skip
        if v is not None:
            self.rec.waiting["vehicle"][v.name] = sent

    async def echo(self, _i: int) -> None:
        await self.rec.call(ECHO_IN_MIX, lambda: next(self.echo_methods)(self.echo_payload))

    async def js_publish(self, _i: int) -> None:
        """Raw JetStream: the headers a service's relay sets, published and acked, then timed by the subscriber."""
        event_id = uuid.uuid4().hex
        headers = envelope_headers(event_id=event_id, event_type="bench.reference.v1", occurred_at=datetime.now(UTC),
                                   source="bench", traceparent="", tracestate="")  # fmt: skip
        began = time.perf_counter()
        try:
            await self.js.publish(REFERENCE_SUBJECT, self.echo_payload, stream=REFERENCE_STREAM, headers=headers)
        except Exception as error:  # noqa: BLE001 - counted like an RPC error
            self.rec.errors[f"{JS_IN_MIX} {type(error).__name__}"] += 1
            return
        self.rec.latencies[JS_IN_MIX].append(time.perf_counter() - began)

    async def run(self, rates: dict[str, float], seconds: float, cap: int) -> tuple[float, set[asyncio.Task[Any]]]:
        """Starts every flow on its timetable (`start + i / rate`) for `seconds`; returns the send window and
        the flows still running."""
        loop = asyncio.get_running_loop()
        pending: dict[str, set[asyncio.Task[Any]]] = {flow: set() for flow in rates}
        start = loop.time() + 0.05

        async def timetable(flow: str, rate: float) -> None:
            fire = self.flows[flow]
            for i in itertools.count():
                due = start + i / rate
                if due - start >= seconds:
                    return
                if (wait := due - loop.time()) > 0:
                    await asyncio.sleep(wait)
                self.rec.lateness[flow].append(loop.time() - due)
                if len(pending[flow]) >= cap:
                    self.rec.skipped[flow] += 1
                    continue
                self.rec.started[flow] += 1
                task = loop.create_task(self._counted(flow, fire(i)))
                pending[flow].add(task)
                task.add_done_callback(pending[flow].discard)

        await asyncio.gather(*(timetable(flow, rate) for flow, rate in rates.items() if rate > 0))
        return loop.time() - start, set().union(*pending.values())

    async def _counted(self, flow: str, body: Awaitable[Any]) -> None:
        if await body is not False:
            self.rec.completed[flow] += 1


# ---------------------------------------------------------------- setup and references


async def register_cases(stub: Any, court: str, code: str, count: int) -> list[str]:
    """`count` cases; the last one alone, after the others, so its event is the newest."""
    numbers = iter(range(1, count))
    names: list[str] = []
    metadata = dev_credentials("court", court)

    async def worker() -> None:
        for n in numbers:
            names.append((await stub.CreateCase(case_request(court, code, n), metadata=metadata)).name)

    await asyncio.gather(*(worker() for _ in range(8)))
    names.append((await stub.CreateCase(case_request(court, code, count), metadata=metadata)).name)
    return names


async def until_replicated(call: Callable[[], Awaitable[Any]], timeout: float = 60.0) -> Any:
    """The case reaches the delegation and assistance services by event: FAILED_PRECONDITION means "not yet"."""
    started = time.perf_counter()
    while True:
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION or time.perf_counter() - started > timeout:
                raise
            await asyncio.sleep(0.1)


async def prepare(channels: dict[str, ChannelPool], args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """Registers the cases and waits until the last of each court reached the services that need it."""
    registry = next(channels["registry"].round_robin(registry_pb2_grpc.RegistryServiceStub))
    gd = await register_cases(registry, GD, "粤0112", args.cases)
    zj = await register_cases(registry, ZJ, "浙0326", max(8, args.cases // 4))
    delegation = next(channels["delegation"].round_robin(delegation_pb2_grpc.DelegationServiceStub))
    notices = next(channels["assistance"].round_robin(assistance_pb2_grpc.AssistanceServiceStub))
    vehicles = next(channels["assistance"].round_robin(vehicle_control_pb2_grpc.VehicleControlServiceStub))
    await until_replicated(lambda: delegation.CreateDelegation(delegation_freeze(gd[-1]), metadata=REQUESTING))
    await until_replicated(lambda: notices.CreateAssistanceNotice(notice_query(GD, gd[-1], DEBTOR), metadata=REQUESTING))
    await until_replicated(lambda: vehicles.CreateVehicleControl(vehicle_request(99_999, zj[-1]), metadata=ZJ_COURT))
    return gd, zj


def latency_summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {"count": len(values), "p50_ms": ms(values, 0.5), "p99_ms": ms(values, 0.99), "max_ms": ms(values, 1.0)}


def ms(sorted_values: list[float], q: float) -> float:
    return round(percentile(sorted_values, q) * 1e3, 2) if sorted_values else float("nan")


async def echo_references(address: str, payload_size: int, total_rate: float, args: argparse.Namespace) -> dict[str, Any]:
    """Echo closed loop at 64 in flight (capacity) and open loop at the mix's total rate (latency floor)."""
    pool = ChannelPool(address, args.channels)
    try:
        await pool.ready()
        methods = pool.round_robin(lambda channel: channel.unary_unary(ECHO_METHOD))
        payload = os.urandom(payload_size)

        async def echo() -> Any:
            return await next(methods)(payload)

        await run_round(echo, 64, 1.0)
        closed = await run_round(echo, 64, args.reference_seconds)
        latencies: list[float] = []
        loop = asyncio.get_running_loop()

        async def timed() -> None:
            began = time.perf_counter()
            await echo()
            latencies.append(time.perf_counter() - began)

        tasks, start = [], loop.time()
        for i in range(int(total_rate * args.reference_seconds)):
            if (wait := start + i / total_rate - loop.time()) > 0:
                await asyncio.sleep(wait)
            tasks.append(loop.create_task(timed()))
        await asyncio.gather(*tasks)
    finally:
        await pool.close()
    return {
        "closed_loop_64": {
            "rps": round(closed.rps),
            "p50_ms": round(closed.p50_ms, 2),
            "p99_ms": round(closed.p99_ms, 2),
            "errors": closed.errors,
        },  # fmt: skip
        "open_loop_at_mix_rate": {"rate": round(total_rate, 1), **latency_summary(latencies)},
        "payload_bytes": payload_size,
    }


async def js_publisher(js: Any, payload: bytes, deadline: float, latencies: list[float]) -> None:
    while time.perf_counter() < deadline:
        began = time.perf_counter()
        await js.publish(JS_BENCH_SUBJECT, payload, stream=JS_BENCH_STREAM)
        latencies.append(time.perf_counter() - began)


async def jetstream_reference(nats_url: str, payload_size: int, seconds: float) -> dict[str, Any]:
    """js.publish awaiting each ack (file storage, fsync always, as the services' stream): 1 and 64 in flight."""
    nc = await nats.connect(nats_url)
    result: dict[str, Any] = {"payload_bytes": payload_size}
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=JS_BENCH_STREAM, subjects=[JS_BENCH_SUBJECT], storage=StorageType.FILE))
        payload = os.urandom(payload_size)
        for in_flight in (1, 64):
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds

            began = time.perf_counter()
            await asyncio.gather(*(js_publisher(js, payload, deadline, latencies) for _ in range(in_flight)))
            result[f"in_flight_{in_flight}"] = {"msgs_per_s": round(len(latencies) / (time.perf_counter() - began)),
                                                **latency_summary(latencies)}  # fmt: skip
        await js.delete_stream(JS_BENCH_STREAM)
    finally:
        await nc.drain()
    return result


# ---------------------------------------------------------------- the run


@dataclass
class Outcome:
    document: dict[str, Any]
    failures: list[str]


async def wait_for_flow_ends(mix: Mix, subscribers: Helper, agencies: Helper, timeout: float) -> tuple[Any, Any]:
    """Waits (idle-bounded) for the subscribers to see every notice answered, query completed, vehicle seized.

    The subscriber process only reports at the end, so this waits for the flows that can still end:
    each has a response window shorter than `timeout`.
    """
    await asyncio.sleep(min(timeout, 15.0))  # notices and vehicles end within seconds; queries once every agency replied
    agency_stats = await agencies.finish()
    subscriber_stats = await subscribers.finish()
    return subscriber_stats, agency_stats


async def run(children: Children, args: argparse.Namespace, env: dict[str, Any]) -> Outcome:
    current = asyncio.current_task()
    assert current is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, current.cancel)
    assert children.nats and children.echo
    rates = args.rates
    court_rate = sum(r * COURT_RPCS_PER_START.get(flow, 1.0) for flow, r in rates.items())
    agency_rate = sum(r * AGENCY_RPCS_PER_START.get(flow, 0.0) for flow, r in rates.items())
    mix_payload = delegation_freeze("courts/gd0112/cases/01JBENCHMARK0000000000000").ByteSize()
    print(f"  references: echo (64 in flight, then {court_rate + agency_rate:.0f}/s open loop), js.publish ...", flush=True)
    echo = await echo_references(children.echo.address, mix_payload, court_rate + agency_rate, args)
    js = await jetstream_reference(children.nats.url, 1200, args.reference_seconds)
    print(f"    echo @64 {echo['closed_loop_64']['rps']}/s p99 {echo['closed_loop_64']['p99_ms']} ms; echo at "
          f"{court_rate + agency_rate:.0f}/s p50 {echo['open_loop_at_mix_rate']['p50_ms']} p99 "
          f"{echo['open_loop_at_mix_rate']['p99_ms']} ms; js.publish @1 {js['in_flight_1']['msgs_per_s']}/s "
          f"p99 {js['in_flight_1']['p99_ms']} ms, @64 {js['in_flight_64']['msgs_per_s']}/s", flush=True)  # fmt: skip

    channels = {s: ChannelPool(c.address, args.channels) for s, c in children.services.items()}
    channels["echo"] = ChannelPool(children.echo.address, 1)
    nc = await nats.connect(children.nats.url)
    await nc.jetstream().add_stream(StreamConfig(name=REFERENCE_STREAM, subjects=[REFERENCE_SUBJECT], storage=StorageType.FILE))
    assistance = children.services["assistance"].address
    agencies = Helper("agencies", agencies_process, children.nats.url, assistance)
    subscribers = Helper("subscribers", subscribers_process, children.nats.url, assistance)
    try:
        await asyncio.gather(*(pool.ready() for pool in channels.values()))
        began = time.perf_counter()
        await agencies.start()
        await subscribers.start()
        children.helpers = {"agencies": agencies.process, "subscribers": subscribers.process}
        gd, zj = await prepare(channels, args)
        print(f"  {len(gd)} + {len(zj)} cases registered and replicated, agencies and subscribers ready "
              f"({time.perf_counter() - began:.1f}s)", flush=True)  # fmt: skip
        mix = Mix(channels, nc.jetstream(), gd, zj, args)
        seconds = args.minutes * 60
        print(f"  mixed load for {seconds:g}s: {', '.join(f'{k} {v:g}/s' for k, v in rates.items())} "
              f"(≈ {court_rate:.0f} court + {agency_rate:.0f} agency RPC/s)", flush=True)  # fmt: skip
        pids = children.pids()
        meter = CpuMeter(pids)
        rss_samples: dict[str, list[float]] = defaultdict(list)
        sampler = asyncio.create_task(sample_rss(pids, rss_samples))
        send_window, running = await mix.run(rates, seconds, args.in_flight_cap)
        if running:
            await asyncio.wait(running, timeout=args.drain_seconds)
        load_window = time.perf_counter() - meter.began
        cpu = meter.percent()
        memory = {name: memory_mb(pid) for name, pid in pids.items()}  # the helpers leave at finish()
        subscriber_stats, agency_stats = await wait_for_flow_ends(mix, subscribers, agencies, args.drain_seconds)
        sampler.cancel()
        memory.update({name: memory_mb(pid) for name, pid in pids.items() if name in SERVICES})  # peaks after the drain
    finally:
        for helper in (agencies, subscribers):
            helper.stop()
        await asyncio.gather(*(pool.close() for pool in channels.values()))
        await nc.drain()
    return evaluate(args, env, echo, js, mix, send_window, load_window, cpu, memory, rss_samples, subscriber_stats, agency_stats)


async def sample_rss(pids: dict[str, int], into: dict[str, list[float]], every: float = 10.0) -> None:
    """VmRSS every `every` seconds: growth over the run would be a leak."""
    while True:
        for name, pid in pids.items():
            into[name].append(memory_mb(pid).get("VmRSS", 0.0))
        into["loadavg 1m"].append(os.getloadavg()[0])  # the box is shared: other work skews every figure
        await asyncio.sleep(every)


# ---------------------------------------------------------------- figures, goals, report


def evaluate(
    args: argparse.Namespace, env: dict[str, Any], echo: dict[str, Any], js: dict[str, Any], mix: Mix,
    send_window: float, load_window: float, cpu: dict[str, float], memory: dict[str, dict[str, float]],
    rss_samples: dict[str, list[float]], subscribers: dict[str, Any], agencies: dict[str, Any],
) -> Outcome:  # fmt: skip
    rec = mix.rec
    failures: list[str] = []
    rpcs: dict[str, dict[str, Any]] = {}
    for side, latencies in (("court", rec.latencies), ("agency", agencies["latencies"])):
        for rpc, values in sorted(latencies.items()):
            if rpc not in (ECHO_IN_MIX, JS_IN_MIX):
                rpcs[rpc] = {"side": side, "per_s": round(len(values) / send_window, 2), **latency_summary(values)}
    reference_lags = subscribers["audiences"].pop(REFERENCE_AUDIENCE, {"lags": [], "duplicates": 0, "events": 0})
    in_mix = {
        "echo": {"per_s": round(len(rec.latencies[ECHO_IN_MIX]) / send_window, 2), **latency_summary(rec.latencies[ECHO_IN_MIX])},
        "js_publish_ack": latency_summary(rec.latencies[JS_IN_MIX]),
        "js_publish_to_subscriber": {
            "events": reference_lags["events"],
            "duplicates": reference_lags["duplicates"],
            **latency_summary(reference_lags["lags"]),
        },  # fmt: skip
    }
    total_ok = sum(r["count"] for r in rpcs.values())
    errors = {**{k: v for k, v in rec.errors.items()}, **{f"agency {k}": v for k, v in agencies["errors"].items()}}
    first_errors = {**rec.first_errors, **{f"agency {k}": v for k, v in agencies["first_errors"].items()}}

    # Flows that end at the agencies: each must be seen ending by the court's subscriber.
    ends = subscribers["flow_ends"]
    flows: dict[str, Any] = {}
    for flow, waiting in rec.waiting.items():
        durations = sorted(ends[name] - sent for name, sent in waiting.items() if name in ends)
        lost = len(waiting) - len(durations)
        flows[flow] = {"sent": len(waiting), "ended": len(durations), "not_ended": lost, **latency_summary(durations)}
        if lost:
            errors[f"{flow} flow NOT_ENDED"] = lost
    for flow in rec.started:
        flows.setdefault(flow, {}).update(started=rec.started[flow], completed=rec.completed[flow], skipped=rec.skipped[flow],
                                          start_lateness_p99_ms=ms(sorted(rec.lateness[flow]), 0.99))  # fmt: skip
        if rec.skipped[flow]:
            errors[f"{flow} SKIPPED_OVER_CAP"] = rec.skipped[flow]
    lags: dict[str, Any] = {}
    for audience, a in subscribers["audiences"].items():
        lags[audience] = {"events": a["events"], "duplicates": a["duplicates"], "without_ce_time": a["without_ce_time"],
                          **latency_summary(a["lags"]),
                          "by_event": {k: latency_summary(v) for k, v in a["by_family"].items()}}  # fmt: skip
        if a["duplicates"]:
            errors[f"{audience} DUPLICATE_EVENTS"] = a["duplicates"]
    all_lags = sorted(x for a in subscribers["audiences"].values() for x in a["lags"])
    if errors:
        failures.append(f"errors: {errors}")

    rss = {name: m.get("VmHWM", 0.0) for name, m in memory.items()}
    for service in SERVICES:
        if rss.get(service, 0.0) > RSS_GOAL_MB:
            failures.append(f"{service} peak RSS {rss[service]} MB > {RSS_GOAL_MB:g} MB")
    echo_p99, lag = in_mix["echo"]["p99_ms"], latency_summary(all_lags)
    raw = in_mix["js_publish_to_subscriber"]
    ratios = {
        "total RPC/s / echo RPC/s at 64 in flight (capacity)": round(total_ok / send_window / echo["closed_loop_64"]["rps"], 4),
        **{f"{rpc} p99 / echo p99 (in the mix)": round(r["p99_ms"] / echo_p99, 1) for rpc, r in rpcs.items()},
        "event lag p50 / raw js.publish -> subscriber p50 (in the mix)": round(lag["p50_ms"] / raw["p50_ms"], 1),
        "event lag p99 / raw js.publish -> subscriber p99 (in the mix)": round(lag["p99_ms"] / raw["p99_ms"], 1),
    }
    document = {
        "finished": datetime.now().astimezone().isoformat(timespec="seconds"),
        "options": {k: v for k, v in vars(args).items()},
        "environment": {**env, "loadavg_at_end": os.getloadavg()},
        "database": "postgresql" if args.database_url else "sqlite",
        "load_seconds": round(send_window, 1),
        "throughput": {"total_rpc_per_s": round(total_ok / send_window, 1), "rpcs": rpcs},
        "flows": flows,
        "lag": {"all": latency_summary(all_lags), "by_audience": lags},
        "errors": errors,
        "first_errors": first_errors,
        "memory_mb": memory,
        "peak_rss_mb": rss,
        "rss_every_10s_mb": {k: v for k, v in rss_samples.items() if k != "loadavg 1m"},
        "loadavg_1m_every_10s": rss_samples.get("loadavg 1m", []),
        "cpu_percent_of_a_core": cpu,
        "references": {"echo": echo, "jetstream_publish": js, "during_the_mix": in_mix},
        "ratios": ratios,
        "agencies": {k: v for k, v in agencies.items() if k not in ("latencies", "errors", "first_errors")},
        "goals": {
            "errors == 0": not errors,
            f"peak RSS <= {RSS_GOAL_MB:g} MB per service": all(rss.get(s, 0.0) <= RSS_GOAL_MB for s in SERVICES),
        },  # fmt: skip
        "pass": not failures,
    }
    return Outcome(document, failures)


def print_report(doc: dict[str, Any], failures: list[str]) -> None:
    t = doc["throughput"]
    echo, js = doc["references"]["echo"], doc["references"]["jetstream_publish"]
    print(f"\n{doc['database']}, {doc['load_seconds']}s of load; load average at start "
          f"{doc['environment']['loadavg_1m_at_start']:.2f}, during the load (every 10 s) "
          f"{', '.join(f'{x:.1f}' for x in doc['loadavg_1m_every_10s'])}")  # fmt: skip
    print(f"\n{'RPC':<31}{'side':>7}{'per s':>8}{'count':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for rpc, r in t["rpcs"].items():
        print(
            f"{rpc:<31}{r['side']:>7}{r['per_s']:>8.2f}{r['count']:>8}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.1f}"
        )
    print(f"{'total':<31}{'':>7}{t['total_rpc_per_s']:>8.1f}")
    print("\nflows (started / completed / skipped; ended = seen by the court's subscriber, from the send):")
    for flow, f in doc["flows"].items():
        end = (f" ended {f['ended']}/{f['sent']}, p50 {f['p50_ms']:.0f} ms p99 {f['p99_ms']:.0f} ms"
               if "sent" in f else "")  # fmt: skip
        print(f"  {flow:<11} {f.get('started', 0)} / {f.get('completed', 0)} / {f.get('skipped', 0)}; "
              f"start lateness p99 {f.get('start_lateness_p99_ms', 0):.1f} ms;{end}")  # fmt: skip
    lag = doc["lag"]
    print(f"\ncommit -> subscriber lag (ce-time -> arrival), all events: {lag['all']}")
    for audience, a in lag["by_audience"].items():
        print(f"  {audience:<18} {a['events']:>6} events, {a['duplicates']} duplicates: p50 {a['p50_ms']:.1f} "
              f"p99 {a['p99_ms']:.1f} max {a['max_ms']:.1f} ms")  # fmt: skip
    print(f"\nreferences: echo @64 {echo['closed_loop_64']['rps']}/s (p99 {echo['closed_loop_64']['p99_ms']} ms); echo at "
          f"{echo['open_loop_at_mix_rate']['rate']}/s p50 {echo['open_loop_at_mix_rate']['p50_ms']} p99 "
          f"{echo['open_loop_at_mix_rate']['p99_ms']} ms; js.publish @1 {js['in_flight_1']['msgs_per_s']}/s p50 "
          f"{js['in_flight_1']['p50_ms']} p99 {js['in_flight_1']['p99_ms']} ms, @64 {js['in_flight_64']['msgs_per_s']}/s")  # fmt: skip
    m = doc["references"]["during_the_mix"]
    print(f"during the mix: echo {m['echo']['per_s']}/s p50 {m['echo']['p50_ms']} p99 {m['echo']['p99_ms']} ms; js.publish ack "
          f"p50 {m['js_publish_ack']['p50_ms']} p99 {m['js_publish_ack']['p99_ms']} ms; raw js.publish -> subscriber "
          f"p50 {m['js_publish_to_subscriber']['p50_ms']} p99 {m['js_publish_to_subscriber']['p99_ms']} ms "
          f"({m['js_publish_to_subscriber']['events']} events)")  # fmt: skip
    print("ratios:")
    for label, value in doc["ratios"].items():
        print(f"  {label:<66} {value}")
    print("\nprocess            peak RSS MB   CPU % of a core")
    for name, mem in doc["memory_mb"].items():
        goal = f" (goal <= {RSS_GOAL_MB:g})" if name in SERVICES else ""
        print(f"  {name:<17}{mem.get('VmHWM', 0):>10.1f}{goal:<14}{doc['cpu_percent_of_a_core'].get(name, 0):>8.1f}")
    print(f"\nerrors: {doc['errors'] or 0}")
    for key, detail in doc["first_errors"].items():
        print(f"  first {key}: {detail}")
    print("PASS" if not failures else "FAIL: " + "; ".join(failures))


def save(doc: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"load-{datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.schema_prefix = f"load{uuid.uuid4().hex[:8]}_" if args.database_url else ""
    env = environment()
    print(f"{os.cpu_count()} CPUs, load {env['loadavg_1m_at_start']:.2f}; "
          f"{'PostgreSQL (schema prefix ' + args.schema_prefix + ')' if args.database_url else 'SQLite'}", flush=True)  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix="rogatory-load-") as tmp, contextlib.ExitStack() as stack:
            children = start_children(Path(tmp), args, stack)
            print(f"  children: {children.pids()}", flush=True)
            try:
                outcome = uvloop.run(run(children, args, env))
            except (KeyboardInterrupt, asyncio.CancelledError):
                print("\ninterrupted; stopping the child processes", file=sys.stderr)
                return 130
            except Exception:
                for c in children.services.values():
                    print(f"--- {c.name} log tail ---\n{c.log_tail()}", file=sys.stderr)
                raise
            if outcome.failures:
                outcome.document["log_tails"] = {c.name: c.log_tail() for c in children.services.values()}
    finally:
        if args.database_url:
            asyncio.run(drop_schemas(args.database_url, args.schema_prefix))
    print_report(outcome.document, outcome.failures)
    if not args.no_save:
        print(f"\nwrote {save(outcome.document)}")
    return 0 if not outcome.failures else 1


if __name__ == "__main__":
    sys.exit(main())
