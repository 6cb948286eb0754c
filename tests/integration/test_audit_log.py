"""The audit log in its own process (issue 18, point 1): every event of the stream appended to the hash
chain and every head anchored in an append-only JetStream stream (real nats-server, SQLite
and PostgreSQL). `verify` and `rogatory audit-verify` find an edited or deleted entry, also
after later events; the appender refuses to extend a chain that no longer holds the last
anchored head (issue 15, point 3)."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import APIError
from rogatory.events.v1 import alert_events_pb2
from rogatory.registry.v1 import registry_pb2_grpc
from sqlalchemy import delete, insert, text, update

from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.audit.anchors import (
    ANCHOR_STREAM,
    ANCHOR_SUBJECT,
    anchor_stream_config,
    ensure_anchor_stream,
    publish_anchor,
    read_anchors,
)
from services.audit.chain import Anchor, AuditEntry, entry_hash, verify
from services.audit.log import AUDIT, COLUMNS, AuditAppender, read_chain, verify_log
from services.audit.main import wire as wire_audit
from services.plumbing.config import Settings
from services.plumbing.db import Database
from services.plumbing.host import ServiceHost
from services.plumbing.messaging import connect
from services.plumbing.migrations import upgrade_to_head
from services.plumbing.nats_server import EmbeddedNatsServer, free_port
from services.plumbing.unit_of_work import Reader
from services.registry.main import wire as wire_registry
from services.tools.cli import main as cli_main
from services.tools.nats_permissions import all_users, authorization_block
from tests.conftest import drop_schemas, require_postgres, run_cli, wait_for
from tests.e2e.test_registry_e2e import as_owner, create_request
from tests.integration.test_nats_permissions import connect as connect_as
from tests.integration.test_nats_permissions import denied

CASES = 4
AUDIT_HEALTH = "rogatory.audit"  # the documented health service name of the audit appender


@pytest.fixture(params=["sqlite", "postgres"])
async def registry_settings(
    request: pytest.FixtureRequest, tmp_path: Path, nats_server: EmbeddedNatsServer
) -> AsyncIterator[Settings]:
    overrides = {}
    if request.param == "postgres":
        url = await require_postgres()
        overrides = {"DATABASE_URL": url, "ROGATORY_DB_SCHEMA_PREFIX": f"t{abs(hash(tmp_path)) % 10**8}_"}
    yield Settings(
        NATS_URL=nats_server.url, ROGATORY_DATA_DIR=tmp_path, REGISTRY_ADDR="127.0.0.1:0", AUDIT_ADDR="127.0.0.1:0", **overrides
    )  # type: ignore[call-arg]
    if request.param == "postgres":
        await drop_schemas(overrides["DATABASE_URL"], overrides["ROGATORY_DB_SCHEMA_PREFIX"])


@dataclass
class Audited:
    """The registry, whose cases make events, and the audit process that chains every event."""

    registry: ServiceHost
    audit: ServiceHost


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Audited]:
    registry, audit = ServiceHost("registry", settings), ServiceHost("audit", settings)
    await registry.start(wire_registry)  # one after the other: Alembic's context is one per process
    await audit.start(wire_audit)
    try:
        yield Audited(registry, audit)
    finally:
        await asyncio.gather(registry.stop(), audit.stop())


@pytest.fixture
async def audited(registry_settings: Settings) -> AsyncIterator[Audited]:
    async with running(registry_settings) as both:
        yield both


def appender_of(audited: Audited) -> AuditAppender:
    return next(c.hooks for c in audited.audit.consumers if isinstance(c.hooks, AuditAppender))


async def create_case(audited: Audited, number: int) -> None:
    async with grpc.aio.insecure_channel(audited.registry.address) as channel:
        request = create_request(number)
        await registry_pb2_grpc.RegistryServiceStub(channel).CreateCase(request, metadata=as_owner(request))


async def register_cases(host: Audited, count: int = CASES) -> None:
    """`count` cases, each event appended (one batch, so one anchored head, each) before the next."""
    appender = appender_of(host)
    for n in range(1, count + 1):
        before = appender.appended
        await create_case(host, n)
        await wait_for(lambda before=before: appender.appended == before + 1, timeout=15)


async def audit_status(host: ServiceHost, service: str = AUDIT_HEALTH) -> str:
    """What `host`'s gRPC health service says of `service` (NOT_FOUND: nothing)."""
    async with grpc.aio.insecure_channel(host.address) as channel:
        try:
            response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
        except grpc.aio.AioRpcError as error:
            return error.code().name
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


async def new_event_settles(host: Audited, number: int) -> None:
    """Registers one more case and waits until the appender has appended its event, or
    refused to (audit NOT_SERVING)."""
    appender = appender_of(host)
    before = appender.appended
    await create_case(host, number)

    async def settled() -> bool:
        return appender.appended > before or await audit_status(host.audit) == "NOT_SERVING"

    await wait_for(settled, timeout=15)


async def cli_verify(settings: Settings, *, nats_url: str | None = None) -> subprocess.CompletedProcess[str]:
    """`rogatory audit-verify` with only the audit database and NATS in its environment
    (tests/conftest.py run_cli), while this test's services go on."""
    env = {"ROGATORY_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin"}
    if settings.database_url.startswith("postgresql"):
        env |= {"DATABASE_URL": settings.database_url, "ROGATORY_DB_SCHEMA_PREFIX": settings.db_schema_prefix}
    if (url := settings.nats_url if nats_url is None else nats_url) != "":
        env["NATS_URL"] = url
    return await asyncio.to_thread(run_cli, ["audit-verify"], env)


@asynccontextmanager
async def offline(settings: Settings) -> AsyncIterator[tuple[Database, JetStreamContext]]:
    """The audit database and JetStream while no audit process runs."""
    db = Database(settings.database_url_for("audit"), schema=settings.schema_for("audit"))
    nc = await connect(settings.nats_url, name="test")
    try:
        yield db, nc.jetstream()
    finally:
        await nc.close()
        await db.dispose()


async def delete_tail(db: Database, keep: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(delete(AUDIT).where(AUDIT.c.seq > keep))


async def rewrite_and_rehash(db: Database, seq: int) -> None:
    """Rewrites entry `seq` and recomputes its hash and every later link and hash: the
    chain alone still verifies."""
    entries, forged = await read_chain(Reader(db)), []
    prev = entries[seq - 2].hash if seq > 1 else entries[0].prev_hash
    for entry in entries[seq - 1 :]:
        changed = replace(
            entry, prev_hash=prev, subject=entry.subject.replace("zj0326", "gd0112") if entry.seq == seq else entry.subject
        )
        changed = replace(changed, hash=entry_hash(changed))
        forged.append(changed)
        prev = changed.hash
    async with db.transaction() as conn:
        for entry in forged:
            values = {"subject": entry.subject, "prev_hash": entry.prev_hash, "hash": entry.hash}
            await conn.execute(update(AUDIT).where(AUDIT.c.seq == entry.seq).values(**values))
    assert verify(await read_chain(Reader(db))) == []  # a perfect forgery, as far as the chain goes


async def test_every_event_is_chained_and_every_head_anchored(audited: Audited) -> None:
    await register_cases(audited)
    verification = await verify_log(audited.audit.reader, audited.audit.js)
    assert (verification.entries, verification.breaks, verification.outcome) == (CASES, [], "INTACT")
    assert [a.seq for a in verification.anchors or []] == list(range(1, CASES + 1))
    assert await audit_status(audited.audit) == "SERVING"


async def test_verify_finds_an_edited_entry(audited: Audited) -> None:
    await register_cases(audited)
    async with audited.audit.db.transaction() as conn:
        await conn.execute(update(AUDIT).where(AUDIT.c.seq == 2).values(subject="rogatory.v1.case.gd0112.registered"))
    breaks = (await verify_log(audited.audit.reader, audited.audit.js)).breaks
    assert [(b.seq, "edited" in b.problem) for b in breaks] == [(2, True)]  # its stored hash is still the anchored one


async def test_verify_finds_deleted_entries_in_the_middle_and_at_the_end(audited: Audited) -> None:
    await register_cases(audited)
    async with audited.audit.db.transaction() as conn:
        await conn.execute(delete(AUDIT).where(AUDIT.c.seq == 2))
    breaks = (await verify_log(audited.audit.reader, audited.audit.js)).breaks
    assert [b.seq for b in breaks] == [2, 3, 2]  # the gap, the broken link, the anchored head gone
    await delete_tail(audited.audit.db, keep=1)  # now only the tail is gone: the chain alone holds
    unanchored = await verify_log(audited.audit.reader, None)
    assert (unanchored.breaks, unanchored.outcome) == ([], "UNVERIFIED")
    breaks = (await verify_log(audited.audit.reader, audited.audit.js)).breaks
    assert [b.seq for b in breaks] == [2]
    assert breaks[0].problem.startswith(f"entries 2..{CASES} are missing (deleted from the end)")


async def test_a_redelivered_event_is_not_chained_twice(audited: Audited) -> None:
    await register_cases(audited)
    appender = appender_of(audited)
    subscription = await audited.audit.js.subscribe("rogatory.v1.case.>", ordered_consumer=True)
    try:
        first = await subscription.next_msg(timeout=5)
    finally:
        await subscription.unsubscribe()
    await audited.audit.js.publish(first.subject, first.data, headers={**(first.headers or {}), "Nats-Msg-Id": "republished"})
    await audited.audit.js.publish("rogatory.v1.case.zj0326.registered", b"another", headers={"ce-id": "one-more"})
    await wait_for(lambda: appender.appended == CASES + 1, timeout=15)  # the republished copy was recognised
    await wait_for(lambda: appender.anchored is not None and appender.anchored.seq == CASES + 1)
    verification = await verify_log(audited.audit.reader, audited.audit.js)
    assert (verification.entries, verification.outcome) == (CASES + 1, "INTACT")


async def test_the_cli_reports_a_break_with_exit_status_1(registry_settings: Settings) -> None:
    async with running(registry_settings) as host:
        await register_cases(host)
        async with host.audit.db.transaction() as conn:
            await conn.execute(update(AUDIT).where(AUDIT.c.seq == 3).values(event_type="rogatory.case.closed.v1"))
    done = await cli_verify(registry_settings)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "BROKEN at entry 3" in done.stdout and f"{CASES} entries" in done.stdout


async def test_i15_p3_tail_deletion_then_new_event_is_broken(registry_settings: Settings) -> None:
    async with running(registry_settings) as host:
        await register_cases(host)
        await delete_tail(host.audit.db, keep=1)  # the last three entries
        await new_event_settles(host, CASES + 1)
        done = await cli_verify(registry_settings)
        assert done.returncode == 1, done.stdout + done.stderr
        assert f"BROKEN at entry 2: entries 2..{CASES} are missing (deleted from the end)" in done.stdout
        assert await audit_status(host.audit) == "NOT_SERVING"
        assert len(await read_chain(host.audit.reader)) == 1  # nothing appended on top of the truncated chain


async def test_i15_p3_rewrite_and_rehash_then_new_event_is_broken(registry_settings: Settings) -> None:
    async with running(registry_settings) as host:
        await register_cases(host)
        await rewrite_and_rehash(host.audit.db, 2)
        await new_event_settles(host, CASES + 1)
        done = await cli_verify(registry_settings)
        assert done.returncode == 1, done.stdout + done.stderr
        assert "BROKEN at entry 2: entry 2's hash" in done.stdout
        assert "differs from the head anchored at" in done.stdout and "rewritten" in done.stdout
        assert "published head differs from the published head" not in done.stdout
        assert await audit_status(host.audit) == "NOT_SERVING"
        assert len(await read_chain(host.audit.reader)) == CASES


async def test_i15_p3_without_nats_verify_says_it_cannot_check_the_anchors(registry_settings: Settings) -> None:
    async with running(registry_settings) as host:
        await register_cases(host)
    unset = await cli_verify(registry_settings, nats_url="")
    assert unset.returncode == 3, unset.stdout + unset.stderr
    assert "UNVERIFIED" in unset.stdout and "INTACT" not in unset.stdout
    assert "anchored heads could not be checked (NATS_URL is not set)" in unset.stdout
    unreachable = await cli_verify(registry_settings, nats_url=f"nats://127.0.0.1:{free_port()}")
    assert unreachable.returncode == 3, unreachable.stdout + unreachable.stderr
    assert "UNVERIFIED" in unreachable.stdout and "NATS did not answer" in unreachable.stdout
    intact = await cli_verify(registry_settings)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert f"{CASES} entries, INTACT, checked against {CASES} anchored head(s)" in intact.stdout
    async with offline(registry_settings) as (db, js):  # the anchors gone: deleting the stream is not a delete of its messages
        await js.delete_stream(ANCHOR_STREAM)
        missing = await verify_log(Reader(db), js)
        assert (missing.outcome, missing.unchecked) == ("UNVERIFIED", f"the anchor stream {ANCHOR_STREAM} does not exist")
        await ensure_anchor_stream(js)  # … and an empty one in its place
        replaced = await verify_log(Reader(db), js)
        assert (replaced.outcome, replaced.unchecked) == (
            "UNVERIFIED",
            f"no head of the chain was ever anchored in {ANCHOR_STREAM}",
        )


async def test_i15_p3_the_appender_refuses_a_tampered_head_alerts_and_resumes_once_restored(audited: Audited) -> None:
    appender = appender_of(audited)
    appender.recheck_interval = 0.05  # the operator's fix is noticed quickly
    alerts = await audited.audit.nc.subscribe("rogatory.v1.alert.audit.>")
    await register_cases(audited)
    assert await audit_status(audited.audit) == "SERVING"
    saved = await read_chain(audited.audit.reader)
    await delete_tail(audited.audit.db, keep=1)
    await new_event_settles(audited, CASES + 1)
    assert await audit_status(audited.audit) == "NOT_SERVING"
    assert await audit_status(audited.registry, "") == "SERVING"  # the registry's own RPCs are not affected
    assert appender.refusal is not None and len(await read_chain(audited.audit.reader)) == 1
    alert = await alerts.next_msg(timeout=10)
    assert alert.subject == "rogatory.v1.alert.audit.registry-audit.broken"
    assert (alert.headers or {})["ce-type"] == "rogatory.alert.audit-broken.v1"
    payload = alert_events_pb2.AuditChainBroken.FromString(alert.data)
    assert (payload.anchored_seq, payload.anchored_hash, payload.chain_head_seq) == (CASES, saved[-1].hash, 1)
    assert payload.problem.startswith(f"entries 2..{CASES} are missing")
    async with audited.audit.db.transaction() as conn:  # the operator restores the rows from a backup
        await conn.execute(insert(AUDIT), [{c: getattr(e, c) for c in COLUMNS} for e in saved[1:]])
    # The held-back event is appended at last, and so is the alert (an event of the stream too).
    await wait_for(lambda: appender.appended == CASES + 2, timeout=15)
    assert await audit_status(audited.audit) == "SERVING"
    await wait_for(lambda: appender.anchored is not None and appender.anchored.seq == CASES + 2)
    verification = await verify_log(audited.audit.reader, audited.audit.js)
    assert (verification.entries, verification.outcome) == (CASES + 2, "INTACT")
    assert {e.subject for e in await read_chain(audited.audit.reader)} >= {alert.subject, "rogatory.v1.case.zj0326.registered"}


async def test_i15_p3_a_restarted_appender_refuses_a_chain_tampered_while_it_was_down(registry_settings: Settings) -> None:
    async with running(registry_settings) as host:
        await register_cases(host)
    async with offline(registry_settings) as (db, _):
        await rewrite_and_rehash(db, 3)
    async with running(registry_settings) as host:
        await wait_for(lambda: appender_of(host).refusal is not None, timeout=15)
        assert await audit_status(host.audit) == "NOT_SERVING"
        refusal = appender_of(host).refusal
        assert refusal is not None and f"entry {CASES}'s hash" in refusal.problem.problem  # the last anchored head
        done = await cli_verify(registry_settings)  # every anchored head: the first that fails is the rewritten entry
        assert done.returncode == 1 and "BROKEN at entry 3: entry 3's hash" in done.stdout, done.stdout


async def test_i15_p3_a_head_committed_but_not_anchored_is_anchored_when_the_appender_starts(
    registry_settings: Settings,
) -> None:
    """The crash window: heads are anchored after the commit, so a crash in between leaves
    the newest entries unanchored (named by verify, not a break) until the appender starts."""
    async with running(registry_settings) as host:
        await register_cases(host)
        last = (await read_chain(host.audit.reader))[-1]
        committed = AuditEntry(CASES + 1, last.stream_seq + 100, "crashed", "t", "rogatory.v1.x", "", "", "0" * 64, last.hash)
        committed = replace(committed, hash=entry_hash(committed))
    async with offline(registry_settings) as (db, js):  # committed, then the crash
        async with db.transaction() as conn:
            await conn.execute(insert(AUDIT), [{c: getattr(committed, c) for c in COLUMNS}])
        verification = await verify_log(Reader(db), js)
        assert (verification.outcome, verification.breaks) == ("INTACT", [])
        assert verification.summary().endswith(f"entry {CASES + 1} is not anchored yet")
    async with running(registry_settings) as host:
        appender = appender_of(host)
        await wait_for(lambda: appender.anchored == Anchor(CASES + 1, committed.hash), timeout=15)
        assert await audit_status(host.audit) == "SERVING"
        assert [a.seq for a in await read_anchors(host.audit.js)] == [*range(1, CASES + 1), CASES + 1]


async def test_i15_p3_the_anchor_stream_keeps_every_head(nats_server: EmbeddedNatsServer) -> None:
    nc = await connect(nats_server.url, name="test")
    try:
        js = nc.jetstream()
        await ensure_anchor_stream(js)
        await ensure_anchor_stream(js)  # idempotent
        head = Anchor(1, "a" * 64)
        await publish_anchor(js, head)
        await publish_anchor(js, head)  # again after a crash: stored once
        assert await read_anchors(js) == [head]
        for refused in (
            js.delete_msg(ANCHOR_STREAM, 1),
            js.purge_stream(ANCHOR_STREAM),
            js.update_stream(StreamConfig(name=ANCHOR_STREAM, subjects=[ANCHOR_SUBJECT], deny_delete=False, deny_purge=False)),
            js.publish(ANCHOR_SUBJECT, b"", headers={"Nats-Rollup": "sub"}),
        ):
            with pytest.raises(APIError):
                await refused
        assert await read_anchors(js) == [head]
    finally:
        await nc.close()


async def test_i15_p3_only_the_services_publish_or_manage_anchors(tmp_path: Path) -> None:
    """Under `rogatory nats-auth`'s permissions no court, agency or admin can publish an
    anchor, nor delete, purge or reconfigure the anchor stream; the services' user publishes
    anchors (and may not manage the stream either: test_nats_permissions.py)."""
    users = {
        u.user: u for u in all_users(CourtCatalog.default(), AgencyCatalog.default(), "ROGATORY", password=lambda u: f"pw-{u}")
    }
    with EmbeddedNatsServer(tmp_path / "js", extra_config=authorization_block(users.values())) as server:
        service = await connect_as(server, users["rogatory-service"], [])
        try:
            await ensure_anchor_stream(service.jetstream())
            await publish_anchor(service.jetstream(), Anchor(1, "a" * 64))
            for name in ("court-gd0112", "agency-bank-icbc", "admin-ops"):
                errors: list[str] = []
                party = await connect_as(server, users[name], errors)
                js = party.jetstream(timeout=1.0)
                try:
                    assert await denied(errors, lambda p=party: p.publish(ANCHOR_SUBJECT, b'{"seq": 9, "hash": "x"}')), name
                    assert await denied(errors, lambda js=js: js.publish(ANCHOR_SUBJECT, b'{"seq": 9, "hash": "x"}')), name
                    assert await denied(errors, lambda js=js: js.delete_stream(ANCHOR_STREAM)), name
                    assert await denied(errors, lambda js=js: js.update_stream(anchor_stream_config())), name
                finally:
                    await party.close()
            assert await read_anchors(service.jetstream()) == [Anchor(1, "a" * 64)]
        finally:
            await service.close()


def cli_verify_in_process(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> tuple[int, str]:
    """`rogatory audit-verify` run by its own main() in this process: (exit status, stdout + stderr)."""
    for variable in ("DATABASE_URL", "ROGATORY_DB_SCHEMA_PREFIX", "NATS_URL", "ROGATORY_DATA_DIR"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    with pytest.raises(SystemExit) as leaving:
        cli_main(["audit-verify"])
    out = capsys.readouterr()
    return int(leaving.value.code or 0), out.out + out.err


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_audit_verify_without_an_audit_log_says_so_and_exits_4(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No audit database at all, or one without the audit_log table: a clear line and exit 4, no traceback."""
    prefix = f"t{abs(hash(tmp_path)) % 10**8}_"
    env = {"ROGATORY_DATA_DIR": str(tmp_path)}
    if backend == "postgres":
        env |= {"DATABASE_URL": await require_postgres(), "ROGATORY_DB_SCHEMA_PREFIX": prefix}
    try:
        status, said = await asyncio.to_thread(cli_verify_in_process, monkeypatch, capsys, env)
        assert status == 4, said
        assert "Traceback" not in said and "audit log: none to verify" in said, said
        assert "nothing was verified" in said
        assert not (tmp_path / "audited.audit.db").exists()  # looking did not create an empty database
        settings = Settings(**{k.upper(): v for k, v in env.items()})  # type: ignore[arg-type]
        db = Database(settings.database_url_for("audit"), schema=settings.schema_for("audit"))
        try:  # an audit database that lost its audit_log table
            await db.create_schema()
            await upgrade_to_head(db, "audit")
            async with db.transaction() as conn:
                await conn.execute(text("DROP TABLE audit_log"))
        finally:
            await db.dispose()
        status, said = await asyncio.to_thread(cli_verify_in_process, monkeypatch, capsys, env)
        assert status == 4, said
        assert "Traceback" not in said and "has no audit_log table" in said, said
    finally:
        if backend == "postgres":
            await drop_schemas(env["DATABASE_URL"], prefix)


async def test_audit_verify_with_its_database_away_says_so_and_exits_4(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    away = f"postgresql+asyncpg://auditor:secret@127.0.0.1:{free_port()}/rogatory"  # nothing listens there
    env = {"ROGATORY_DATA_DIR": str(tmp_path), "DATABASE_URL": away}
    status, said = await asyncio.to_thread(cli_verify_in_process, monkeypatch, capsys, env)
    assert status == 4, said
    assert "Traceback" not in said and "cannot be read" in said and "nothing was verified" in said, said
    assert "secret" not in said  # the message names the database, never its password
