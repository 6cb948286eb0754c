"""An outside court system written in Node.js (tests/clients/node/court_system.mjs) against the
real stack: it compiles the contract from protos/ alone, registers a case (retrying with the
same request_id), reads rich errors, delegates a matter, plays the entrusted court, and reads
the events from JetStream through the consumers its NATS user owns, decoding each payload by
its ce-type with protos/rogatory/events/v1/catalog.json. Once on the shared stack (NATS without
credentials), once on a stack whose nats-server enforces `rogatory nats-auth`'s permissions,
connected as the court's NATS user: the consumers it creates and acks are the ones it may.

Skipped with the reason when `node` or `npm` is missing, or when `npm ci` cannot reach the
registry to install the locked packages (package-lock.json) into tests/clients/node."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from services.plumbing.nats_server import EmbeddedNatsServer
from services.tools.launcher import SERVICES_ONLY, Stack

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


def run_court_system(node: Path, stack: Stack, sequence: int, nats_url: str = "", **nats_user: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "REGISTRY_ADDR": stack.address("registry"),
        "DELEGATION_ADDR": stack.address("delegation"),
        "NATS_URL": nats_url or stack.nats_url,
        "CASE_SEQUENCE": str(sequence),
        **nats_user,
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
    check_court_system(out, sequence)
    await check_consumers_deleted(subscriber)


def check_court_system(out: dict[str, Any], sequence: int) -> None:
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


async def check_consumers_deleted(nc: NATS) -> None:
    """The client deleted its consumers: the shared stack is as it was."""
    for name in ("court-gd0112-cases", "court-gd0112-sent"):
        with pytest.raises(NotFoundError):
            await nc.jetstream().consumer_info("ROGATORY", name)


@pytest.fixture(scope="module")
def nats_credentials(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, dict[str, str]]]:
    """What `rogatory nats-auth` writes: the server's authorization block and each party's credentials."""
    out = tmp_path_factory.mktemp("nats-auth")
    subprocess.run([sys.executable, "-m", "services.tools.cli", "nats-auth", "--out", str(out)], check=True, capture_output=True)
    return (out / "auth.conf").read_text(), json.loads((out / "credentials.json").read_text())


@pytest.fixture(scope="module")
async def guarded_stack(
    tmp_path_factory: pytest.TempPathFactory, nats_credentials: tuple[str, dict[str, dict[str, str]]]
) -> AsyncIterator[tuple[Stack, str]]:
    """The services on SQLite, on a nats-server that enforces every party's subject permissions."""
    data = tmp_path_factory.mktemp("guarded-stack")
    auth, users = nats_credentials
    service = users["rogatory-service"]
    with EmbeddedNatsServer(data / "nats", extra_config=auth) as server:
        url = server.url.replace("nats://", f"nats://{service['user']}:{service['password']}@")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "DATABASE_URL", "NATS_URL"))}
        running = Stack(data, nats_url=url, base_env=env).start(SERVICES_ONLY)  # reads no audit log nor statistics
        try:
            yield running, server.url
        finally:
            codes = running.stop()
    assert all(code == 0 for code in codes.values()), f"services did not exit cleanly: {codes}"


async def test_the_node_court_system_keeps_to_its_nats_permissions(
    guarded_stack: tuple[Stack, str], nats_credentials: tuple[str, dict[str, dict[str, str]]]
) -> None:
    node = installed_client()
    stack, url = guarded_stack
    court = nats_credentials[1]["court-gd0112"]
    out = run_court_system(node, stack, 179_001, url, NATS_USER=court["user"], NATS_PASSWORD=court["password"])
    check_court_system(out, 179_001)
    service = nats_credentials[1]["rogatory-service"]
    nc = await nats.connect(url, user=service["user"], password=service["password"])
    try:
        await check_consumers_deleted(nc)
    finally:
        await nc.drain()
