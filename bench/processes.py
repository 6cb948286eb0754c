"""Child processes the benchmark starts, each waited for by its READY line and always stopped;
and the child's side of that: `serve_until_signalled`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import grpc
import uvloop

REPO_ROOT = Path(__file__).resolve().parent.parent


class ChildProcess:
    """`python -m MODULE` that prints `READY <name> <addr>` on stdout once it serves."""

    def __init__(self, name: str, module: str, args: list[str], env: Mapping[str, str], log_dir: Path):
        self.name = name
        self.command = [sys.executable, "-m", module, *args]
        self.env = {**os.environ, **env}
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[str] | None = None
        self.address = ""

    def start(self, timeout: float = 60.0) -> ChildProcess:
        with self.log_path.open("w") as log:
            # Own session: Ctrl-C reaches only the benchmark, which then stops children in order.
            self.process = subprocess.Popen(
                self.command, cwd=REPO_ROOT, env=self.env, stdout=subprocess.PIPE, stderr=log,
                text=True, start_new_session=True,
            )  # fmt: skip
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        assert self.process and self.process.stdout
        ready = threading.Event()
        stdout = self.process.stdout

        def pump() -> None:
            for line in stdout:  # keeps draining, so a chatty child never blocks on a full pipe
                if line.startswith(f"READY {self.name} "):
                    self.address = line.split()[2]
                    ready.set()

        threading.Thread(target=pump, name=f"{self.name}-stdout", daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError(f"{self.name} did not print READY in {timeout}s; log:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (the services drain and flush on it), then SIGKILL if it hangs."""
        if not self.process or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)


def start_worker(name: str, env: Mapping[str, str], log_dir: Path, stack: contextlib.ExitStack) -> ChildProcess:
    """One of the stack's workers (`audit`, `turnaround`: services/tools/launcher.py MODULES) on a
    free health port, stopped with `stack`, as `make run` starts it beside the services."""
    from services.plumbing.nats_server import free_port  # noqa: PLC0415
    from services.tools.launcher import MODULES  # noqa: PLC0415

    worker = ChildProcess(name, MODULES[name], [], {**env, f"{name.upper()}_ADDR": f"127.0.0.1:{free_port()}"}, log_dir)
    stack.callback(worker.stop)
    return worker.start()


def environment() -> dict[str, Any]:
    """What a result was measured on; other work on a 2-core box skews every figure."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "grpcio": grpc.__version__,
        "uvloop": uvloop.__version__,
        "loadavg_1m_at_start": os.getloadavg()[0],
    }


async def serve_until_signalled(server: grpc.aio.Server, name: str, addr: str) -> None:
    """Child side: serves on `addr`, prints `READY <name> <host:port>` for ChildProcess, and
    stops on SIGTERM (ChildProcess.stop) or SIGINT."""
    port = server.add_insecure_port(addr)
    await server.start()
    print(f"READY {name} {addr.rsplit(':', 1)[0]}:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1)
