"""Regenerate the Python code and type stubs for every .proto under protos/rogatory.

Run by `make proto`; tests/unit/test_generated_code.py runs it into a temporary folder and
fails when the checked-in output differs, so generated code is never edited by hand.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

PROTO_ROOT = Path(__file__).resolve().parent
GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py", "_pb2_grpc.pyi")


def include_paths() -> list[str]:
    """protos/ alone (Google's API protos are vendored in protos/google), and the compiler's
    own well-known types (google/protobuf/*.proto), which grpc_tools ships as every protoc does."""
    return [str(PROTO_ROOT), str(Path(grpc_tools.__file__).parent / "_proto")]


def proto_files() -> list[str]:
    return sorted(str(p.relative_to(PROTO_ROOT)) for p in (PROTO_ROOT / "rogatory").rglob("*.proto"))


def plugin_dir() -> str:
    return str(Path(sys.executable).parent)


def generate(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    args = ["grpc_tools.protoc", *(f"-I{p}" for p in include_paths())]
    args += [
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        f"--mypy_out={out_dir}",
        f"--mypy_grpc_out={out_dir}",
        *proto_files(),
    ]
    env_path = os.environ.get("PATH", "")
    os.environ["PATH"] = plugin_dir() + os.pathsep + env_path  # protoc finds protoc-gen-mypy here
    try:
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed")
    finally:
        os.environ["PATH"] = env_path
    _add_package_markers(out_dir / "rogatory")
    return generated_files(out_dir)


def _add_package_markers(root: Path) -> None:
    for folder in [root, *(p for p in root.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        (folder / "__init__.py").touch()


def generated_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / "rogatory").rglob("*") if p.name.endswith(GENERATED_SUFFIXES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_ROOT, help="output root (default: beside the protos)")
    for path in generate(parser.parse_args().out):
        print(path)


if __name__ == "__main__":
    main()
