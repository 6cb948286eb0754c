"""`make run` as an operator runs it: `rogatory run` in a process of its own, on free ports, its
terminal read line by line. A child that crashes is restarted while the others keep serving;
no child outlives a launcher that is itself killed; every child's output is in
`{data_dir}/log/{child}.log`, and its warnings on the terminal, prefixed with its name.

Linux only: the tests find the launcher's children in /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc
from rogatory.registry.v1 import registry_pb2 as pb
from rogatory.registry.v1 import registry_pb2_grpc

from services.plumbing.auth import dev_credentials
from services.plumbing.nats_server import free_port
from services.tools.demo import as_court, delegate_freeze, seed_case_request, until_case_replicated
from services.tools.launcher import MODULES, ServiceProcess

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process table from /proc")

HUANGPU = dev_credentials("court", "gd0112")
STARTED = r"^Addresses written to .*run\.json"  # every service is serving by then
SERVICES = ("registry", "delegation", "assistance", "audit", "turnaround")
CHILDREN = ("nats-server", *SERVICES)


class Launcher:
    """`rogatory run` with its own data directory and ports; its terminal kept line by line."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL", "ROGATORY_"))}
        env.update(
            ROGATORY_DATA_DIR=str(data_dir),
            ROGATORY_NATS_PORT=str(free_port()),
            ROGATORY_TERMINAL_LOG_LEVEL="WARNING",
            PYTHONUNBUFFERED="1",
            # Port 0: each service binds a free one and says which (run.json); kept across restarts.
            **{f"{s.upper()}_ADDR": "127.0.0.1:0" for s in SERVICES},
            **{f"{s.upper()}_METRICS_ADDR": "127.0.0.1:0" for s in SERVICES},
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.tools.cli", "run"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        threading.Thread(target=self._read, daemon=True, name="launcher-terminal").start()
        try:
            self.wait_for(STARTED, timeout=180)
        except AssertionError:
            self.stop()
            raise
        self.addresses: dict[str, str] = json.loads((data_dir / "run.json").read_text())

    def _read(self) -> None:
        assert self.process.stdout
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip())
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        """The first terminal line matching `pattern`; fails if the launcher ends first."""
        wanted = re.compile(pattern)

        def found() -> str | None:
            return next((line for line in self.lines if wanted.search(line)), None)

        with self._changed:
            self._changed.wait_for(lambda: found() is not None or self.process.poll() is not None, timeout)
            line = found()
        assert line is not None, f"no {pattern!r} on the terminal (launcher exit {self.process.poll()}):\n" + "\n".join(
            self.lines[-30:]
        )
        return line

    def children(self) -> dict[str, int]:
        return {name: pid for pid, name in children_of(self.process.pid).items()}

    def stop(self) -> int:
        """SIGTERM as Ctrl-C would; kills (by pid) any child left behind."""
        survivors = children_of(self.process.pid)
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        for pid in survivors:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        return code


def children_of(parent: int) -> dict[int, str]:
    """Live child processes of `parent`: pid → nats-server or the process it is (registry, delegation, assistance, audit, turnaround)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            after_name = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if int(after_name[1]) == parent and after_name[0] != "Z":
            found[int(entry.name)] = _child_name(command)
    return found


def _child_name(command: list[str]) -> str:
    if command[0].endswith("nats-server"):
        return "nats-server"
    module = next((part for part in command if part.startswith("services.")), "?")
    return next((name for name, runs in MODULES.items() if runs == module), "?")


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie lingers where pid 1 does not reap)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)  # polling the process table: there is nothing to wait on
    return condition()


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    running = Launcher(tmp_path_factory.mktemp("make-run") / "var")
    try:
        yield running
    finally:
        code = running.stop()
    assert code == 0, "the launcher did not stop cleanly:\n" + "\n".join(running.lines[-30:])


@pytest.fixture
async def registry(launcher: Launcher) -> AsyncIterator[registry_pb2_grpc.RegistryServiceStub]:
    async with grpc.aio.insecure_channel(launcher.addresses["registry"]) as channel:
        yield registry_pb2_grpc.RegistryServiceStub(channel)


async def court_name(registry: registry_pb2_grpc.RegistryServiceStub) -> str:
    court = await registry.GetCourt(pb.GetCourtRequest(name="courts/gd0112"), metadata=HUANGPU, timeout=10)
    return court.name


async def test_i15_p8_a_killed_service_is_restarted_while_the_others_keep_serving(
    launcher: Launcher, registry: registry_pb2_grpc.RegistryServiceStub
) -> None:
    before = launcher.children()
    os.kill(before["delegation"], signal.SIGKILL)

    assert await court_name(registry) == "courts/gd0112"  # the registry serves while delegation is down
    await asyncio.to_thread(launcher.wait_for, r"^delegation exited \(signal 9\); restarting in 1 s \(attempt 2\)$")
    await asyncio.to_thread(launcher.wait_for, r"^delegation is running again$")
    async with grpc.aio.insecure_channel(launcher.addresses["delegation"]) as channel:
        listed = await delegation_pb2_grpc.DelegationServiceStub(channel).ListDelegations(
            dg.ListDelegationsRequest(parent="courts/gd0112"), metadata=HUANGPU, timeout=10
        )
    assert listed is not None  # the restarted delegation service answers on its old address
    after = launcher.children()
    assert after["delegation"] != before["delegation"]
    assert {name: after[name] for name in ("nats-server", "registry", "assistance", "audit", "turnaround")} == {
        name: before[name] for name in ("nats-server", "registry", "assistance", "audit", "turnaround")
    }, "only the crashed service was restarted"
    assert await court_name(registry) == "courts/gd0112"


async def test_i15_p8_a_killed_nats_server_is_restarted_and_events_flow_again(
    launcher: Launcher, registry: registry_pb2_grpc.RegistryServiceStub
) -> None:
    os.kill(launcher.children()["nats-server"], signal.SIGKILL)

    await asyncio.to_thread(launcher.wait_for, r"^nats-server exited \(signal 9\); restarting in 1 s \(attempt 2\)$")
    await asyncio.to_thread(launcher.wait_for, r"^nats-server is running again$")
    # The services reconnect by themselves: a case registered now reaches the delegation
    # service by event, through the restarted server and its JetStream store.
    case = await registry.CreateCase(seed_case_request(int(time.time()) % 900_000 + 1), metadata=HUANGPU, timeout=10)
    async with as_court("gd0112", launcher.addresses) as huangpu:
        delegation = await until_case_replicated(lambda: delegate_freeze(huangpu, case.name), attempts=300)
    assert delegation.case == case.name
    # The services' warnings about the lost connection: on the terminal, prefixed, and in their files.
    await asyncio.to_thread(launcher.wait_for, r"^registry \| .* WARNING .*NATS disconnected")
    assert "NATS disconnected" in (launcher.data_dir / "log" / "registry.log").read_text()


async def test_i15_p8_every_child_logs_to_its_file_and_only_warnings_reach_the_terminal(
    launcher: Launcher, registry: registry_pb2_grpc.RegistryServiceStub
) -> None:
    assert await court_name(registry) == "courts/gd0112"
    logs = launcher.data_dir / "log"
    for child in CHILDREN:
        text = (logs / f"{child}.log").read_text()
        expected = "Server is ready" if child == "nats-server" else f"{child} INFO services.plumbing.host: {child} listening on"
        assert expected in text, f"{child}.log lacks {expected!r}"
    # The terminal shows WARNING and above only: a service's INFO line is in its file, not there.
    assert not [line for line in launcher.lines if " INFO " in line]
    assert all(line.split(" | ", 1)[0] in CHILDREN for line in launcher.lines if " | " in line)


def test_i15_p8_no_child_outlives_a_killed_launcher(tmp_path: Path) -> None:
    running = Launcher(tmp_path / "var")
    children = running.children()
    try:
        assert sorted(children) == sorted(CHILDREN)
        running.process.kill()  # SIGKILL: the launcher cannot stop anything itself
        running.process.wait()
        assert wait_until(lambda: not any(alive(pid) for pid in children.values()), timeout=60), {
            name: pid for name, pid in children.items() if alive(pid)
        }
    finally:
        for pid in children.values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_service_stopped_before_it_is_ready_exits_cleanly(tmp_path: Path) -> None:
    """SIGTERM while a service still starts (here: waiting for a NATS that never answers) ends it
    at once with exit 0, as after READY: a launcher stopping mid-start gets no killed children."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL", "ROGATORY_"))}
    env.update(
        NATS_URL=f"nats://127.0.0.1:{free_port()}",  # nobody listens
        ROGATORY_DATA_DIR=str(tmp_path),
        REGISTRY_ADDR=f"127.0.0.1:{free_port()}",
        REGISTRY_METRICS_ADDR=f"127.0.0.1:{free_port()}",
    )
    service = ServiceProcess("registry", env)
    service.spawn()
    try:
        assert wait_until(lambda: any("NATS error" in line for line in service.output), timeout=60), service.output[-20:]
        assert not service.is_serving()
        assert service.stop(timeout=30) == 0, service.output[-20:]
        assert any("registry stopped while starting" in line for line in service.output)
    finally:
        service.kill()


def test_a_launcher_stopped_while_starting_stops_its_children(tmp_path: Path) -> None:
    """`rogatory run` takes SIGTERM (Ctrl-C) before its services are ready: it stops them all
    and exits 0, and nothing is left running."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL", "ROGATORY_"))}
    env.update(
        NATS_URL=f"nats://127.0.0.1:{free_port()}",  # nobody listens: the services never get ready
        ROGATORY_DATA_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
        **{f"{s.upper()}_ADDR": f"127.0.0.1:{free_port()}" for s in SERVICES},
        **{f"{s.upper()}_METRICS_ADDR": f"127.0.0.1:{free_port()}" for s in SERVICES},
    )
    launcher = subprocess.Popen(
        [sys.executable, "-m", "services.tools.cli", "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    children: dict[int, str] = {}
    try:
        logs = tmp_path / "var" / "log"

        def starting() -> bool:  # every service is up to its NATS connection
            return all("NATS error" in _text(logs / f"{s}.log") for s in SERVICES)

        assert wait_until(starting, timeout=90)
        children = children_of(launcher.pid)
        assert sorted(children.values()) == sorted(SERVICES)
        launcher.send_signal(signal.SIGTERM)
        output, _ = launcher.communicate(timeout=60)
        assert launcher.returncode == 0, output
        assert "Stopped while starting." in output
        assert not [pid for pid in children if alive(pid)]
        for service in SERVICES:
            assert f"{service} stopped while starting" in _text(logs / f"{service}.log")
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
        for pid in children:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def _text(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""
