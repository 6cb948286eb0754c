"""Closed-loop load: N requests in flight for a fixed time, per-request latencies, median round."""

from __future__ import annotations

import asyncio
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import cycle
from pathlib import Path
from typing import Any

import grpc

Call = Callable[[], Awaitable[Any]]


class ChannelPool:
    """Several HTTP/2 connections, used round-robin, so one connection is not the bottleneck."""

    def __init__(self, target: str, size: int):
        # A local subchannel pool per channel: otherwise identical channels share one TCP connection.
        options = [("grpc.use_local_subchannel_pool", 1)]
        self.channels = [grpc.aio.insecure_channel(target, options=options) for _ in range(size)]

    async def ready(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(asyncio.gather(*(c.channel_ready() for c in self.channels)), timeout)

    def round_robin(self, make: Callable[[grpc.aio.Channel], Any]) -> cycle[Any]:
        """One stub (or multicallable) per channel, handed out in turn."""
        return cycle([make(c) for c in self.channels])

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.channels))


@dataclass
class Round:
    concurrency: int
    ok: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    error_codes: dict[str, int] = field(default_factory=dict)
    first_error: str = ""
    # CPU seconds the server process used (all its threads) per successful call, in ms. Less
    # sensitive than RPC/s to what else the shared box runs: the same work costs about the
    # same CPU whoever else is scheduled. None when no server pid was given.
    server_cpu_ms_per_call: float | None = None
    # The same over every process of the stack given (the request process, the workers that take
    # its per-event work — audit appender, turnaround projector — and nats-server): work moved
    # out of the request process still counts here (issue 18, point 4). None without them.
    stack_cpu_ms_per_call: float | None = None


@dataclass
class Measurement:
    workload: str
    concurrency: int
    median: Round
    rounds: list[Round]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def cpu_seconds(stat: Path) -> float:
    """utime + stime from a /proc stat file (a process: all its threads; a task: one thread);
    NaN where there is no such file."""
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return math.nan
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # stat fields 14 and 15


def process_cpu_seconds(pid: int) -> float:
    return cpu_seconds(Path(f"/proc/{pid}/stat"))


async def run_round(
    call: Call, concurrency: int, seconds: float, server_pid: int | None = None, stack_pids: Sequence[int] = ()
) -> Round:
    """`concurrency` workers each issue one call after another until the deadline."""
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    first_error: list[str] = []
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                await call()
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
                if not first_error:
                    first_error.append(f"{exc.code().name}: {exc.details()}")
                continue
            latencies.append(time.perf_counter() - start)

    cpu_before = process_cpu_seconds(server_pid) if server_pid else math.nan
    stack_before = sum(process_cpu_seconds(pid) for pid in stack_pids) if stack_pids else math.nan
    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - began  # includes the tail of calls started before the deadline
    cpu_used = process_cpu_seconds(server_pid) - cpu_before if server_pid else math.nan
    stack_used = sum(process_cpu_seconds(pid) for pid in stack_pids) - stack_before if stack_pids else math.nan
    latencies.sort()
    return Round(
        concurrency=concurrency,
        ok=len(latencies),
        errors=sum(errors.values()),
        seconds=elapsed,
        rps=len(latencies) / elapsed,
        p50_ms=percentile(latencies, 0.50) * 1e3,
        p99_ms=percentile(latencies, 0.99) * 1e3,
        error_codes=dict(errors),
        first_error=first_error[0] if first_error else "",
        server_cpu_ms_per_call=cpu_used / len(latencies) * 1e3 if latencies and not math.isnan(cpu_used) else None,
        stack_cpu_ms_per_call=stack_used / len(latencies) * 1e3 if latencies and not math.isnan(stack_used) else None,
    )


async def measure(
    workload: str,
    call: Call,
    concurrency: int,
    *,
    seconds: float,
    rounds: int,
    warmup: float,
    server_pid: int | None = None,
    stack_pids: Sequence[int] = (),
) -> Measurement:
    """Warm-up, then `rounds` rounds; the round with the median throughput is the result.
    `server_pid`'s CPU per call is the request process's; `stack_pids`' the whole stack's."""
    await run_round(call, concurrency, warmup)  # connections, SQLite page cache, lazily built server paths
    results = [await run_round(call, concurrency, seconds, server_pid, stack_pids) for _ in range(rounds)]
    median_rps = statistics.median_low([r.rps for r in results])
    median = next(r for r in results if r.rps == median_rps)
    return Measurement(workload, concurrency, median, results)
