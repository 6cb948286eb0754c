"""The layers and the types, enforced in CI as in `make lint`.

The import-linter contracts (pyproject.toml, [tool.importlinter]) must be kept by the code,
and each must break when its rule is broken: every case below copies the source tree,
adds one forbidden import (or module) to the copy and expects exactly that contract to fail,
so a contract that silently stopped matching anything would be noticed. The cases share one
copy (each undoes its change) and one Python process that runs lint-imports on it for each
check as the command does, the graph built from the files each time: a lint-imports command
costs ~0.45 s of CPU, ~0.3 s of it Python starting and importing the linter. mypy checks the
domain, the plumbing and the Python client strictly ([tool.mypy]); ~15 s without its cache, ~2 s with it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("registry", "delegation", "assistance", "services", "protos/rogatory", "rogatory_client")
SCRIPTS = Path(sys.executable).parent


def tree_env(cwd: Path) -> dict[str, str]:
    # The copy's packages come first on the path, ahead of the editable install of ROOT.
    return {**os.environ, "PYTHONPATH": os.pathsep.join((str(cwd), str(cwd / "protos")))}


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess[str]:
    env = tree_env(cwd)
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


# Reads a contract id a line and answers a JSON line: what `lint-imports --no-cache --contract
# <id>` run in the tree would exit with and print (importlinter.cli.lint_imports is that command).
LINTER = """
import contextlib, io, json, sys
from importlinter import cli
answer = sys.stdout
for contract in sys.stdin:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        code = cli.lint_imports(limit_to_contracts=(contract.strip(),), no_cache=True)
    answer.write(json.dumps({"code": code, "output": printed.getvalue()}) + "\\n")
    answer.flush()
"""


class Linter:
    """One Python process that runs lint-imports on the tree when asked, as the command would."""

    def __init__(self, cwd: Path):
        self.process = subprocess.Popen(
            [sys.executable, "-c", LINTER], cwd=cwd, env=tree_env(cwd), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def check(self, contract: str) -> tuple[int, str]:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(contract + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the linter process ended (exit code {self.process.wait(10)})"
        answer = json.loads(line)
        return answer["code"], answer["output"]

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        assert self.process.wait(60) == 0


@pytest.fixture(scope="module")
def copied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Linter]]:
    """A copy of the source tree and the contracts, and a linter of it."""
    root = tmp_path_factory.mktemp("tree")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", root)
    linter = Linter(root)
    yield root, linter
    linter.close()


@pytest.fixture
def tree(copied: tuple[Path, Linter]) -> Iterator[tuple[Path, Linter]]:
    """The copy, to break on purpose: what a test changes in it is undone afterwards."""
    root, _ = copied
    before = {path: path.read_bytes() for path in root.rglob("*.py")}
    yield copied
    for path in root.rglob("*.py"):
        if path not in before:
            path.unlink()
        elif path.read_bytes() != before[path]:
            path.write_bytes(before[path])


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
def test_each_contract_breaks_when_its_rule_is_broken(tree: tuple[Path, Linter], contract: str, path: str, line: str) -> None:
    root, linter = tree
    code, output = linter.check(contract)
    assert code == 0, output  # the untouched copy keeps it
    add_line(root / path, line)
    code, output = linter.check(contract)
    assert code == 1, output
    assert "BROKEN" in output and "1 broken" in output, output
