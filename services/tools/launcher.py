"""Starts the services and their workers (the audit appender, the turnaround projector) as
processes, and, without NATS_URL, an embedded nats-server.

Used by `make run` and by the end-to-end tests, so both exercise the real processes. Under
`make run` a `Supervisor` restarts a child that exits, with backoff. Every child's output
goes to `{data_dir}/log/{child}.log`; `make run` also shows the lines at or above
ROGATORY_TERMINAL_LOG_LEVEL on the terminal, prefixed with the child's name. Children end
with the launcher, even when it is killed (services/plumbing/children.py).
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from services.plumbing.children import EXIT_SOLE_WRITER_TAKEN, spawn
from services.plumbing.nats_server import EmbeddedNatsServer, free_port

#: The processes of a stack: the three services, then the workers that take per-event work off
#: their request processes (issue 18): the audit appender and the turnaround projector.
SERVICES = ("registry", "delegation", "assistance", "audit", "turnaround")
#: The services without their workers: a stack whose users read neither the audit log nor the
#: turnaround statistics (end-to-end tests of other features; each worker costs a start-up).
SERVICES_ONLY = SERVICES[:3]
#: The module each runs (`python -m`): its composition root.
MODULES = {
    "registry": "services.registry.main",
    "delegation": "services.delegation.main",
    "assistance": "services.assistance.main",
    "audit": "services.audit.main",
    "turnaround": "services.delegation.projector",
}
NATS_SERVER = "nats-server"
ADDRESS_VARIABLES = {s: f"{s.upper()}_ADDR" for s in SERVICES}
METRICS_VARIABLES = {s: f"{s.upper()}_METRICS_ADDR" for s in SERVICES}
DEFAULT_PORTS = {"registry": 50051, "delegation": 50052, "assistance": 50053, "audit": 50054, "turnaround": 50055}
# 9464: OpenTelemetry's Prometheus default
METRICS_PORTS = {"registry": 9464, "delegation": 9465, "assistance": 9466, "audit": 9467, "turnaround": 9468}

# --- logs ----------------------------------------------------------------------------------------

# A record as services/plumbing/host.py formats it: "2026-12-07 10:00:00,123 delegation WARNING name: …".
_SERVICE_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \S+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
# nats-server's: "[1234] 2026/12/07 10:00:00.123456 [WRN] …".
_NATS_RECORD = re.compile(r"\[\d+\] \S+ \S+ \[(TRC|DBG|INF|WRN|ERR|FTL)\] ")
_NATS_LEVELS = {"TRC": logging.DEBUG, "DBG": logging.DEBUG, "INF": logging.INFO, "WRN": logging.WARNING}
_TERMINAL = threading.Lock()  # one child's line is never cut by another's


def service_line_level(line: str) -> int | None:
    """The level a service's output line starts, or None for a continuation line."""
    if match := _SERVICE_RECORD.match(line):
        return logging.getLevelNamesMapping()[match[1]]
    if line.startswith("Traceback (most recent call last)"):  # an uncaught exception
        return logging.ERROR
    return None


def nats_line_level(line: str) -> int | None:
    if match := _NATS_RECORD.match(line):
        return _NATS_LEVELS.get(match[1], logging.ERROR)
    return None


def terminal_level(name: str) -> int | None:
    """ROGATORY_TERMINAL_LOG_LEVEL: a logging level name, or OFF for nothing on the terminal."""
    if name.upper() == "OFF":
        return None
    levels = logging.getLevelNamesMapping()
    if name.upper() not in levels:
        raise ValueError(f"ROGATORY_TERMINAL_LOG_LEVEL={name!r}: give DEBUG, INFO, WARNING, ERROR, CRITICAL or OFF")
    return levels[name.upper()]


class LogSink:
    """One child's output: every line to its log file (appended across restarts and runs);
    lines at or above `terminal_level` also on the terminal as `{name} | {line}`. A line that
    starts no record (a traceback's body) has the level of the record it continues."""

    def __init__(self, name: str, path: Path, terminal_level: int | None, level_of: Callable[[str], int | None]):
        self.name = name
        self.path = path
        self.terminal_level = terminal_level
        self.level_of = level_of
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", buffering=1)  # line-buffered: `tail -f` sees each line
        self._lock = threading.Lock()
        self._level = logging.WARNING  # output before the first record (an import error) is shown

    def write(self, line: str) -> None:
        with self._lock:
            self._level = self.level_of(line) or self._level
            if not self._file.closed:
                self._file.write(line + "\n")
            show = self.terminal_level is not None and self._level >= self.terminal_level
        if show:
            with _TERMINAL:
                print(f"{self.name} | {line}", flush=True)

    def note(self, text: str) -> None:
        """A launcher's line in the file only, e.g. where a restarted process begins."""
        with self._lock:
            self._level = logging.WARNING
            if not self._file.closed:
                self._file.write(f"--- {datetime.now().astimezone():%Y-%m-%d %H:%M:%S%z} launcher: {text}\n")

    def close(self) -> None:
        with self._lock:
            self._file.close()


# --- processes -----------------------------------------------------------------------------------


class StartAborted(Exception):
    """The stack was asked to stop (a signal) while its services were starting."""


class StartFailed(RuntimeError):
    """A service ended, or did not say READY in time, while the stack started; the message ends
    with the last lines it printed (why it ended, e.g. another process writes its SQLite file)."""


@dataclass
class ServiceProcess:
    service: str
    env: dict[str, str]
    process: subprocess.Popen[str] | None = None
    address: str = ""
    metrics_address: str = ""  # Prometheus /metrics, when it serves them
    output: list[str] = field(default_factory=list)
    sink: LogSink | None = None
    _ready: threading.Event = field(default_factory=threading.Event, repr=False)
    _serving: bool = False
    _terminated: bool = False
    _pump: threading.Thread | None = field(default=None, repr=False)

    def start(self, timeout: float = 60.0) -> ServiceProcess:
        self.spawn()
        self.wait_serving(time.monotonic() + timeout)
        return self

    def wait_serving(self, deadline: float, abort: Callable[[], bool] = lambda: False) -> None:
        """Until the process says READY. Raises StartAborted when `abort()` turns true (checked
        every 0.1 s), and StartFailed, having killed it, when it ends first or `deadline`
        (time.monotonic()) passes."""
        while not self._ready.wait(0.1):
            if abort():
                raise StartAborted(f"{self.service} was still starting")
            if time.monotonic() > deadline:
                break
        if not self.is_serving():
            self.kill()
            raise StartFailed(f"{self.service} did not start:\n" + "\n".join(self.output[-40:]))

    def spawn(self) -> None:
        """Starts the process without waiting for it to serve (a supervisor's restart)."""
        self._ready, self._serving, self._terminated = threading.Event(), False, False
        self.process = spawn(
            [sys.executable, "-m", MODULES[self.service]],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
            # Own session: a terminal's Ctrl-C reaches only the launcher, which then stops the
            # services before NATS, so their last events are still flushed.
            start_new_session=True,
        )
        if self.sink:
            self.sink.note(f"{self.service} started, pid {self.process.pid}")
        self._pump = threading.Thread(
            target=self._pump_output, args=(self.process, self._ready), daemon=True, name=f"{self.service}-log"
        )
        self._pump.start()

    def wait_ready(self, timeout: float) -> bool:
        return self._ready.wait(timeout) and self._serving

    def is_serving(self) -> bool:
        """The current process said READY."""
        return self._serving and self._ready.is_set()

    def _pump_output(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stdout
        for raw in process.stdout:
            line = raw.rstrip()
            self.output.append(line)
            if len(self.output) > 2000:
                del self.output[:1000]
            if self.sink:
                self.sink.write(line)
            if line.startswith(f"READY {self.service} "):
                self._bound(line)
                self._serving = True
                ready.set()
        ready.set()  # the process ended: wake the waiter, which sees it is not serving

    def _bound(self, ready_line: str) -> None:
        """The addresses the READY line says the service bound (services/plumbing/host.py
        `ready_line`), kept in its environment too: a restart binds the same ones, which its
        callers and a port 0 in the environment would not find."""
        _, _, self.address, *rest = ready_line.split()
        self.env[ADDRESS_VARIABLES[self.service]] = self.address
        for item in rest:
            if item.startswith("metrics="):
                self.metrics_address = item.removeprefix("metrics=")
                self.env[METRICS_VARIABLES[self.service]] = self.metrics_address

    def exit_code(self) -> int | None:
        return self.process.poll() if self.process else None

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (unless `terminate` sent it), then wait for the graceful shutdown; returns the exit code."""
        if not self.process:
            return 0
        self.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        if self._pump:
            self._pump.join(5)  # the last lines reach the log file before it is closed
        return code

    def terminate(self) -> None:
        """SIGTERM once: the service drains, flushes and exits (before READY too: it has its handler from the start)."""
        if self.process and self.process.poll() is None and not self._terminated:
            self._terminated = True
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@dataclass
class Stack:
    """NATS (embedded unless given) plus the services and the workers, on free or configured ports."""

    data_dir: Path
    nats_url: str = ""
    base_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    fixed_ports: bool = False
    terminal_level: int | None = None  # `make run`: children's lines at or above it on the terminal
    nats: EmbeddedNatsServer | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    sinks: dict[str, LogSink] = field(default_factory=dict)

    def start(
        self, services: tuple[str, ...] = SERVICES, *, timeout: float = 60.0, abort: Callable[[], bool] = lambda: False
    ) -> Stack:
        """NATS, then the services side by side (each imports, migrates and connects while the
        others do); returns once every one says READY. When one does not start, or `abort()`
        turns true (a signal to the launcher), stops what was started and raises."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if not self.nats_url:
            sink = self._sink(NATS_SERVER, nats_line_level)
            self.nats = EmbeddedNatsServer(self.data_dir / "nats", port=self._nats_port(), on_line=sink.write)
            self.start_nats()
            self.nats_url = self.nats.url
        try:
            for service in services:
                process = ServiceProcess(service, self.env_for(service), sink=self._sink(service, service_line_level))
                self.processes[service] = process
                process.spawn()
            deadline = time.monotonic() + timeout
            for process in self.processes.values():
                process.wait_serving(deadline, abort)
        except BaseException:
            self.stop()
            raise
        return self

    def start_nats(self) -> None:
        """(Re)starts the embedded nats-server: same port, same JetStream store."""
        assert self.nats
        self.sinks[NATS_SERVER].note(f"{NATS_SERVER} starting on port {self.nats.port}")
        self.nats.start()

    def log_path(self, child: str) -> Path:
        return self.data_dir / "log" / f"{child}.log"

    def _sink(self, child: str, level_of: Callable[[str], int | None]) -> LogSink:
        self.sinks[child] = LogSink(child, self.log_path(child), self.terminal_level, level_of)
        return self.sinks[child]

    def _nats_port(self) -> int:
        wanted = int(self.base_env.get("ROGATORY_NATS_PORT", "4222")) if self.fixed_ports else 0
        return wanted if wanted and _port_is_free(wanted) else free_port()

    def env_for(self, service: str) -> dict[str, str]:
        """The service's environment. Its gRPC and metrics ports are 0 (the service binds free
        ones and says which, see ServiceProcess._bound) unless `make run` has its usual ones
        free: a port chosen here and bound seconds later, after the imports, may be taken by
        then (another test's server, any outgoing connection's local port)."""
        env = {**self.base_env, "NATS_URL": self.nats_url, "ROGATORY_DATA_DIR": str(self.data_dir)}
        variable = ADDRESS_VARIABLES[service]
        if not self.fixed_ports or variable not in env:
            default = DEFAULT_PORTS[service]
            env[variable] = f"127.0.0.1:{default if self.fixed_ports and _port_is_free(default) else 0}"
        metrics_variable = METRICS_VARIABLES[service]
        if metrics_variable not in env:
            wanted = METRICS_PORTS[service]
            env[metrics_variable] = f"127.0.0.1:{wanted if self.fixed_ports and _port_is_free(wanted) else 0}"
        return env

    def address(self, service: str) -> str:
        return self.processes[service].address

    @property
    def metrics(self) -> dict[str, str]:
        """service → the address of its Prometheus /metrics."""
        return {service: process.metrics_address for service, process in self.processes.items()}

    def describe(self) -> dict[str, str]:
        return {"nats": self.nats_url, **{s: p.address for s, p in self.processes.items()}}

    def write_run_file(self) -> Path:
        path = self.data_dir / "run.json"
        path.write_text(json.dumps(self.describe(), indent=2))
        return path

    def stop(self) -> dict[str, int]:
        """SIGTERM to every service at once, each drains and flushes while the others do; NATS
        stops after them all. Returns each service's exit code."""
        for process in self.processes.values():
            process.terminate()
        codes = {service: process.stop() for service, process in self.processes.items()}
        if self.nats:
            self.nats.stop()
        for sink in self.sinks.values():
            sink.close()
        return codes


# --- supervision (`make run`) --------------------------------------------------------------------


@dataclass(frozen=True)
class RestartPolicy:
    first_delay: float = 1.0
    max_delay: float = 30.0
    stable_after: float = 60.0  # a child up this long starts the backoff again when it next exits

    def delay(self, attempt: int) -> float:
        """Seconds before start number `attempt` (2 is the first restart): 1, 2, 4 … up to 30."""
        return min(self.max_delay, self.first_delay * 2 ** (attempt - 2))


@dataclass
class Supervised:
    """One child as the supervisor sees it."""

    name: str
    exit_code: Callable[[], int | None]  # None while it runs
    restart: Callable[[], None]
    serving: Callable[[], bool]
    started_at: float
    attempt: int = 1  # starts in the current run of failures; the first start is 1
    restart_at: float | None = None
    announced: bool = True
    given_up: bool = False  # it exited saying a restart would fail the same way


def _say(text: str) -> None:
    with _TERMINAL:
        print(text, flush=True)


class Supervisor:
    """Keeps every child of a started stack running: one that exits (crash, OOM kill, SIGKILL)
    is restarted on the same ports after a capped exponential backoff, and the terminal says so;
    the others keep serving meanwhile."""

    def __init__(
        self,
        children: list[Supervised],
        policy: RestartPolicy = RestartPolicy(),
        say: Callable[[str], None] = _say,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.children, self.policy, self.say, self.clock = children, policy, say, clock

    @classmethod
    def of(cls, stack: Stack) -> Supervisor:
        now = time.monotonic()
        children = [Supervised(name, p.exit_code, p.spawn, p.is_serving, now) for name, p in stack.processes.items()]
        if stack.nats:
            nats = stack.nats
            children.insert(0, Supervised(NATS_SERVER, nats.exit_code, stack.start_nats, nats.running, now))
        return cls(children)

    def run(self, stopping: Callable[[], bool], interval: float = 0.2) -> None:
        while not stopping():
            self.check()
            time.sleep(interval)  # wakes up to notice a signal, an exit or a restart that is due

    def check(self) -> None:
        now = self.clock()
        for child in self.children:
            if child.restart_at is None:
                self._notice_exit(child, now)
            elif now >= child.restart_at:
                self._restart(child, now)
            if not child.announced and child.serving():
                child.announced = True
                self.say(f"{child.name} is running again")

    def _notice_exit(self, child: Supervised, now: float) -> None:
        code = child.exit_code()
        if code is None or child.given_up:
            return
        if code == EXIT_SOLE_WRITER_TAKEN:  # another process writes its SQLite file: it would be refused again
            child.given_up = True
            self.say(f"{child.name} exited (exit code {code}: another process writes its database); not restarted")
            return
        child.attempt = 2 if now - child.started_at >= self.policy.stable_after else child.attempt + 1
        delay = self.policy.delay(child.attempt)
        self.say(f"{child.name} exited ({_describe(code)}); restarting in {delay:g} s (attempt {child.attempt})")
        child.restart_at = now + delay

    def _restart(self, child: Supervised, now: float) -> None:
        child.restart_at, child.started_at, child.announced = None, now, False
        try:
            child.restart()
        except Exception as error:  # noqa: BLE001 - it stays down: the next check backs off again
            self.say(f"{child.name} did not start: {error}")


def _describe(code: int) -> str:
    return f"signal {-code}" if code < 0 else f"exit code {code}"


def _port_is_free(port: int) -> bool:
    import socket  # noqa: PLC0415

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True
