"""The contract compiles from protos/ alone: the Google API protos it needs are vendored in
protos/google, exactly as the pinned googleapis-common-protos ships them, with its licence."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc_tools
from google.protobuf import descriptor_pb2

PROTOS = Path(__file__).resolve().parents[2] / "protos"


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_vendored_protos_are_what_the_pinned_package_ships(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(PROTOS / "vendor.py"), "--out", str(tmp_path)], check=True, capture_output=True)
    fresh, checked_in = tree(tmp_path / "google"), tree(PROTOS / "google")
    assert sorted(fresh) == sorted(checked_in), "vendored file set differs: run `make vendor-protos`"
    stale = [name for name, content in fresh.items() if checked_in[name] != content]
    assert not stale, f"stale vendored protos, run `make vendor-protos`: {stale}"
    assert {"LICENSE", "README.md", "rpc/status.proto", "rpc/error_details.proto"} <= set(checked_in)
    assert b"Apache License" in checked_in["LICENSE"]


def test_the_contract_and_its_error_details_compile_from_protos_alone(tmp_path: Path) -> None:
    """No include path but protos/ and the compiler's own well-known types (google/protobuf)."""
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    files = sorted(str(p.relative_to(PROTOS)) for p in (PROTOS / "rogatory").rglob("*.proto"))
    files += ["google/rpc/status.proto", "google/rpc/error_details.proto"]
    image = tmp_path / "contract.binpb"
    command = [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}", f"-I{well_known}", "--include_imports"]
    result = subprocess.run([*command, f"--descriptor_set_out={image}", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    compiled = {f.name for f in descriptor_pb2.FileDescriptorSet.FromString(image.read_bytes()).file}
    google = {name for name in compiled if name.startswith("google/") and not name.startswith("google/protobuf/")}
    vendored = {str(p.relative_to(PROTOS)) for p in (PROTOS / "google").rglob("*.proto")}
    assert google == vendored  # every vendored file is needed, and nothing else is
