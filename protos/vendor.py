"""Vendor the Google API protos the contract needs into protos/google/, from the installed
googleapis-common-protos (pinned in constraints.txt), with its licence and a README.

Run by `make vendor-protos`; tests/unit/test_vendored_protos.py runs it into a temporary
folder and fails when protos/google/ differs, so the vendored files are never edited by hand
and follow the pinned version. What is vendored is computed, not listed: every `google/…`
file the contract imports, the two every client needs to read rich errors
(`google.rpc.Status` and its details), and whatever those import in turn. The well-known
types (`google/protobuf/*.proto`) are not vendored: they ship with every protoc, with buf and
with protobufjs (which @grpc/proto-loader uses), and a second copy could only drift.
"""

from __future__ import annotations

import argparse
import re
import shutil
from importlib import metadata
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent
DISTRIBUTION = "googleapis-common-protos"
#: Not imported by the contract, but what every client decodes an error's details with.
ERROR_PROTOS = ("google/rpc/status.proto", "google/rpc/error_details.proto")
WELL_KNOWN = "google/protobuf/"
_IMPORT = re.compile(r'^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;', re.MULTILINE)


def googleapis_root() -> Path:
    """The site-packages folder holding the wheel's `google/api`, `google/rpc`, `google/type` protos."""
    return Path(str(metadata.distribution(DISTRIBUTION).locate_file("google/api/field_behavior.proto"))).parents[2]


def imports(proto: Path) -> list[str]:
    return _IMPORT.findall(proto.read_text(encoding="utf-8"))


def contract_imports(root: Path = PROTO_ROOT) -> set[str]:
    """The Google protos (other than well-known types) that protos/rogatory imports."""
    return {i for p in (root / "rogatory").rglob("*.proto") for i in imports(p) if i.startswith("google/")}


def needed(source: Path, roots: set[str]) -> list[str]:
    """`roots` and everything they import from `source`, well-known types aside."""
    wanted, todo = set(), sorted(roots)
    while todo:
        name = todo.pop()
        if name in wanted or name.startswith(WELL_KNOWN):
            continue
        wanted.add(name)
        todo += imports(source / name)
    return sorted(wanted)


def readme(version: str, files: list[str]) -> str:
    listed = "\n".join(f"- `{name}`" for name in files)
    return f"""# Vendored Google API protos

Copied unchanged from the PyPI package `{DISTRIBUTION}` {version} (the version pinned in
`constraints.txt`), which packages the protos of https://github.com/googleapis/googleapis.
Licensed under the Apache License 2.0: see `LICENSE` in this folder (the package's own).

{listed}

They are here so that the contract compiles from this repository alone, with any protoc,
buf, protobufjs or `@grpc/proto-loader` (include path: `protos/`); `make proto`, `buf lint`
and `buf breaking` use these same files. The well-known types (`google/protobuf/*.proto`)
ship with every protoc, with buf and with protobufjs, and are not copied.

Do not edit them. To refresh them after `constraints.txt` moves to another version, or when
the contract imports another Google proto: `make vendor-protos` (`protos/vendor.py`), then
`make proto` and commit. `tests/unit/test_vendored_protos.py` fails while they are stale.
"""


def vendor(out: Path, source: Path | None = None) -> list[str]:
    """Writes `out`/google/… afresh; returns the proto files vendored."""
    source = source or googleapis_root()
    files = needed(source, contract_imports() | set(ERROR_PROTOS))
    target = out / "google"
    shutil.rmtree(target, ignore_errors=True)
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, out / name)
    dist = metadata.distribution(DISTRIBUTION)
    licence = next(f for f in dist.files or () if f.name == "LICENSE")
    shutil.copyfile(Path(str(dist.locate_file(licence))), target / "LICENSE")
    (target / "README.md").write_text(readme(dist.version, files), encoding="utf-8")
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=PROTO_ROOT, help="folder to write google/ into (default: protos/)")
    for name in vendor(parser.parse_args().out):
        print(name)


if __name__ == "__main__":
    main()
