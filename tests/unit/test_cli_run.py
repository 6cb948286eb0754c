"""`rogatory run` when a service does not start: what the service said, no traceback."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from services.tools.launcher import Stack, StartFailed
from tests.conftest import run_cli

REFUSED = (
    "registry did not start:\n2026-12-08 00:24:28,724 registry ERROR services.plumbing.host: registry not started: "
    "var/registry.db is already written by the registry service (pid 4242): SQLite serves one service process per database file."
)


def test_run_says_why_a_service_did_not_start_without_a_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def refuse(self: Stack, *args: object, **kwargs: object) -> Stack:
        raise StartFailed(REFUSED)  # as Stack.start does, having stopped what it started

    monkeypatch.setattr(Stack, "start", refuse)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # the test process keeps its own handlers
    done = run_cli(["run"], {"ROGATORY_DATA_DIR": str(tmp_path), "PATH": os.environ.get("PATH", "")})
    assert done.returncode == 1
    assert (
        done.stderr.startswith("Not started: registry did not start:")
        and "already written by the registry service" in done.stderr
    )
    assert "Traceback" not in done.stderr
