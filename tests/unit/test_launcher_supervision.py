"""The launcher's rules, on a fake clock and fake children: restart backoff, and which log
lines reach the terminal. tests/e2e/test_launcher_e2e.py runs the real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from services.plumbing.children import spawn
from services.tools.launcher import LogSink, Supervised, Supervisor, nats_line_level, service_line_level, terminal_level


class FakeChild:
    def __init__(self) -> None:
        self.code: int | None = None
        self.starts = 1

    def restart(self) -> None:
        self.code = None
        self.starts += 1


def test_i15_p8_restarts_back_off_up_to_a_cap_and_from_the_start_after_a_stable_run() -> None:
    now = [0.0]
    said: list[str] = []
    child = FakeChild()
    supervised = Supervised("delegation", lambda: child.code, child.restart, lambda: child.code is None, started_at=0.0)
    supervisor = Supervisor([supervised], say=said.append, clock=lambda: now[0])

    def crash_and_wait(uptime: float) -> float:
        now[0] += uptime
        child.code = -9
        supervisor.check()
        delay = float(re.search(r"restarting in (\S+) s", said[-1])[1])  # type: ignore[index]
        assert said[-1].startswith("delegation exited")
        now[0] += delay - 0.01
        supervisor.check()
        assert child.code == -9, "not restarted before its delay"
        now[0] += 0.01
        supervisor.check()
        assert child.code is None
        return delay

    assert [crash_and_wait(uptime=1) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert said[:2] == ["delegation exited (signal 9); restarting in 1 s (attempt 2)", "delegation is running again"]
    assert said[-2] == "delegation exited (signal 9); restarting in 30 s (attempt 8)"
    assert crash_and_wait(uptime=60) == 1  # up a minute: the next crash starts the backoff again
    assert said[-2:] == ["delegation exited (signal 9); restarting in 1 s (attempt 2)", "delegation is running again"]
    assert child.starts == 9


def test_i15_p8_an_exit_code_is_reported_as_such() -> None:
    said: list[str] = []
    child = FakeChild()
    child.code = 3
    Supervisor([Supervised("registry", lambda: child.code, child.restart, lambda: True, 0.0)], say=said.append).check()
    assert said == ["registry exited (exit code 3); restarting in 1 s (attempt 2)"]


def test_i18_p3_a_service_refused_its_sqlite_file_is_not_restarted() -> None:
    """Exit status 2: another process writes its SQLite file (services/plumbing/host.py). Started
    again it would be refused again; it was restarted forever, with backoff."""
    said: list[str] = []
    now = [0.0]
    child = FakeChild()
    supervisor = Supervisor(
        [Supervised("registry", lambda: child.code, child.restart, lambda: child.code is None, 0.0)],
        say=said.append,
        clock=lambda: now[0],
    )
    child.code = 2
    for _ in range(5):
        supervisor.check()
        now[0] += 60
    assert child.starts == 1
    assert said == ["registry exited (exit code 2: another process writes its database); not restarted"]


def test_i15_p8_terminal_shows_warnings_and_their_tracebacks_the_file_every_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sink = LogSink("delegation", tmp_path / "log" / "delegation.log", terminal_level("warning"), service_line_level)
    lines = [
        "2026-12-07 10:00:00,001 delegation INFO services.plumbing.host: delegation listening on 127.0.0.1:1",
        "READY delegation 127.0.0.1:1",
        "2026-12-07 10:00:01,002 delegation ERROR services.plumbing.rpc: CreateDelegation failed (reference 4f1c)",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "2026-12-07 10:00:02,003 delegation INFO services.delegation.scanner: deadline skipped",
    ]
    for line in lines:
        sink.write(line)
    sink.close()

    assert (tmp_path / "log" / "delegation.log").read_text().splitlines() == lines
    assert capsys.readouterr().out.splitlines() == [f"delegation | {line}" for line in lines[2:5]]


def test_i15_p8_nats_server_levels_and_the_off_switch() -> None:
    assert nats_line_level("[42] 2026/12/07 10:00:00.000001 [WRN] JetStream resource limits") == 30
    assert nats_line_level("[42] 2026/12/07 10:00:00.000001 [INF] Server is ready") == 20
    assert nats_line_level("  continuation") is None
    assert terminal_level("OFF") is None and terminal_level("info") == 20
    with pytest.raises(ValueError, match="ROGATORY_TERMINAL_LOG_LEVEL"):
        terminal_level("loud")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_i15_p8_a_child_started_from_a_short_lived_thread_outlives_that_thread() -> None:
    """The kernel's parent-death signal follows the forking *thread*: spawn forks from one that
    lasts, so a service started from a worker thread is not stopped when that thread ends."""
    started: list[subprocess.Popen[str]] = []
    thread = threading.Thread(target=lambda: started.append(spawn(["sleep", "30"], text=True)))
    thread.start()
    thread.join()
    child = started[0]
    try:
        tid = Path(f"/proc/self/task/{thread.native_id}")
        while tid.exists():  # the OS thread is gone only a moment after join returns
            threading.Event().wait(0.01)
        with pytest.raises(subprocess.TimeoutExpired):
            child.wait(timeout=1)  # a SIGTERM from the thread's end would have killed it by now
    finally:
        child.kill()
        child.wait()


_FORK_HOOK_ARMED: list[bool] = []  # os.register_at_fork hooks cannot be removed: armed only in the test below


def _exit_in_child_if_armed() -> None:
    if _FORK_HOOK_ARMED:
        os._exit(17)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_child_runs_none_of_the_parents_fork_hooks_yet_has_its_death_signal() -> None:
    """The test process and the launcher are threaded, busy with gRPC and carry OpenTelemetry's
    at-fork hooks: run in a forked child before it executed, they crashed or hung it, and
    nats-server or a service "did not start" (CI, under load). spawn's children execute their
    command without running any of the parent's Python code, and still end with the parent."""
    os.register_at_fork(after_in_child=_exit_in_child_if_armed)
    _FORK_HOOK_ARMED.append(True)
    try:
        child = spawn([sys.executable, "-c", "print('executed')"], stdout=subprocess.PIPE, text=True)
        out, _ = child.communicate(timeout=60)
    finally:
        _FORK_HOOK_ARMED.clear()
    assert (child.returncode, out) == (0, "executed\n"), "the parent's fork hook ran in the child"

    ask = "import ctypes; s = ctypes.c_int(); ctypes.CDLL(None).prctl(2, ctypes.byref(s)); print(s.value)"  # PR_GET_PDEATHSIG
    child = spawn([sys.executable, "-c", ask], stdout=subprocess.PIPE, text=True)
    assert child.communicate(timeout=60)[0].strip() == str(int(signal.SIGTERM))
