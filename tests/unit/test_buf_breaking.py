"""`make lint`'s check: the protos keep the wire contract of the last release (buf breaking
against protos/releases/v1.binpb, rules in protos/buf.yaml), and the check does bite."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def buf_breaking(image: Path, source: Path = ROOT / "protos") -> subprocess.CompletedProcess[str]:
    make = shutil.which("make")
    assert make, "make is required"
    variables = [f"BIN={Path(sys.executable).parent}", f"PROTO_SRC={source}", f"PROTO_IMAGE={image}"]
    return subprocess.run([make, "-s", "buf-breaking", *variables], cwd=ROOT, capture_output=True, text=True)


def test_protos_keep_the_released_wire_contract(tmp_path: Path) -> None:
    result = buf_breaking(tmp_path / "protos.binpb")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_renumbered_field_or_a_deleted_rpc_fails_the_check(tmp_path: Path) -> None:
    source = tmp_path / "protos"
    shutil.copytree(ROOT / "protos" / "rogatory", source / "rogatory", ignore=shutil.ignore_patterns("*.py", "*.pyi"))
    registry = source / "rogatory" / "registry" / "v1" / "registry.proto"
    text = registry.read_text()
    text, renumbered = re.subn(r"(message CreateCaseRequest \{.*?string request_id = )3;", r"\g<1>4;", text, flags=re.S)
    text, deleted = re.subn(r"\n\s*rpc CloseCase\(CloseCaseRequest\) returns \(Case\);", "", text)
    assert (renumbered, deleted) == (1, 1), "registry.proto changed: pick another field and RPC to break"
    registry.write_text(text)

    result = buf_breaking(tmp_path / "broken.binpb", source)
    assert result.returncode != 0
    assert 'field "3" with name "request_id" on message "CreateCaseRequest" was deleted' in result.stdout
    assert 'RPC "CloseCase" on service "RegistryService" was deleted' in result.stdout
