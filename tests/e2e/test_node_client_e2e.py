"""An outside court system written in Node.js (tests/clients/node/court_system.mjs) against the
real stack: it compiles the contract from protos/ alone, registers a case (retrying with the
same request_id), reads rich errors, delegates a matter, plays the entrusted court, and reads
the events from JetStream through the consumers its NATS user owns, decoding each payload by
its ce-type with protos/rogatory/events/v1/catalog.json.

Skipped with the reason when `node` or `npm` is missing, or when `npm ci` cannot reach the
registry to install the locked packages (package-lock.json) into tests/clients/node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from services.tools.launcher import Stack

CLIENT = Path(__file__).resolve().parents[1] / "clients" / "node"
NETWORK_ERRORS = ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENETUNREACH", "network")


def installed_client() -> Path:
    """tests/clients/node with its locked packages; `npm ci` when node_modules is missing or older than the lock."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are needed for the Node.js client (Node 20 is on the CI machines)")
    installed = CLIENT / "node_modules" / ".package-lock.json"  # npm writes it on every install
    lock = CLIENT / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return Path(node)
    command = [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"]
    result = subprocess.run(command, cwd=CLIENT, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        if any(marker in result.stderr for marker in NETWORK_ERRORS):
            pytest.skip(f"npm ci could not reach the registry: {result.stderr.strip().splitlines()[-1:]}")
        pytest.fail(f"npm ci failed:\n{result.stderr}")
    return Path(node)


def run_court_system(node: Path, stack: Stack, sequence: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "REGISTRY_ADDR": stack.address("registry"),
        "DELEGATION_ADDR": stack.address("delegation"),
        "NATS_URL": stack.nats_url,
        "CASE_SEQUENCE": str(sequence),
    }
    result = subprocess.run([str(node), "court_system.mjs"], cwd=CLIENT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


async def test_a_node_court_system_delegates_a_matter_and_reads_its_events(
    stack: Stack, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    node = installed_client()
    sequence = 170_000 + next(sequence_numbers)
    out = run_court_system(node, stack, sequence)

    case_name = f"courts/gd0112/cases/2023-enf-{sequence}"
    assert out["case"] == {
        "name": case_name,
        "case_number": f"（2023）粤0112执{sequence}号",
        "retry_same_request_id": case_name,  # the same request again: the first answer
    }
    reused = out["request_id_reused"]
    assert (reused["code"], reused["reason"]) == ("ALREADY_EXISTS", "REQUEST_ID_IN_USE")
    invalid = out["invalid_case"]
    assert (invalid["code"], invalid["reason"], invalid["domain"]) == (
        "INVALID_ARGUMENT",
        "SEQUENCE_LEADING_ZERO",
        "rogatory.gov.cn",
    )
    assert [(v["field"], v["reason"]) for v in invalid["field_violations"]] == [
        ("case.case_number", "SEQUENCE_LEADING_ZERO"),
        ("case.parties[1].id_number", "BAD_ID_NUMBER"),
    ]

    matter = out["delegation"]
    assert matter["name"].startswith("courts/gd0112/delegations/")
    assert matter["states"] == ["SUBMITTED", "ACKNOWLEDGED", "COMPLETED"]
    assert (matter["fetched_state"], matter["completed_amount_fen"]) == ("COMPLETED", "700000000")

    cases, sent = out["events"]["cases"], out["events"]["sent"]
    assert (cases["consumer"], cases["filter"]) == ("court-gd0112-cases", "rogatory.v1.case.gd0112.>")
    assert [(e["type"], e["payload"], e["name"]) for e in cases["events"]] == [
        ("rogatory.case.registered.v1", "rogatory.events.v1.CaseRegistered", case_name)
    ]
    assert (sent["consumer"], sent["filter"]) == ("court-gd0112-sent", "rogatory.v1.delegation.gd0112.*.>")
    assert [(e["type"], e["payload"], e["state"], e["action"]) for e in sent["events"]] == [
        ("rogatory.delegation.submitted.v1", "rogatory.events.v1.DelegationSubmitted", "SUBMITTED", None),
        ("rogatory.delegation.acknowledged.v1", "rogatory.events.v1.DelegationTransitioned", "ACKNOWLEDGED", "ACKNOWLEDGE"),
        ("rogatory.delegation.completed.v1", "rogatory.events.v1.DelegationTransitioned", "COMPLETED", "COMPLETE"),
    ]
    assert {e["name"] for e in sent["events"]} == {matter["name"]}
    assert {e["subject"].rsplit(".", 2)[1] for e in sent["events"]} == {"ha0122"}

    jsm = subscriber.jetstream()  # the client deleted its consumers: the shared stack is as it was
    for name in ("court-gd0112-cases", "court-gd0112-sent"):
        with pytest.raises(NotFoundError):
            await jsm.consumer_info("ROGATORY", name)
