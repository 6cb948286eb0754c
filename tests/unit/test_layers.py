"""The layers and the types, enforced in CI as in `make lint`.

The import-linter contracts (pyproject.toml, [tool.importlinter]) must be kept by the code,
and each must break when its rule is broken: every case below copies the source tree,
adds one forbidden import (or module) to the copy and expects exactly that contract to fail,
so a contract that silently stopped matching anything would be noticed. mypy checks the
domain, the plumbing and the Python client strictly ([tool.mypy]); ~15 s without its cache, ~2 s with it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("registry", "delegation", "assistance", "services", "protos/rogatory", "rogatory_client")
SCRIPTS = Path(sys.executable).parent


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    # The copy's packages come first on the path, ahead of the editable install of ROOT.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(cwd), str(cwd / "protos")))}
    command = [str(SCRIPTS / "lint-imports"), "--no-cache", *(arg for c in contracts for arg in ("--contract", c))]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_code_keeps_every_import_contract() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_domain_and_the_plumbing_type_check() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )  # files, strictness and stubs from pyproject.toml
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the source tree and the contracts, to break on purpose."""
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    return tmp_path


def add_line(path: Path, line: str) -> None:
    text = path.read_text() if path.exists() else ""
    path.write_text(f"{text}\n{line}  # noqa\n")


# (contract id, file of the copy, what is added to it)
BREAKS = [
    ("services-layers", "services/plumbing/ids.py", "import services.registry.handlers"),  # plumbing above a service
    ("services-layers", "services/contract/attachments.py", "import services.tools.cli"),  # contract above a tool
    ("services-layers", "services/helpers.py", "x = 1"),  # a module under services/ in no layer
    ("domain-below", "registry/text.py", "import delegation.calendar"),  # the base domain above delegation
    ("domain-below", "assistance/plates.py", "import services.plumbing.ids"),  # the domain above the plumbing
    ("services-independent", "services/assistance/messages.py", "import services.delegation.messages"),
    ("services-independent", "services/registry/handlers.py", "import services.audit.chain"),  # only main may
    ("domain-pure", "delegation/calendar.py", "import sqlalchemy"),
    ("domain-pure", "registry/cases.py", "from rogatory.registry.v1 import registry_pb2"),
    ("domain-pure", "assistance/plates.py", "import grpc"),
    ("plumbing-generic", "services/plumbing/ids.py", "import delegation.calendar"),
    ("client-public", "rogatory_client/errors.py", "import services.plumbing.errors"),  # the client is outside
    ("client-public", "rogatory_client/credentials.py", "import registry.errors"),
    ("client-outside", "services/delegation/handlers.py", "import rogatory_client"),  # services never call by gRPC
    ("no-cycles", "delegation/matters.py", "import delegation.lifecycle"),  # lifecycle builds on matters
    ("no-cycles", "services/assistance/vehicles/settings.py", "import services.assistance.vehicles.wiring"),
]


@pytest.mark.parametrize(("contract", "path", "line"), BREAKS, ids=[f"{c}:{p}" for c, p, _ in BREAKS])
def test_each_contract_breaks_when_its_rule_is_broken(tree: Path, contract: str, path: str, line: str) -> None:
    assert lint_imports(tree, contract).returncode == 0  # the untouched copy keeps it
    add_line(tree / path, line)
    result = lint_imports(tree, contract)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout and "1 broken" in result.stdout, result.stdout
