"""Starts the three services as processes (and, without NATS_URL, an embedded nats-server).

Used by `make run` and by the end-to-end tests, so both exercise the real processes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from services.plumbing.nats_server import EmbeddedNatsServer, free_port

SERVICES = ("registry", "delegation", "assistance")
ADDRESS_VARIABLES = {"registry": "REGISTRY_ADDR", "delegation": "DELEGATION_ADDR", "assistance": "ASSISTANCE_ADDR"}
METRICS_VARIABLES = {
    "registry": "REGISTRY_METRICS_ADDR",
    "delegation": "DELEGATION_METRICS_ADDR",
    "assistance": "ASSISTANCE_METRICS_ADDR",
}
METRICS_PORTS = {"registry": 9464, "delegation": 9465, "assistance": 9466}  # 9464: OpenTelemetry's Prometheus default


@dataclass
class ServiceProcess:
    service: str
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    address: str = ""
    output: list[str] = field(default_factory=list)

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.process = subprocess.Popen(
            [sys.executable, "-m", f"services.{self.service}.main"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # Own session: a terminal's Ctrl-C reaches only the launcher, which then stops the
            # services before NATS, so their last events are still flushed.
            start_new_session=True,
        )
        ready = threading.Event()
        threading.Thread(target=self._pump, args=(ready,), daemon=True, name=f"{self.service}-log").start()
        if not ready.wait(timeout) or not self.address:
            self.kill()
            raise RuntimeError(f"{self.service} did not start:\n" + "\n".join(self.output[-40:]))
        return self

    def _pump(self, ready: threading.Event) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            line = line.rstrip()
            self.output.append(line)
            if len(self.output) > 2000:
                del self.output[:1000]
            if line.startswith(f"READY {self.service} "):
                self.address = line.split()[-1]
                ready.set()
            elif os.environ.get("ROGATORY_ECHO_LOGS"):
                print(line, flush=True)
        ready.set()  # the process ended: wake the waiter, which sees no address

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, then wait for the graceful shutdown; returns the exit code."""
        if not self.process:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Stack:
    """NATS (embedded unless given) plus the three services, on free or configured ports."""

    data_dir: Path
    nats_url: str = ""
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    fixed_ports: bool = False
    nats: EmbeddedNatsServer | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # service → Prometheus /metrics address

    def start(self, services: tuple[str, ...] = SERVICES) -> Stack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.nats_url:
            self.nats = EmbeddedNatsServer(self.data_dir / "nats", port=self._nats_port()).start()
            self.nats_url = self.nats.url
        try:
            for service in services:
                self.processes[service] = ServiceProcess(service, self.env_for(service)).start()
        except Exception:
            self.stop()
            raise
        return self

    def _nats_port(self) -> int:
        wanted = int(self.base_env.get("ROGATORY_NATS_PORT", "4222")) if self.fixed_ports else 0
        return wanted if wanted and _port_is_free(wanted) else free_port()

    def env_for(self, service: str) -> dict[str, str]:
        env = {**self.base_env, "NATS_URL": self.nats_url, "ROGATORY_DATA_DIR": str(self.data_dir)}
        variable = ADDRESS_VARIABLES[service]
        if not self.fixed_ports or variable not in env:
            default = {"registry": 50051, "delegation": 50052, "assistance": 50053}[service]
            port = default if self.fixed_ports and _port_is_free(default) else free_port()
            env[variable] = f"127.0.0.1:{port}"
        metrics_variable = METRICS_VARIABLES[service]
        if metrics_variable not in env:
            wanted = METRICS_PORTS[service]
            env[metrics_variable] = f"127.0.0.1:{wanted if self.fixed_ports and _port_is_free(wanted) else free_port()}"
        self.metrics[service] = env[metrics_variable]
        return env

    def address(self, service: str) -> str:
        return self.processes[service].address

    def describe(self) -> dict[str, str]:
        return {"nats": self.nats_url, **{s: p.address for s, p in self.processes.items()}}

    def write_run_file(self) -> Path:
        path = self.data_dir / "run.json"
        path.write_text(json.dumps(self.describe(), indent=2))
        return path

    def stop(self) -> dict[str, int]:
        codes = {service: process.stop() for service, process in reversed(list(self.processes.items()))}
        if self.nats:
            self.nats.stop()
        return codes


def _port_is_free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
