"""`rogatory-admin` run in-process (typer's CliRunner) against a test stack: what the
installed command prints, without starting a Python per call.

Its output is not a terminal, like a pipe or a redirection: tables keep every column.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor

from typer.testing import CliRunner

from services.tools.admin.cli import app
from services.tools.launcher import Stack


def admin(stack: Stack, *args: str, credential: str = "admin:ops", check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs `rogatory-admin ARGS` as `credential`; exit code 0 asserted unless `check=False`.

    In a thread of its own: the command runs its own event loop (asyncio.run), which may
    not be started from a test's running loop.
    """
    env = {"DELEGATION_ADDR": stack.address("delegation"), "ROGATORY_CREDENTIAL": credential, "ROGATORY_LANG": None}
    with ThreadPoolExecutor(1) as thread:
        result = thread.submit(CliRunner().invoke, app, list(args), env=env, catch_exceptions=False).result()
    done = subprocess.CompletedProcess(["rogatory-admin", *args], result.exit_code, result.stdout, result.stderr)
    if check:
        assert done.returncode == 0, done.stderr
    return done
