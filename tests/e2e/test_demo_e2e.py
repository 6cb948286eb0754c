"""`make demo` against a stack that already holds a court's real work: the demo moves time
(its deadline scan 30 days ahead) only for the matter it created itself."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import grpc
from nats.aio.client import Client as NATS
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc

from services.plumbing.auth import dev_credentials
from services.plumbing.subscriber import read_events
from services.tools.demo import as_court, delegate_freeze, until_case_replicated
from services.tools.launcher import Stack
from tests.e2e.test_delegation_assistance_e2e import register_case

REQUESTING = dev_credentials("court", "gd0112")


def run_demo(stack: Stack) -> str:
    """`rogatory demo` as `make demo` runs it: addresses from the stack's run.json."""
    stack.write_run_file()
    env = {**stack.processes["delegation"].env}  # the delegation service's own database and NATS
    for service in ("registry", "delegation", "assistance"):
        env[f"{service.upper()}_ADDR"] = stack.address(service)
    done = subprocess.run(
        [sys.executable, "-m", "services.tools.cli", "demo"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


async def events_about(subscriber: NATS, name: str, since: datetime) -> list[str]:
    """Ids of every event since `since` whose payload names the delegation `name`."""
    events = await read_events(subscriber.jetstream(), "ROGATORY", "rogatory.v1.>", since=since, timeout=2.0)
    return [e.event_id for e in events if name.encode() in e.data]


async def test_i15_p12_the_demo_leaves_a_matter_a_court_created_by_hand_untouched(
    stack: Stack, subscriber: NATS, sequence_numbers: Iterator[int]
) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 800_000 + next(sequence_numbers))
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel, as_court("gd0112", stack.describe()) as huangpu:
        stub = delegation_pb2_grpc.DelegationServiceStub(channel)
        by_hand = await until_case_replicated(lambda: delegate_freeze(huangpu, case_name))
        timeline = await stub.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=by_hand.name), metadata=REQUESTING)
    published = await events_about(subscriber, by_hand.name, since)
    assert published, "the matter's own submission event"

    output = run_demo(stack)

    assert "Deadline scan" in output and "ESCALATE" in output  # the demo's own late matter was scanned
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel:
        stub = delegation_pb2_grpc.DelegationServiceStub(channel)
        after = await stub.GetDelegation(dg.GetDelegationRequest(name=by_hand.name), metadata=REQUESTING)
        timeline_after = await stub.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=by_hand.name), metadata=REQUESTING)
    assert after == by_hand  # state, deadlines (none overdue), urge count, no escalation, same etag
    assert timeline_after == timeline  # no OVERDUE, URGE or ESCALATE entry
    assert await events_about(subscriber, by_hand.name, since) == published  # nothing published about it
