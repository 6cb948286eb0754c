"""`rogatory` command: run the stack, run the demo, migrate a database, replay parked events."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from services.plumbing.config import Settings
from services.tools.deadline import add_arguments as add_deadline_arguments

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from services.plumbing.deadletters import ParkedEvent

RUN_FILE = "run.json"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="rogatory", description="Rogatory services")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "run", help="start nats-server (unless NATS_URL), the three services, the audit appender and the turnaround projector"
    )
    commands.add_parser("demo", help="register the seed article's case against a running stack, print its events")
    migrate = commands.add_parser("migrate", help="create or upgrade a service's database schema")
    migrate.add_argument("service", choices=["registry", "delegation", "assistance", "audit", "turnaround"])
    scan = commands.add_parser(
        "scan-deadlines", help="one deadline-scanner pass over the delegation database (due soon, overdue, urge, escalate)"
    )
    scan.add_argument("--at", type=_instant, help="scan as of this instant (ISO 8601 with offset), e.g. to catch up")
    scan.add_argument(
        "--delegation",
        action="append",
        dest="only",
        metavar="NAME",
        help="only this delegation (repeatable): e.g. to move time for one matter, as the demo does; default every matter",
    )
    deadline = commands.add_parser(
        "deadline",
        help="when a period ends, counted as the matters' deadlines are (CPL art. 85, holidays, 调休, provisional years)",
        description="The deadline calculator (ComputeDeadline) without a running stack: give --period N --unit UNIT, "
        "or --kind KIND --step STEP for the period the rules set at --court.",
    )
    add_deadline_arguments(deadline)
    auth = commands.add_parser(
        "nats-auth", help="write nats-server users and subject permissions for every court and agency of the registry"
    )
    auth.add_argument("--out", type=Path, required=True, help="folder for auth.conf and credentials.json (mode 0600)")
    auth.add_argument("--admin", action="append", default=[], help="an admin user to add (read-only, every event)")
    deadletter = commands.add_parser("deadletter", help="events a consumer gave up on: list them, replay them once fixed")
    deadletter_commands = deadletter.add_subparsers(dest="deadletter_command", required=True)
    listing = deadletter_commands.add_parser("list", help="every parked event: when, consumer, event id and type, subject, why")
    listing.add_argument("--consumer", help="only the events this consumer parked")
    replaying = deadletter_commands.add_parser(
        "replay", help="send parked events back to the consumer that parked them, to be applied (once) or parked again"
    )
    replaying.add_argument("--consumer", help="the events this consumer parked")
    replaying.add_argument("--event", action="append", default=[], metavar="EVENT_ID", help="this event (repeatable)")
    replaying.add_argument("--all", action="store_true", help="every parked event")
    commands.add_parser(
        "audit-verify",
        help="check the audit log's hash chain and that it holds every head anchored in JetStream; "
        "exit 0 INTACT, 1 BROKEN (an entry edited or deleted), 3 UNVERIFIED (the anchors could not be read), "
        "4 no audit log to verify (no audit database, no audit_log table, or the database unreachable)",
    )
    certs = commands.add_parser("certs", help="issue a development CA, server and client certificates for mutual TLS")
    certs.add_argument("--out", type=Path, required=True, help="folder for ca.crt, server.crt/key and the clients' crt/key")
    certs.add_argument(
        "--client", action="append", default=[], metavar="KIND:ID", help="e.g. court:gd0112, agency:bank-icbc, admin:ops"
    )
    certs.add_argument(
        "--host", action="append", default=[], help="names the server certificate covers (default localhost, 127.0.0.1)"
    )
    args = parser.parse_args(argv)
    commands_by_name = {
        "run": run,
        "demo": demo,
        "migrate": migrate_command,
        "scan-deadlines": scan_deadlines,
        "deadline": deadline_command,
        "nats-auth": nats_auth,
        "audit-verify": audit_verify,
        "deadletter": deadletter_command,
        "certs": issue_certificates,
    }
    commands_by_name[args.command](args)


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError("give a UTC offset, e.g. 2026-12-01T09:00:00+08:00")
    return value


def run(_args: argparse.Namespace) -> None:
    from services.tools.launcher import Stack, StartAborted, StartFailed, Supervisor, terminal_level  # noqa: PLC0415

    settings = Settings()
    try:
        shown = terminal_level(settings.terminal_log_level)
    except ValueError as error:
        sys.exit(str(error))
    stack = Stack(settings.data_dir.resolve(), nats_url=settings.nats_url, fixed_ports=True, terminal_level=shown)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    # Before anything starts: Ctrl-C or SIGTERM while the services start stops them too.
    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    print("Starting Rogatory (Ctrl-C stops everything)…", flush=True)
    try:
        stack.start(abort=lambda: stopping)
    except StartAborted:  # the stack stopped what it had started
        print("Stopped while starting.", flush=True)
        return
    except StartFailed as failed:  # stopped too; what the service said is the message, not a traceback
        sys.exit(f"Not started: {failed}")
    run_file = stack.write_run_file()
    _print_addresses(stack.describe(), run_file, stack.metrics)
    _print_logs(stack.log_path("{service}"), settings.terminal_log_level.upper() if shown is not None else "")
    Supervisor.of(stack).run(lambda: stopping)  # restarts a child that exits, until a signal
    codes = stack.stop()
    run_file.unlink(missing_ok=True)
    print("Stopped:", ", ".join(f"{s} exit {c}" for s, c in codes.items()), flush=True)
    sys.exit(0 if all(c == 0 for c in codes.values()) else 1)


def _print_addresses(addresses: dict[str, str], run_file: Path, metrics: dict[str, str]) -> None:
    print("\nRogatory is running:")
    print(f"  NATS JetStream      {addresses['nats']}")
    for service in ("registry", "delegation", "assistance"):
        print(f"  {service:<19} {addresses[service]}  (gRPC, reflection + health)")
    print(f"  {'audit':<19} {addresses['audit']}  (gRPC health: the audit log's appender)")
    print(f"  {'turnaround':<19} {addresses['turnaround']}  (gRPC health: the turnaround statistics' projector)")
    for service, address in metrics.items():
        if address:
            print(f"  {service + ' metrics':<19} http://{address}/metrics  (Prometheus)")
    print(f"\nAddresses written to {run_file}.")
    print(f"Try:  .venv/bin/buf curl --protocol grpc --http2-prior-knowledge --list-methods http://{addresses['registry']}")
    print("      make demo\n")


def _print_logs(path: Path, shown: str) -> None:
    print(f"Logs: {path} (every line); the terminal shows", f"{shown} and above" if shown else "none of them", end="")
    print(" (ROGATORY_TERMINAL_LOG_LEVEL), prefixed with the service.")
    print("A service or nats-server that exits is restarted, with backoff.\n", flush=True)


def run_file(settings: Settings) -> Path:
    """Where `make run` writes the addresses it started the stack on."""
    return settings.data_dir.resolve() / RUN_FILE


def running_nats_url(settings: Settings) -> str:
    """The NATS address `make run` wrote in its run file; "" when there is none."""
    path = run_file(settings)
    return str(json.loads(path.read_text()).get("nats", "")) if path.exists() else ""


def load_run_file() -> dict[str, str]:
    settings = Settings()
    path = run_file(settings)
    if not path.exists():
        sys.exit(f"{path} not found: start the services with `make run` first")
    addresses: dict[str, str] = json.loads(path.read_text())
    for service, variable in (
        ("registry", "REGISTRY_ADDR"),
        ("delegation", "DELEGATION_ADDR"),
        ("assistance", "ASSISTANCE_ADDR"),
    ):
        addresses[service] = os.environ.get(variable, addresses[service])
    addresses["nats"] = os.environ.get("NATS_URL") or addresses["nats"]
    return addresses


def demo(_args: argparse.Namespace) -> None:
    from services.tools.demo import run_demo  # noqa: PLC0415

    asyncio.run(run_demo(load_run_file()))


def migrate_command(args: argparse.Namespace) -> None:
    from services.plumbing.db import Database  # noqa: PLC0415
    from services.plumbing.migrations import upgrade_to_head  # noqa: PLC0415

    settings = Settings()

    async def go() -> None:
        db = Database(settings.database_url_for(args.service), schema=settings.schema_for(args.service))
        await db.create_schema()
        await upgrade_to_head(db, args.service)
        await db.dispose()
        print(f"{args.service}: schema at head")

    asyncio.run(go())


def since_a_moment_ago() -> datetime:
    return datetime.now(UTC) - timedelta(seconds=1)


def scan_deadlines(args: argparse.Namespace) -> None:
    """The same scanner the delegation service runs, as a one-off job (e.g. to catch up)."""
    from services.delegation.scanner import scan_database  # noqa: PLC0415

    moment, report = asyncio.run(scan_database(Settings(), args.at, args.only))
    done = ", ".join(f"{action} {n}" for action, n in sorted(report.actions.items())) or "nothing to do"
    print(f"scanned as of {moment:%Y-%m-%d %H:%M:%S%z}: {done}; skipped {report.skipped}")


def deadline_command(args: argparse.Namespace) -> None:
    """ComputeDeadline's own code on the shipped rules and calendar; exit 2 with every violation for a bad question."""
    from registry.errors import InvalidArgument  # noqa: PLC0415
    from services.delegation.calculator import compute  # noqa: PLC0415
    from services.delegation.schedule import DeadlineBook  # noqa: PLC0415
    from services.tools.deadline import render, request_of  # noqa: PLC0415

    try:
        response = compute(request_of(args), DeadlineBook.default())
    except InvalidArgument as error:
        problems = "".join(f"\n  {v.field}: {v.description}" for v in error.violations)
        print(f"rogatory deadline: cannot count this period:{problems}", file=sys.stderr)
        sys.exit(2)
    print(render(response, as_json=args.json))


#: `rogatory audit-verify` exit statuses (2 is argparse's, for a bad command line). NO_LOG: no
#: audit log could be read — no database there, no audit_log table in it, or the database away.
AUDIT_EXIT = {"INTACT": 0, "BROKEN": 1, "UNVERIFIED": 3, "NO_LOG": 4}


def audit_verify(_args: argparse.Namespace) -> None:
    """Reads the audit process's database (DATABASE_URL / ROGATORY_DATA_DIR) and, through NATS_URL
    (else the address `make run` wrote), every anchored head. Exit 0 INTACT, 1 BROKEN, 3
    UNVERIFIED (the anchors could not be read), 4 when there is no audit log to read."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415

    from services.audit.log import NoAuditLog, verify_log  # noqa: PLC0415
    from services.plumbing.db import Database, DatabaseUnavailable  # noqa: PLC0415
    from services.plumbing.messaging import connect  # noqa: PLC0415
    from services.plumbing.unit_of_work import Reader  # noqa: PLC0415

    settings = Settings()
    url = make_url(settings.database_url_for("audit"))
    where = _database_place(url, settings.schema_for("audit"))

    def no_log(why: str) -> int:
        print(f"audit log: {why}; nothing was verified", file=sys.stderr)
        return AUDIT_EXIT["NO_LOG"]

    async def go() -> int:
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").exists():  # opening it would create it
            return no_log(
                f"none to verify: no database at {where} (ROGATORY_DATA_DIR or DATABASE_URL must name the audit process's)"
            )
        db = Database(url.render_as_string(hide_password=False), schema=settings.schema_for("audit"))
        nc, unchecked = None, "NATS_URL is not set"  # and no `make run` wrote where its NATS is
        nats_url = settings.nats_url or running_nats_url(settings)
        if nats_url:
            try:
                nc = await connect(nats_url, name="rogatory/audit-verify", retry_forever=False)
            except Exception as exc:  # noqa: BLE001 - any failure: the anchors are not checked, said so
                unchecked = f"NATS did not answer: {type(exc).__name__}"  # not the URL: it may hold a password
        try:
            verification = await verify_log(Reader(db), nc.jetstream() if nc else None, unchecked=unchecked)
        except NoAuditLog as missing:
            return no_log(
                f"none to verify: {where} {missing} (not the audit process's database, or never migrated: `rogatory migrate audit`)"
            )
        except DatabaseUnavailable as away:
            return no_log(f"the audit database at {where} cannot be read ({away})")
        finally:
            await db.dispose()
            if nc:
                await nc.close()
        for problem in verification.breaks:
            print(f"BROKEN at entry {problem.seq}: {problem.problem}")
        print(verification.summary())
        return AUDIT_EXIT[verification.outcome]

    sys.exit(asyncio.run(go()))


def _database_place(url: URL, schema: str) -> str:
    """Where a database is, for a message: its file, or its server, database and schema (never a password)."""
    if url.get_backend_name() == "sqlite":
        return str(url.database)
    return f"{url.render_as_string(hide_password=True)} (schema {schema})"


def deadletter_command(args: argparse.Namespace) -> None:
    """Reads and replays the stream's parked events (NATS_URL, else the address `make run` wrote)."""
    from services.plumbing.deadletters import parked_events, replay  # noqa: PLC0415
    from services.plumbing.messaging import connect  # noqa: PLC0415

    settings = Settings()
    nats_url = settings.nats_url or load_run_file()["nats"]
    if args.deadletter_command == "replay" and not (args.all or args.consumer or args.event):
        sys.exit("say which events: --event EVENT_ID, --consumer NAME, or --all")

    async def go() -> int:
        nc = await connect(nats_url, name="rogatory/deadletter")
        try:
            js = nc.jetstream()
            parked = await parked_events(js, settings.stream_name, args.consumer)
            if args.deadletter_command == "list":
                _print_parked(parked, settings.stream_name)
                return 0
            chosen = [p for p in parked if not args.event or p.event_id in args.event]
            if not chosen:
                print("no parked event matches")
                return 1
            report = await replay(js, settings.stream_name, chosen)
        finally:
            await nc.close()
        for event in report.replayed:
            print(f"replayed {event.event_id} ({event.event_type}, {event.subject}) to {event.consumer}")
        for event, why in report.skipped:
            print(f"NOT replayed {event.event_id}: {why}")
        print(
            f"{len(report.replayed)} event(s) sent back to the consumers that parked them: each is applied once "
            "(an event already applied is dropped by the inbox); one that fails again is parked again "
            "(`rogatory deadletter list`)"
        )
        return 1 if report.skipped else 0

    sys.exit(asyncio.run(go()))


def _print_parked(parked: list[ParkedEvent], stream: str) -> None:
    if not parked:
        print(f"no parked events on stream {stream}")
        return
    rows = [("PARKED (UTC)", "CONSUMER", "EVENT ID", "TYPE", "SUBJECT", "DELIVERIES", "REASON")]
    for p in parked:
        when = p.parked_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        rows.append((when, p.consumer, p.event_id, p.event_type, p.subject, str(p.deliveries), p.reason))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join([*(cell.ljust(width) for cell, width in zip(row, widths, strict=False)), row[-1]]))
    print(f"{len(parked)} parked event(s) on stream {stream}; `rogatory deadletter replay` sends them back once fixed")


def issue_certificates(args: argparse.Namespace) -> None:
    """Files for ROGATORY_TLS_CERT_FILE / _KEY_FILE / _CLIENT_CA_FILE and for each client."""
    from services.tools.certificates import Authority  # noqa: PLC0415

    authority = Authority.create()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ca.crt").write_bytes(authority.cert_pem)
    authority.server(tuple(args.host) or ("localhost", "127.0.0.1")).write(args.out, "server")
    for client in args.client:
        kind, _, principal_id = client.partition(":")
        if kind not in ("court", "agency", "admin") or not principal_id:
            sys.exit(f"--client {client!r}: give KIND:ID with KIND court, agency or admin")
        authority.client(kind, principal_id).write(args.out, f"{kind}-{principal_id}")
    print(f"CA, server and {len(args.client)} client certificate(s) written to {args.out}")
    print(f"services: ROGATORY_TLS_CERT_FILE={args.out}/server.crt ROGATORY_TLS_KEY_FILE={args.out}/server.key "
          f"ROGATORY_TLS_CLIENT_CA_FILE={args.out}/ca.crt")  # fmt: skip


def nats_auth(args: argparse.Namespace) -> None:
    """`include auth.conf` in nats-server's config; hand each party its credentials.json entry."""
    from registry.agencies import AgencyCatalog  # noqa: PLC0415
    from registry.courts import CourtCatalog  # noqa: PLC0415
    from services.tools.nats_permissions import all_users, authorization_block, credentials  # noqa: PLC0415

    settings = Settings()
    users = all_users(CourtCatalog.default(), AgencyCatalog.default(), settings.stream_name, admins=args.admin or ["ops"])
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("auth.conf", authorization_block(users)),
        ("credentials.json", json.dumps(credentials(users), indent=2, ensure_ascii=False)),
    ):
        path = args.out / name
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)  # passwords
        path.write_text(text)
    print(f"{len(users)} NATS users written to {args.out}/auth.conf and {args.out}/credentials.json")
    print(f"services connect as NATS_URL=nats://rogatory-service:<password>@HOST:4222 (see {args.out}/credentials.json)")
    print("rogatory-operator is for people (stream maintenance: update, purge, delete); give it to no service")


if __name__ == "__main__":
    main()
