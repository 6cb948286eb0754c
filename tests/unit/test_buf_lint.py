"""`make lint`'s check: the protos pass buf lint (STANDARD, AIP exceptions in buf.yaml)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_protos_pass_buf_lint() -> None:
    make = shutil.which("make")
    assert make, "make is required"
    result = subprocess.run(
        [make, "-s", "buf-lint", f"BIN={Path(sys.executable).parent}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
