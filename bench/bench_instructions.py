"""Instructions per CreateCase in the registry process, counted by valgrind's callgrind.

CPU seconds per call on this shared 2-core machine vary by ±30 % from one run to the next
(1.28–2.40 ms for the same tree in six runs), so a 10 % change cannot be seen in them.
Instructions can: callgrind counts every instruction the process executes, whatever else
the machine does. This benchmark runs the registry under callgrind with instrumentation off,
warms it up, counts from the first measured call until the relay has published every event
and the audit appender has chained them (in the registry process up to 00b2a4c; since then in
a process of its own, started beside it uninstrumented, so its instructions are not counted:
bench_registry's "whole stack" CPU has them), and prints instructions per call, whole and by
shared object (the interpreter, libc, SQLite, gRPC, protobuf…). Compare two trees by
running it in each (`git worktree add`), same Python, same `--calls`, both at once (how many
calls a batch shares depends on what else runs: a run alone counts fewer per call):

    .venv/bin/python -m bench.bench_instructions --calls 1000

Needs valgrind (Debian's package `valgrind`). Under callgrind the service runs ~50× slower,
so its batches are larger than at full speed: the figure is for comparing trees, not for
the CPU per call of `make bench`. Counting takes ~2 minutes for 1,000 calls.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from bench.bench_registry import wait_for_outbox
from bench.load import ChannelPool
from bench.processes import REPO_ROOT, ChildProcess
from bench.workloads import RegistryWorkload
from services.plumbing.nats_server import EmbeddedNatsServer, free_port

WARMUP_CALLS = 50


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000, help="measured CreateCase calls (default 1000)")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight (default 64)")
    return parser.parse_args(argv)


async def count(calls: int, concurrency: int, folder: Path) -> Path:
    """Runs the registry under callgrind for `calls` CreateCase calls; returns callgrind's output file."""
    nats = EmbeddedNatsServer(folder / "jetstream").start()
    address = f"127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "NATS_URL": nats.url,
        "ROGATORY_DATA_DIR": str(folder / "data"),
        "REGISTRY_ADDR": address,
        "PYTHONMALLOC": "malloc",
    }  # fmt: skip - libc's allocator, so allocation shows as its own line
    out = folder / "callgrind.out"
    command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--instr-atstart=no"]
    with (folder / "registry.log").open("w") as log:
        registry = subprocess.Popen(
            [*command, sys.executable, "-m", "services.registry.main"], cwd=REPO_ROOT, env=env,
            stdout=subprocess.PIPE, stderr=log, text=True,
        )  # fmt: skip
    audit = start_audit_process(env, folder)
    try:
        assert registry.stdout is not None
        for line in registry.stdout:  # start-up under valgrind takes a while
            if line.startswith("READY registry "):
                break
        else:
            raise RuntimeError(f"the registry exited before serving; see {folder / 'registry.log'}")
        pool = ChannelPool(address, 4)
        await pool.ready(timeout=300)
        workload = RegistryWorkload(pool)
        for _ in range(WARMUP_CALLS):
            await workload.create_case()
        instrument(registry.pid, "on")
        in_flight = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with in_flight:
                await workload.create_case()

        await asyncio.gather(*(one() for _ in range(calls)))
        drained = await wait_for_outbox(nats.url, folder / "data" / "registry.db", workload.created, timeout=900)
        instrument(registry.pid, "off")
        await pool.close()
        if not drained["ok"]:
            raise RuntimeError(f"the events were not all published and chained: {drained}")
    finally:
        registry.send_signal(signal.SIGTERM)
        registry.wait(600)
        if audit is not None:
            audit.stop()
        nats.stop()
    return out


def start_audit_process(env: dict[str, str], folder: Path) -> ChildProcess | None:
    """The audit appender of a tree that runs it as a process of its own; None for one whose
    registry process hosts it."""
    if not (REPO_ROOT / "services" / "audit" / "main.py").exists():
        return None
    audit_env = {**env, "AUDIT_ADDR": f"127.0.0.1:{free_port()}"}
    audit_env.pop("PYTHONMALLOC")
    return ChildProcess("audit", "services.audit.main", [], audit_env, folder).start()


def instrument(pid: int, state: str) -> None:
    subprocess.run(["callgrind_control", "--instr", state, str(pid)], check=True, capture_output=True)


def totals(out: Path) -> tuple[int, Counter[str]]:
    """All instructions counted, and by shared object (`callgrind_annotate`'s per-function lines)."""
    annotated = subprocess.run(
        ["callgrind_annotate", "--inclusive=no", "--threshold=100", str(out)], check=True, capture_output=True, text=True
    ).stdout
    total = int(re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", annotated, re.M).group(1).replace(",", ""))  # type: ignore[union-attr]
    by_object: Counter[str] = Counter()
    for count_text, where in re.findall(r"^\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", annotated, re.M):
        if "PROGRAM TOTALS" in where:
            continue
        found = re.search(r"\[([^\]]+)\]\s*$", where)
        by_object[Path(found.group(1)).name if found else "(unknown object)"] += int(count_text.replace(",", ""))
    return total, by_object


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        print("valgrind is needed (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rogatory-instructions-") as tmp:
        out = asyncio.run(count(args.calls, args.concurrency, Path(tmp)))
        total, by_object = totals(out)
    per_call = total / args.calls
    print(f"CreateCase @{args.concurrency}, {args.calls} calls, Python {sys.version.split()[0]}: "
          f"{per_call / 1e6:.3f} M instructions per call in the registry process")  # fmt: skip
    for name, n in by_object.most_common(8):
        print(f"  {n / args.calls / 1e3:9.1f} k  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
