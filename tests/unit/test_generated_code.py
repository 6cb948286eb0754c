"""Generated protobuf code is reproducible: regenerating gives the checked-in files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROTOS = Path(__file__).resolve().parents[2] / "protos"


def generated(root: Path) -> list[Path]:
    """The generated modules and stubs under `root`, not the bytecode Python caches beside them."""
    return [p for p in (root / "rogatory").rglob("*_pb2*.py*") if "__pycache__" not in p.parts]


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(PROTOS / "generate.py"), "--out", str(tmp_path)], check=True, capture_output=True)
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in generated(tmp_path)}
    checked_in = {p.relative_to(PROTOS): p.read_bytes() for p in generated(PROTOS)}
    assert fresh, "generator produced nothing"
    assert sorted(fresh) == sorted(checked_in), "generated file set differs: run `make proto`"
    stale = [str(path) for path, content in fresh.items() if checked_in[path] != content]
    assert not stale, f"stale generated code, run `make proto`: {stale}"


def test_every_proto_has_stubs() -> None:
    for proto in (PROTOS / "rogatory").rglob("*.proto"):
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi"):
            assert proto.with_name(proto.stem + suffix).exists(), f"{proto.name}: missing {suffix}"
