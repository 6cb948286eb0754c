"""What tracing and metrics cost CreateDelegation (issue 5, point 6), measured in one run.

    .venv/bin/python -m bench.bench_tracing_overhead [--duration 5] [--rounds 5] [--concurrency 64]

Starts two identical stacks side by side — an embedded nats-server, the registry and the
delegation service, SQLite in a temp dir, deadline scanner off — that differ only in
telemetry:

- **off**: `OTEL_SDK_DISABLED=true` (no tracer or meter provider at all);
- **on**: spans sampled at 100 % (`OTEL_TRACES_SAMPLER=parentbased_always_on`) through the
  batch span processor and metrics through the Prometheus reader and a periodic OTLP
  reader, both exported by OTLP/gRPC to `bench.otlp_sink` (a stand-in collector in its own
  process that counts and discards).

Each stack registers the same cases, then rounds of CreateDelegation at `--concurrency`
in flight alternate between the stacks (off, on, off, on, …) so that noise from the shared
machine hits both alike. Prints the median throughput and latency of each, the throughput
lost with telemetry on (goal ≤ 15 %), the spans the sink received, and writes
bench/results/tracing-overhead-<timestamp>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import uvloop

from bench.bench_delegation import DelegationWorkload, register_cases, until_replicated
from bench.load import ChannelPool, Round, run_round
from bench.processes import ChildProcess, environment
from services.plumbing.nats_server import EmbeddedNatsServer, free_port

RESULTS_DIR = Path(__file__).resolve().parent / "results"
GOAL_MAX_LOSS = 0.15


@dataclass
class Side:
    label: str
    env: dict[str, str]
    nats: EmbeddedNatsServer | None = None
    registry: ChildProcess | None = None
    delegation: ChildProcess | None = None
    rounds: list[Round] = field(default_factory=list)

    def median(self) -> Round:
        rps = statistics.median_low([r.rps for r in self.rounds])
        return next(r for r in self.rounds if r.rps == rps)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per round (default 5)")
    p.add_argument("--rounds", type=int, default=5, help="rounds per side, alternating (default 5)")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of warm-up per side")
    p.add_argument("--concurrency", type=int, default=64, help="requests in flight (default 64)")
    p.add_argument("--channels", type=int, default=4, help="client channels used round-robin (default 4)")
    p.add_argument("--cases", type=int, default=128, help="cases registered per stack (default 128)")
    p.add_argument("--no-save", action="store_true", help="do not write the JSON result")
    return p.parse_args(argv)


def start_side(side: Side, tmp: Path, stack: contextlib.ExitStack) -> None:
    folder = tmp / side.label
    side.nats = EmbeddedNatsServer(folder / "jetstream")
    stack.callback(side.nats.stop)  # registered before the services, so stopped after them
    side.nats.start()
    common = {**side.env, "NATS_URL": side.nats.url, "ROGATORY_DATA_DIR": str(folder / "data")}
    registry_env = {**common, "REGISTRY_ADDR": f"127.0.0.1:{free_port()}"}
    side.registry = ChildProcess("registry", "services.registry.main", [], registry_env, folder)
    stack.callback(side.registry.stop)
    side.registry.start()
    delegation_env = {**common, "DELEGATION_ADDR": f"127.0.0.1:{free_port()}", "ROGATORY_SCAN_INTERVAL": "0"}
    side.delegation = ChildProcess("delegation", "services.delegation.main", [], delegation_env, folder)
    stack.callback(side.delegation.stop)
    side.delegation.start()


async def prepare(side: Side, args: argparse.Namespace) -> DelegationWorkload:
    assert side.registry and side.delegation
    cases = await register_cases(side.registry.address, args.cases)
    pool = ChannelPool(side.delegation.address, args.channels)
    await pool.ready()
    workload = DelegationWorkload(pool, cases)
    await until_replicated(workload, cases[-1])  # the newest case replicated: all are
    await run_round(workload.create, args.concurrency, args.warmup)
    return workload


async def run(sides: list[Side], args: argparse.Namespace) -> None:
    workloads = [await prepare(side, args) for side in sides]
    for number in range(1, args.rounds + 1):
        for side, workload in zip(sides, workloads, strict=True):
            result = await run_round(workload.create, args.concurrency, args.duration)
            side.rounds.append(result)
            print(
                f"  round {number} {side.label:<3} {result.rps:7.0f}/s  p50 {result.p50_ms:7.2f} ms"
                f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}",
                flush=True,
            )


def summary(sides: list[Side]) -> dict[str, Any]:
    off, on = (side.median() for side in sides)
    loss = 1 - on.rps / off.rps if off.rps else float("nan")
    return {
        "off_rps": off.rps,
        "on_rps": on.rps,
        "loss": loss,
        "off_p99_ms": off.p99_ms,
        "on_p99_ms": on.p99_ms,
        "pass": loss <= GOAL_MAX_LOSS and not any(r.errors for s in sides for r in s.rounds),
    }


def print_summary(result: dict[str, Any], sink_log: str) -> None:
    print("\nCreateDelegation, median of the rounds:")
    print(f"  telemetry off  {result['off_rps']:7.0f}/s  p99 {result['off_p99_ms']:7.2f} ms")
    print(f"  telemetry on   {result['on_rps']:7.0f}/s  p99 {result['on_p99_ms']:7.2f} ms")
    verdict = "PASS" if result["pass"] else "FAIL"
    print(f"  throughput lost with tracing + metrics on: {100 * result['loss']:.1f} %  (goal <= 15 %)  {verdict}")
    print(f"  OTLP sink: {sink_log.strip().splitlines()[-1] if sink_log.strip() else 'no counts'}")


def save(args: argparse.Namespace, sides: list[Side], result: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"tracing-overhead-{datetime.now():%Y%m%d-%H%M%S}.json"
    body = {
        "environment": environment(),
        "args": vars(args),
        "result": result,
        "rounds": {s.label: [asdict(r) for r in s.rounds] for s in sides},
    }
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False))
    return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="rogatory-bench-") as folder, contextlib.ExitStack() as stack:
        tmp = Path(folder)
        sink = ChildProcess("otlp", "bench.otlp_sink", ["--addr", f"127.0.0.1:{free_port()}"], {}, tmp)
        stack.callback(sink.stop)
        sink.start()
        telemetry_on = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://{sink.address}",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_TRACES_SAMPLER": "parentbased_always_on",
            "OTEL_METRIC_EXPORT_INTERVAL": "5000",
        }
        sides = [Side("off", {"OTEL_SDK_DISABLED": "true"}), Side("on", telemetry_on)]
        for side in sides:
            start_side(side, tmp, stack)
        print(f"environment: {environment()}", flush=True)
        try:
            uvloop.run(run(sides, args))
        except KeyboardInterrupt:
            return 130
        result = summary(sides)
        for side in sides:  # stop the services first, so their last spans reach the sink
            for child in (side.delegation, side.registry):
                if child:
                    child.stop()
        sink.stop()
        print_summary(result, sink.log_path.read_text() if sink.log_path.exists() else "")
        if not args.no_save:
            print(f"saved {save(args, sides, result)}")
        return 0 if result["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
