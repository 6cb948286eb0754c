"""Property query fan-out to N simulated agencies vs raw NATS scatter-gather, in one run.

    .venv/bin/python -m bench.bench_query_fanout [--agencies 1000] [--rounds 7] [--warmup 1]

Starts an embedded nats-server (JetStream, fsync always) and the assistance service as a
child process (SQLite in a temp dir) with a synthetic agency table of
`--agencies` banks (ROGATORY_AGENCIES_FILE), publishes one `case.registered` event (as
the registry would), and starts the simulated
agencies (`services.tools.agency_simulator.query_responder`, one subscription per agency) in
this process. Then, alternating, per round:

- **raw**: N core-NATS subscribers on one subject, one publish with a reply inbox, each
  subscriber replies, the collector waits for all N replies; no JetStream, no database;
- **query**: CreatePropertyQuery over gRPC for DEPOSITS → the service writes the query, N
  agency rows and the `created` event in one transaction → the dispatcher publishes N
  requests (core NATS, one per agency subject) → each simulated bank answers on its reply
  subject → the reply listener applies them in batches → the completion event (outbox,
  JetStream) reaches a court subscriber.
  Timed from the RPC call to that event; afterwards GetPropertyQuery must show N agencies,
  none pending.

Reports the median of each, the rates (agencies aggregated per second) and the goals of
issue 4 point 8: median ≤ 2 s, rate ≥ 25 % of raw. Writes bench/results/query-fanout-<ts>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import nats
import uvloop
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.assistance.v1 import property_query_pb2_grpc
from rogatory.events.v1 import events_pb2 as case_events_pb2
from rogatory.events.v1 import query_events_pb2 as events_pb2
from rogatory.registry.v1 import registry_pb2

from bench.bench_delegation import cpu_seconds
from bench.processes import ChildProcess, environment
from services.contract.events import CASE_REGISTERED
from services.plumbing.auth import dev_credentials
from services.plumbing.events import envelope_headers
from services.plumbing.ids import new_id
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.tools.agency_simulator.query_responder import SimulatedQueryResponder
from services.tools.demo import until_case_replicated

STREAM = "ROGATORY"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
MEDIAN_GOAL_S = 2.0
RATIO_GOAL = 0.25
CASE_NAME, DEBTOR = "courts/gd0112/cases/2020-enf-1", "河南某建设工程有限公司"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Property query fan-out vs raw NATS scatter-gather")
    p.add_argument("--agencies", type=int, default=1000, help="simulated agencies (banks) answering (default 1000)")
    p.add_argument("--rounds", type=int, default=7, help="measured rounds of each; medians are reported (default 7)")
    p.add_argument(
        "--warmup", type=int, default=3, help="unmeasured rounds of each first: the first queries fill caches (default 3)"
    )
    p.add_argument("--timeout", type=float, default=30.0, help="seconds a round may take before it fails")
    p.add_argument(
        "--no-fsync", action="store_true", help="JetStream without fsync on every write (nats-server's own default: every 2 min)"
    )
    p.add_argument("--no-save", action="store_true", help="do not write the JSON result")
    return p.parse_args(argv)


@dataclass
class Report:
    environment: dict[str, Any]
    agencies: int
    raw_seconds: list[float] = field(default_factory=list)
    query_seconds: list[float] = field(default_factory=list)
    create_rpc_seconds: list[float] = field(default_factory=list)  # the CreatePropertyQuery call alone
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    cpu_seconds: dict[str, list[float]] = field(default_factory=dict)  # per query round, per process

    @property
    def passed(self) -> bool:
        return bool(self.verdicts) and all(v["pass"] for v in self.verdicts)


def write_agency_table(path: Path, count: int) -> list[str]:
    ids = [f"bank-sim-{i:04d}" for i in range(count)]
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["id", "name", "kind", "division_code", "scope"])
        writer.writerows([agency_id, f"模拟银行{i:04d}", "BANK", "", "NATIONAL"] for i, agency_id in enumerate(ids))
    return ids


# ---------------------------------------------------------------- raw scatter-gather


class RawScatterGather:
    """N responders on one subject, each answering with a reply the size of a simulated NO_PROPERTY reply."""

    SUBJECT = "bench.raw.query"

    def __init__(self, url: str, count: int):
        self.url, self.count = url, count
        self.responders: NATS | None = None
        self.collector: NATS | None = None

    async def start(self) -> None:
        self.responders = await nats.connect(self.url, name="raw-responders", pending_size=64 * 1024 * 1024)
        self.collector = await nats.connect(self.url, name="raw-collector")
        reply = events_pb2.PropertyQueryReply(
            property_query="courts/gd0112/propertyQueries/x",
            agency="agencies/bank-sim-0000",
            outcome=pb.AgencyQueryResult.NO_PROPERTY,
        ).SerializeToString()
        responders = self.responders

        async def answer(msg: Msg) -> None:
            await responders.publish(msg.reply, reply)

        for _ in range(self.count):
            await responders.subscribe(self.SUBJECT, cb=answer)
        await responders.flush()

    async def round(self, timeout: float) -> float:
        assert self.collector is not None
        inbox = self.collector.new_inbox()
        done = asyncio.get_running_loop().create_future()
        received = 0

        async def collect(_msg: Msg) -> None:
            nonlocal received
            received += 1
            if received == self.count and not done.done():
                done.set_result(time.perf_counter())

        subscription = await self.collector.subscribe(inbox, cb=collect)
        await self.collector.flush()
        started = time.perf_counter()
        await self.collector.publish(self.SUBJECT, b"query", reply=inbox)
        finished = await asyncio.wait_for(done, timeout)
        await subscription.unsubscribe()
        return finished - started

    async def stop(self) -> None:
        for nc in (self.responders, self.collector):
            if nc is not None:
                await nc.drain()


# ---------------------------------------------------------------- the property query path


class QueryRound:
    def __init__(self, nats_url: str, assistance: str, case_name: str, count: int):
        self.nats_url, self.assistance, self.case_name, self.count = nats_url, assistance, case_name, count
        self.court: NATS | None = None
        self.completed: dict[str, asyncio.Future[float]] = {}
        self.channel: grpc.aio.Channel | None = None

    async def start(self) -> None:
        self.court = await nats.connect(self.nats_url, name="court-gd0112")

        async def on_completed(msg: Msg) -> None:
            name = events_pb2.PropertyQueryCompleted.FromString(msg.data).property_query.name
            future = self.completed.setdefault(name, asyncio.get_running_loop().create_future())
            if not future.done():
                future.set_result(time.perf_counter())

        # Core subscription to the court's completion subject: JetStream delivers stored messages to it too.
        await self.court.subscribe("rogatory.v1.query.gd0112.completed", cb=on_completed)
        await self.court.flush()
        self.channel = grpc.aio.insecure_channel(self.assistance)

    def request(self) -> pb.CreatePropertyQueryRequest:
        return pb.CreatePropertyQueryRequest(
            parent="courts/gd0112",
            property_query=pb.PropertyQuery(case=self.case_name, debtor=DEBTOR, categories=[pb.DEPOSITS]),
        )

    async def round(self, timeout: float) -> tuple[float, float]:
        assert self.channel is not None
        stub = property_query_pb2_grpc.PropertyQueryServiceStub(self.channel)
        credentials = dev_credentials("court", "gd0112")
        started = time.perf_counter()
        created = await until_case_replicated(lambda: stub.CreatePropertyQuery(self.request(), metadata=credentials))
        rpc_done = time.perf_counter()
        future = self.completed.setdefault(created.name, asyncio.get_running_loop().create_future())
        finished = await asyncio.wait_for(future, timeout)
        result = await stub.GetPropertyQuery(
            pb.GetPropertyQueryRequest(name=created.name, view=pb.PropertyQuery.BASIC), metadata=credentials
        )
        if result.agency_count != self.count or result.pending_count or result.state != pb.PropertyQuery.COMPLETED:
            raise RuntimeError(f"query not fully aggregated: {result.agency_count} agencies, {result.pending_count} pending")
        if result.summary.timed_out:
            raise RuntimeError(f"{result.summary.timed_out} agencies timed out")
        return finished - started, rpc_done - started

    async def stop(self) -> None:
        if self.channel is not None:
            await self.channel.close()
        if self.court is not None:
            await self.court.drain()


# ---------------------------------------------------------------- run


async def register_case(nats_url: str) -> str:
    """Publishes the case's `case.registered` event as the registry would; the assistance service replicates it."""
    case = registry_pb2.Case(
        name=CASE_NAME,
        case_number="（2020）粤0112执1号",
        parties=[
            registry_pb2.Party(
                role=registry_pb2.Party.APPLICANT, kind=registry_pb2.Party.ORGANIZATION, display_name="广州某科技有限公司"
            ),
            registry_pb2.Party(role=registry_pb2.Party.RESPONDENT, kind=registry_pb2.Party.ORGANIZATION, display_name=DEBTOR),
        ],
    )
    headers = envelope_headers(
        event_id=new_id(),
        event_type=CASE_REGISTERED.type,
        occurred_at=datetime.now(UTC),
        source="rogatory/registry",
        traceparent="",
        tracestate="",
    )
    nc = await nats.connect(nats_url)
    try:
        payload = case_events_pb2.CaseRegistered(case=case).SerializeToString()
        await nc.jetstream().publish(CASE_REGISTERED.subject.format(court="gd0112"), payload, headers=headers)
    finally:
        await nc.drain()
    return CASE_NAME


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(Path(f"/proc/{pid}/stat")) for name, pid in pids.items()}


async def measure(
    args: argparse.Namespace, nats_url: str, assistance: str, agency_ids: list[str], pids: dict[str, int]
) -> Report:
    report = Report(environment(), args.agencies)
    case_name = await register_case(nats_url)
    raw = RawScatterGather(nats_url, args.agencies)
    query = QueryRound(nats_url, assistance, case_name, args.agencies)
    responder = SimulatedQueryResponder(nats_url, agency_ids, seed=1, property_rate=0.3)
    await raw.start()
    await query.start()
    await responder.start()
    try:
        for index in range(args.warmup + args.rounds):
            raw_s = await raw.round(args.timeout)
            responder.first_request_at = 0.0
            began, cpu_before = time.perf_counter(), cpu_of(pids)
            query_s, rpc_s = await query.round(args.timeout)
            cpu = {name: seconds - cpu_before[name] for name, seconds in cpu_of(pids).items()}
            stages = [t - began for t in (responder.first_request_at, responder.last_request_at, responder.last_reply_at)]
            measured = index >= args.warmup
            if measured:
                report.raw_seconds.append(raw_s)
                report.query_seconds.append(query_s)
                report.create_rpc_seconds.append(rpc_s)
            label = f"round {index - args.warmup + 1}" if measured else "warm-up"
            print(
                f"  {label:>9}: raw {raw_s * 1000:6.1f} ms   query {query_s * 1000:7.1f} ms (CreatePropertyQuery "
                f"{rpc_s * 1000:.0f} ms; requests at the agencies {stages[0] * 1000:.0f}–{stages[1] * 1000:.0f} ms, "
                f"last reply sent {stages[2] * 1000:.0f} ms; CPU "
                + ", ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in cpu.items())
                + ")"
            )
            if measured:
                for name, seconds in cpu.items():
                    report.cpu_seconds.setdefault(name, []).append(seconds)
    finally:
        await responder.stop()
        await query.stop()
        await raw.stop()
    return report


def judge(report: Report) -> None:
    raw, fanout = statistics.median(report.raw_seconds), statistics.median(report.query_seconds)
    raw_rate, rate = report.agencies / raw, report.agencies / fanout
    print(f"\n{report.agencies} agencies, {len(report.query_seconds)} rounds (medians):")
    print(f"  raw NATS scatter-gather : {raw * 1000:8.1f} ms  = {raw_rate:10,.0f} replies/s")
    print(f"  property query          : {fanout * 1000:8.1f} ms  = {rate:10,.0f} agencies aggregated/s")
    print(f"  CreatePropertyQuery RPC : {statistics.median(report.create_rpc_seconds) * 1000:8.1f} ms")
    ratio = rate / raw_rate
    report.verdicts = [
        {"goal": f"median ≤ {MEDIAN_GOAL_S} s", "value": fanout, "pass": fanout <= MEDIAN_GOAL_S},
        {"goal": f"rate ≥ {RATIO_GOAL:.0%} of raw", "value": ratio, "pass": ratio >= RATIO_GOAL},
    ]
    for verdict in report.verdicts:
        value = f"{verdict['value']:.3f}" if verdict["goal"].startswith("median") else f"{verdict['value']:.2%}"
        print(f"  {verdict['goal']:<22}: {value:>8}  {'PASS' if verdict['pass'] else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"load average at start: {environment()['loadavg_1m_at_start']:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp_name, contextlib.ExitStack() as stack:
        tmp = Path(tmp_name)
        agency_ids = write_agency_table(tmp / "agencies.csv", args.agencies)
        server = EmbeddedNatsServer(tmp / "jetstream", sync_always=not args.no_fsync)
        stack.callback(server.stop)
        server.start()
        common = {"NATS_URL": server.url, "ROGATORY_DATA_DIR": str(tmp / "data"), "ROGATORY_STREAM": STREAM}
        env = {**common, "ASSISTANCE_ADDR": f"127.0.0.1:{free_port()}", "ROGATORY_AGENCIES_FILE": str(tmp / "agencies.csv")}
        assistance = ChildProcess("assistance", "services.assistance.main", [], env, tmp)
        stack.callback(assistance.stop)
        assistance.start()
        assert assistance.process is not None and server.process is not None
        pids = {"assistance": assistance.process.pid, "nats-server": server.process.pid, "agencies+client": os.getpid()}
        try:
            report = uvloop.run(measure(args, server.url, assistance.address, agency_ids, pids))
        except Exception:
            print(f"assistance log:\n{assistance.log_tail()}", file=sys.stderr)
            raise
    judge(report)
    if not args.no_save:
        RESULTS_DIR.mkdir(exist_ok=True)
        path = RESULTS_DIR / f"query-fanout-{datetime.now():%Y%m%d-%H%M%S}.json"
        path.write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False))
        print(f"\nwrote {path}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
