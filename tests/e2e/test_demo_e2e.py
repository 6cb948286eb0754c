"""`make demo` against a stack that already holds a court's real work: the demo moves time
(its deadline scan 30 days ahead) only for the matter it created itself. And then the
README's admin examples, as a reader runs them after `make run` and `make demo`: every
command of the README's checked code blocks exits 0 and prints what its `#>` lines say."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import grpc
import nats
import pytest
from nats.aio.client import Client as NATS
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc

from services.plumbing.auth import dev_credentials
from services.plumbing.subscriber import read_events
from services.tools import cli as rogatory_cli
from services.tools.admin.client import AdminClient
from services.tools.demo import SEED_CASE_NUMBER, as_court, delegate_freeze, until_case_replicated
from services.tools.launcher import Stack
from tests.conftest import BACKENDS
from tests.e2e.admin_cli import admin
from tests.e2e.conftest import own_stack
from tests.e2e.test_delegation_assistance_e2e import register_case

REQUESTING = dev_credentials("court", "gd0112")
README = Path(__file__).resolve().parents[2] / "README.md"
#: The line above a README code block whose commands this module runs.
CHECKED = "<!-- checked: tests/e2e/test_demo_e2e.py"


@pytest.fixture(scope="module", params=BACKENDS)
async def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    """A stack of its own: the README's examples show what a reader sees after `make run` and
    `make demo`, which other tests' matters on the shared stack would change."""
    async with own_stack(request.param, tmp_path_factory.mktemp(f"demo-stack-{request.param}")) as running:
        yield running


def demo_env(stack: Stack) -> dict[str, str]:
    """What `make demo` and the `rogatory` command see next to `make run`: the delegation
    service's own database and NATS, and every service's address."""
    env = {**stack.processes["delegation"].env}
    for service in ("registry", "delegation", "assistance"):
        env[f"{service.upper()}_ADDR"] = stack.address(service)
    return env


def run_demo(stack: Stack) -> str:
    """`rogatory demo` as `make demo` runs it: addresses from the stack's run.json."""
    stack.write_run_file()
    done = subprocess.run(
        [sys.executable, "-m", "services.tools.cli", "demo"], env=demo_env(stack), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


async def events_about(subscriber: NATS, name: str, since: datetime) -> list[str]:
    """Ids of every event since `since` whose payload names the delegation `name`."""
    events = await read_events(subscriber.jetstream(), "ROGATORY", "rogatory.v1.>", since=since, timeout=2.0)
    return [e.event_id for e in events if name.encode() in e.data]


@dataclass(frozen=True)
class ByHand:
    """A matter a court created by hand before the demo ran, as it was then."""

    delegation: dg.Delegation
    timeline: dg.DelegationTimeline
    published: list[str]
    since: datetime


@pytest.fixture(scope="module")
async def by_hand(stack: Stack, sequence_numbers: Iterator[int]) -> ByHand:
    since = datetime.now(UTC) - timedelta(seconds=1)
    case_name = await register_case(stack, 800_000 + next(sequence_numbers))
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel, as_court("gd0112", stack.describe()) as huangpu:
        stub = delegation_pb2_grpc.DelegationServiceStub(channel)
        delegation = await until_case_replicated(lambda: delegate_freeze(huangpu, case_name))
        timeline = await stub.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=delegation.name), metadata=REQUESTING)
    subscriber = await nats.connect(stack.nats_url)
    try:
        published = await events_about(subscriber, delegation.name, since)
    finally:
        await subscriber.drain()
    assert published, "the matter's own submission event"
    return ByHand(delegation, timeline, published, since)


@pytest.fixture(scope="module")
def demo_output(stack: Stack, by_hand: ByHand) -> str:
    """The demo, run once on the module's stack after the matter created by hand."""
    return run_demo(stack)


@pytest.fixture(scope="module")
async def demo_settled(stack: Stack, demo_output: str) -> str:
    """The demo's output, once the turnaround read model (which follows the events) counts its
    completed matter and its late one, as a reader's next command a moment later would see."""
    async with AdminClient(stack.address("delegation")) as client:
        for _ in range(200):
            done = (await client.statistics('entrusted_court = "courts/ha0122"')).groups[0]
            late = (await client.statistics('entrusted_court = "courts/ha1321"')).groups[0]
            if done.time_to_complete.count >= 1 and late.open_overdue_count >= 1:
                return demo_output
            await asyncio.sleep(0.1)
    raise AssertionError("the read model never counted the demo's matters")


async def test_i15_p12_the_demo_leaves_a_matter_a_court_created_by_hand_untouched(
    stack: Stack, subscriber: NATS, by_hand: ByHand, demo_output: str
) -> None:
    assert "Deadline scan" in demo_output and "ESCALATE" in demo_output  # the demo's own late matter was scanned
    name = by_hand.delegation.name
    async with grpc.aio.insecure_channel(stack.address("delegation")) as channel:
        stub = delegation_pb2_grpc.DelegationServiceStub(channel)
        after = await stub.GetDelegation(dg.GetDelegationRequest(name=name), metadata=REQUESTING)
        timeline_after = await stub.GetDelegationTimeline(dg.GetDelegationTimelineRequest(name=name), metadata=REQUESTING)
    assert after == by_hand.delegation  # state, deadlines (none overdue), urge count, no escalation, same etag
    assert timeline_after == by_hand.timeline  # no OVERDUE, URGE or ESCALATE entry
    assert await events_about(subscriber, name, by_hand.since) == by_hand.published  # nothing published about it


def test_a_second_demo_run_delegates_in_the_seed_case_again(stack: Stack, demo_output: str) -> None:
    """The README's case number stays true however often `make demo` runs."""
    assert f"Registered {SEED_CASE_NUMBER} as courts/gd0112/cases/2023-enf-4242" in demo_output
    again = run_demo(stack)
    assert f"Already registered by an earlier run: {SEED_CASE_NUMBER}" in again and "ESCALATE" in again
    matters = admin(stack, "timeline", SEED_CASE_NUMBER, "--csv").stdout
    assert len({line.split(",")[0] for line in matters.splitlines()[1:]}) == 4  # two matters per run


# --- the README's examples ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    line: int  # in README.md
    command: str  # as the README shows it
    expected: tuple[str, ...]  # its `#>` lines

    @property
    def argv(self) -> list[str]:
        words = shlex.split(self.command, comments=True)
        if any(word in ("|", ">", ">>", "<", "&&", ";") for word in words):
            raise AssertionError(f"README.md:{self.line}: a checked example is one command, no pipe or redirection")
        return [Path(words[0]).name, *words[1:]]


def code_blocks(text: str) -> Iterator[tuple[bool, list[tuple[int, str]]]]:
    """(checked, [(line number, line)]) of every fenced code block."""
    lines = text.splitlines()
    inside, checked, block = False, False, []
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            if inside:
                yield checked, block
            else:
                previous = next((lines[i] for i in range(number - 2, -1, -1) if lines[i].strip()), "")
                checked, block = previous.startswith(CHECKED), []
            inside = not inside
        elif inside:
            block.append((number, line))


def readme_examples(text: str) -> list[Example]:
    examples: list[Example] = []
    for checked, block in code_blocks(text):
        if not checked:
            continue
        for number, line in block:
            if line.startswith("#>"):
                last = examples[-1]
                examples[-1] = Example(last.line, last.command, (*last.expected, line[2:].strip()))
            elif line.strip() and not line.lstrip().startswith("#"):
                examples.append(Example(number, line.strip(), ()))
    return examples


def looks_for(expected: str) -> re.Pattern[str]:
    """An expected line as a pattern: "…" any text, a run of spaces any run, │ and ┃ alike."""
    parts = [r"\s+".join(map(re.escape, part.split())) for part in _boxed(expected).split("…")]
    return re.compile(r".*?".join(parts))


def _boxed(text: str) -> str:
    return text.replace("┃", "│")


EXAMPLES = readme_examples(README.read_text(encoding="utf-8"))


def test_the_readme_checks_its_admin_examples() -> None:
    """Every rogatory-admin or rogatory command in a README code block is checked here."""
    assert len(EXAMPLES) >= 6 and all(e.expected for e in EXAMPLES)
    unchecked = [
        f"README.md:{number}: {line.strip()}"
        for checked, block in code_blocks(README.read_text(encoding="utf-8"))
        if not checked
        for number, line in block
        if re.match(r"\s*(\.venv/bin/)?rogatory(-admin)?\s", line)
    ]
    assert not unchecked, "mark the block with " + CHECKED + " -->, and say what each command prints:\n" + "\n".join(unchecked)


#: What a terminal next to `make run` knows of the stack: where its data is (and the database,
#: when `make run` was given one). Addresses and NATS come from the run file `make run` wrote.
TERMINAL_VARIABLES = ("ROGATORY_DATA_DIR", "DATABASE_URL", "ROGATORY_DB_SCHEMA_PREFIX")


def terminal_env(stack: Stack) -> dict[str, str]:
    stack_env = stack.processes["delegation"].env
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", *TERMINAL_VARIABLES) and not k.endswith("_ADDR")}
    return env | {k: stack_env[k] for k in TERMINAL_VARIABLES if k in stack_env}


def run_rogatory(stack: Stack, argv: list[str]) -> subprocess.CompletedProcess[str]:
    """`rogatory ARGV` in-process, as typed in a terminal next to `make run`."""
    out, err = io.StringIO(), io.StringIO()
    stack.write_run_file()

    def run() -> int:
        with (
            mock.patch.dict(os.environ, terminal_env(stack), clear=True),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                rogatory_cli.main(argv)
            except SystemExit as exit_:
                return exit_.code if isinstance(exit_.code, int) else 1
        return 0

    with ThreadPoolExecutor(1) as thread:  # the command runs its own event loop
        code = thread.submit(run).result()
    return subprocess.CompletedProcess(["rogatory", *argv], code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"README.md:{e.line}" for e in EXAMPLES])
def test_readme_example_works_after_the_demo(
    stack: Stack, demo_settled: str, example: Example, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where `report --out report.html` writes
    program, *args = example.argv
    if program == "rogatory-admin":
        done = admin(stack, *args, credential="admin:admin", check=False)
    else:
        assert program == "rogatory", f"README.md:{example.line}: {program}"
        done = run_rogatory(stack, args)
    printed = _boxed(done.stdout + done.stderr)
    assert done.returncode == 0, f"README.md:{example.line}: {example.command}\n{printed[-3000:]}"
    for expected in example.expected:
        assert looks_for(expected).search(printed), (
            f"README.md:{example.line}: {example.command}\nno {expected!r} in:\n{printed[-3000:]}"
        )
