"""The write door and the read door (services/plumbing/unit_of_work.py), on SQLite and PostgreSQL:
batching with a savepoint per unit, idempotent replay by request key, the outbox in the same
transaction, the relay woken after the commit, trace context, races with another process."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from opentelemetry.sdk.trace import TracerProvider
from rogatory.events.v1 import events_pb2
from sqlalchemy import Column, DateTime, Integer, MetaData, Table, Text, insert, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.util import await_only

from registry.errors import Aborted, AlreadyExists
from services.plumbing import unit_of_work
from services.plumbing.db import Database, DatabaseUnavailable
from services.plumbing.events import Event
from services.plumbing.idempotency import REQUEST_LOG
from services.plumbing.outbox import Outbox
from services.plumbing.unit_of_work import Insert, Reader, Tx, Writer
from tests.conftest import request_key

CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("caller")


async def _scratch_db(service_db_factory) -> Database:  # type: ignore[no-untyped-def]
    db: Database = await service_db_factory("assistance")
    await db.run_transaction(lambda conn: conn.execute(text("CREATE TABLE scratch (n INTEGER PRIMARY KEY, note TEXT)")))
    return db


def _numbers(conn: Connection) -> list[int]:
    return [n for (n,) in conn.execute(text("SELECT n FROM scratch ORDER BY n"))]


def _outbox_subjects(conn: Connection) -> list[str]:
    return [s for (s,) in conn.execute(text("SELECT subject FROM outbox ORDER BY seq"))]


def _event(n: int) -> Event:
    return Event("rogatory.test.written.v1", f"rogatory.v1.test.{n}.written", events_pb2.CaseClosed())


SCRATCH = Table("scratch", MetaData(), Column("n", Integer, primary_key=True), Column("note", Text))


def _insert(n: int, *, fail: bool = False, kept: bool = False):  # type: ignore[no-untyped-def]
    """A unit writing row n and its event; `kept`: the row goes with the batch's multi-row insert."""

    def work(tx: Tx) -> tuple[int, str]:
        if kept:
            tx.insert(SCRATCH, [{"n": n, "note": "kept"}])
        else:
            tx.connection.execute(text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})
        tx.emit(_event(n))
        if fail:
            raise ValueError(f"unit {n} is refused after its insert and its event")
        return n, CALLER.get("")

    return work


def _replay_number(conn: Connection, resource: str) -> tuple[int, str]:
    n = int(resource.removeprefix("scratch/"))
    assert n in _numbers(conn), f"{resource} was logged but not written"
    return n, "replayed"


def _resource(result: tuple[int, str]) -> str:
    return f"scratch/{result[0]}"


async def test_concurrent_units_share_a_transaction_and_a_failing_unit_fails_alone(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())

    async def unit(n: int) -> tuple[int, str]:
        CALLER.set(f"caller-{n}")
        return await writer.run(_insert(n, fail=n == 2))

    results = await asyncio.gather(*(unit(n) for n in (1, 2, 3)), return_exceptions=True)
    assert results[0] == (1, "caller-1") and results[2] == (3, "caller-3")  # each in its caller's context
    assert isinstance(results[1], ValueError)
    assert writer.batches == 1
    with pytest.raises(ValueError):
        await unit(2)  # alone in its batch: the transaction is its savepoint
    await writer.close()
    assert await db.run_read(_numbers) == [1, 3]
    assert await db.run_read(_outbox_subjects) == ["rogatory.v1.test.1.written", "rogatory.v1.test.3.written"]


async def test_a_fault_of_the_database_fails_every_unit_of_the_batch(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())

    def unavailable(tx: Tx) -> None:
        raise DatabaseUnavailable("the disk went away")

    results = await asyncio.gather(writer.run(_insert(1)), writer.run(unavailable), return_exceptions=True)
    await writer.close()
    assert all(isinstance(r, DatabaseUnavailable) for r in results)
    assert await db.run_read(_numbers) == []


async def test_a_request_key_is_applied_once_and_its_retry_gets_the_resource_as_it_is_now(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    outbox = Outbox()
    writer = Writer(db, outbox)
    key = request_key("r-1", body=b"one")
    once = {"resource_of": _resource, "replay": _replay_number}

    assert await writer.run(_insert(1), request=key, **once) == (1, "")
    outbox.new_rows.clear()
    assert await writer.run(_insert(1), request=key, **once) == (1, "replayed")  # not inserted twice (the key would fail)
    assert not outbox.new_rows.is_set()  # nothing emitted, nothing to wake the relay for
    with pytest.raises(AlreadyExists) as refused:
        await writer.run(_insert(2), request=request_key("r-1", body=b"two"), **once)
    assert refused.value.reason == "REQUEST_ID_IN_USE"
    # Another caller with the same string is another request.
    assert await writer.run(_insert(3), request=request_key("r-1", caller="courts/other", body=b"one"), **once) == (3, "")
    # A unit that failed logged nothing: its retry is decided afresh.
    with pytest.raises(ValueError):
        await writer.run(_insert(4, fail=True), request=request_key("r-4"), **once)
    assert await writer.run(_insert(4), request=request_key("r-4"), **once) == (4, "")
    await writer.close()
    assert await db.run_read(_numbers) == [1, 3, 4]
    assert len(await db.run_read(_outbox_subjects)) == 3


async def test_two_copies_of_a_request_in_one_batch_apply_once(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())
    key = request_key("r-1", body=b"one")
    once = {"resource_of": _resource, "replay": _replay_number}
    first, second, other = await asyncio.gather(
        writer.run(_insert(1), request=key, **once),
        writer.run(_insert(1), request=key, **once),
        writer.run(_insert(2), request=request_key("r-1", body=b"two"), **once),
        return_exceptions=True,
    )
    await writer.close()
    assert writer.batches == 1
    assert first == (1, "") and second == (1, "replayed")
    assert isinstance(other, AlreadyExists) and other.reason == "REQUEST_ID_IN_USE"
    assert await db.run_read(_numbers) == [1]


async def test_a_copy_that_lost_a_race_with_another_process_is_answered_like_a_retry(
    service_db_factory, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The winner (another replica) committed the row and its key after this batch looked the key
    up: whether the loser fails on its own insert or on the key, it gets the winner's answer."""
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())
    # The loser inserts the winner's row again (a constraint fails) / another row (its key conflicts).
    assert await _lose_a_race(db, writer, monkeypatch, 1, _insert(1)) == (1, "replayed")
    assert await _lose_a_race(db, writer, monkeypatch, 2, _insert(20)) == (2, "replayed")
    await writer.close()
    assert await db.run_read(_numbers) == [1, 2]  # the loser's row 20 was rolled back
    assert await db.run_read(_outbox_subjects) == []


async def _lose_a_race(db: Database, writer: Writer, monkeypatch: pytest.MonkeyPatch, n: int, work) -> object:  # type: ignore[no-untyped-def]
    key = request_key(f"r-{n}")

    def winner(conn: Connection) -> None:
        conn.execute(text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})
        conn.execute(insert(REQUEST_LOG), [key.log_row(f"scratch/{n}")])

    await db.run_transaction(winner)
    looked_up = unit_of_work._logged
    missed: list[bool] = []

    def before_the_winner(conn: Connection, keys: list[str]) -> dict[str, tuple[str, str]]:
        if not missed:  # the batch's own look-up ran before the winner's commit
            missed.append(True)
            return {}
        return looked_up(conn, keys)

    monkeypatch.setattr(unit_of_work, "_logged", before_the_winner)
    try:
        return await writer.run(work, request=key, resource_of=_resource, replay=_replay_number)
    finally:
        monkeypatch.setattr(unit_of_work, "_logged", looked_up)


async def test_a_race_lost_on_a_constraint_without_a_winner_is_the_constraints_error(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())
    await writer.run(_insert(1))
    with pytest.raises(IntegrityError):
        await writer.run(_insert(1), request=request_key("r-1"), resource_of=_resource, replay=_replay_number)
    await writer.close()


async def test_events_carry_the_trace_context_of_the_span_they_were_emitted_in(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())
    tracer = TracerProvider().get_tracer("tests")  # recording spans, whatever the global provider

    def work(tx: Tx) -> str:
        with tracer.start_as_current_span("the matter's span") as span:
            tx.emit(_event(1))
            return format(span.get_span_context().trace_id, "032x")

    with tracer.start_as_current_span("the call"):
        trace_id = await writer.run(work)
    await writer.close()
    [(traceparent,)] = await db.run_read(lambda conn: list(conn.execute(text("SELECT traceparent FROM outbox"))))
    assert traceparent.split("-")[1] == trace_id


async def test_the_relay_is_woken_after_the_commit_and_only_when_events_were_written(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    outbox = Outbox()
    writer = Writer(db, outbox)
    seen_at_commit: list[bool] = []

    def quiet(tx: Tx) -> None:
        tx.connection.execute(text("INSERT INTO scratch (n) VALUES (7)"))

    def loud(tx: Tx) -> None:
        tx.emit(_event(8))
        seen_at_commit.append(outbox.new_rows.is_set())  # inside the transaction: not yet

    await writer.run(quiet)
    assert not outbox.new_rows.is_set()
    await writer.run(loud)
    assert outbox.new_rows.is_set() and seen_at_commit == [False]
    outbox.new_rows.clear()
    with pytest.raises(ValueError):
        await writer.run(_insert(9, fail=True))
    assert not outbox.new_rows.is_set()
    await writer.close()


async def test_reader_runs_synchronous_reads_and_coalesces_keyed_loads(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db)
    for n in (1, 2, 3):
        await writer.run(_insert_plain(n))
    await writer.close()
    reader = Reader(db)
    numbers, thread = await reader.run(lambda conn: (_numbers(conn), threading.current_thread().name))
    assert numbers == [1, 2, 3]
    assert thread.startswith("sqlite-reader") if db.is_sqlite else thread == threading.current_thread().name
    calls: list[list[int]] = []

    def load_many(conn: Connection, keys: list[int]) -> dict[int, int]:
        calls.append(sorted(keys))
        return {n: n * 10 for n in _numbers(conn) if n in keys}

    loader = reader.loader("scratch-loader", load_many)
    assert await asyncio.gather(*(loader.load(n) for n in (1, 2, 3, 4))) == [10, 20, 30, None]
    await loader.close()
    assert calls == [[1, 2, 3, 4]]


def _insert_plain(n: int):  # type: ignore[no-untyped-def]
    def work(tx: Tx) -> None:
        tx.connection.execute(text("INSERT INTO scratch (n) VALUES (:n)"), {"n": n})

    return work


async def test_a_unit_with_a_request_key_must_say_how_to_answer_a_retry(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db)
    with pytest.raises(TypeError):
        await writer.run(_insert_plain(1), request=request_key("r"))
    with pytest.raises(RuntimeError):  # no outbox: nothing to emit to
        await writer.run(_insert(2))
    await writer.close()


async def test_rows_a_unit_only_inserts_go_with_the_batch_and_a_conflict_fails_only_its_unit(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """Kept rows are written with one statement per table after the units; a later unit that reads
    sees them; when they conflict, each unit runs again alone and only the offending one fails."""
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())
    await writer.run(_insert(5, kept=True))

    def count(tx: Tx) -> int:
        return len(_numbers(tx.connection))

    results = await asyncio.gather(
        writer.run(_insert(1, kept=True)),
        writer.run(_insert(5, kept=True)),  # row 5 exists: this unit's rows conflict
        writer.run(_insert(2, kept=True)),
        writer.run(count),
        return_exceptions=True,
    )
    await writer.close()
    assert results[0] == (1, "") and results[2] == (2, "")
    assert isinstance(results[1], IntegrityError)
    assert results[3] == 3  # 5, then 1 and 2 (in the batch re-run alone: 5, 1, 2)
    assert await db.run_read(_numbers) == [1, 2, 5]
    assert await db.run_read(_outbox_subjects) == [f"rogatory.v1.test.{n}.written" for n in (5, 1, 2)]


async def test_a_copy_in_the_same_batch_reads_back_the_kept_rows_of_the_first(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())
    key = request_key("r-1")
    once = {"resource_of": _resource, "replay": _replay_number}
    first, second = await asyncio.gather(
        writer.run(_insert(1, kept=True), request=key, **once), writer.run(_insert(1, kept=True), request=key, **once)
    )
    await writer.close()
    assert (first, second, writer.batches) == ((1, ""), (1, "replayed"), 1)


async def test_an_insert_unit_is_prepared_in_the_callers_task_and_written_with_the_batch(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """Insert(rows, events, result): its rows and outbox rows (with the caller's trace context)
    are made before it is queued; a retry is replayed; a conflict fails it alone."""
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())
    tracer = TracerProvider().get_tracer("tests")
    once = {"resource_of": _resource, "replay": _replay_number}

    def insert(n: int) -> Insert[tuple[int, str]]:
        return Insert([(SCRATCH, [{"n": n, "note": "prepared"}])], [_event(n)], (n, ""))

    with tracer.start_as_current_span("the call") as span:
        results = await asyncio.gather(
            writer.run(insert(1), request=request_key("r-1"), **once),
            writer.run(insert(1), request=request_key("r-1"), **once),  # a copy: replayed
            writer.run(insert(2)),
            return_exceptions=True,
        )
        trace_id = format(span.get_span_context().trace_id, "032x")
    with pytest.raises(IntegrityError):
        await writer.run(insert(2))  # row 2 exists
    await writer.close()
    assert results == [(1, ""), (1, "replayed"), (2, "")]
    assert await db.run_read(_numbers) == [1, 2]
    rows = await db.run_read(lambda conn: list(conn.execute(text("SELECT subject, traceparent FROM outbox ORDER BY seq"))))
    assert [subject for subject, _ in rows] == ["rogatory.v1.test.1.written", "rogatory.v1.test.2.written"]
    assert all(traceparent.split("-")[1] == trace_id for _, traceparent in rows)


async def test_two_batches_locking_two_rows_in_opposite_orders_both_succeed_each_unit_once(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """Batching makes independent requests share a transaction. On PostgreSQL the writer runs
    batches side by side, so batch A = [row 1, row 2] and batch B = [row 2, row 1] — four units
    that alone could never deadlock — lock the rows in opposite orders: PostgreSQL aborts one
    transaction (SQLSTATE 40P01). The writer runs that batch's units again, so every caller
    succeeds and each unit applies once. On SQLite one batch at a time holds the writer."""
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, max_batch=2)
    if db.is_sqlite:  # one worker, one writer thread and the write lock: two batches never hold locks at once
        assert writer.concurrency == 1
        return
    await db.run_transaction(lambda conn: conn.execute(text("INSERT INTO scratch (n, note) VALUES (1, ''), (2, '')")))
    a_holds_1, b_holds_2 = asyncio.Event(), asyncio.Event()

    def touch(n: int, tag: str, *, then: asyncio.Event | None = None, after: asyncio.Event | None = None):  # type: ignore[no-untyped-def]
        def work(tx: Tx) -> str:
            tx.connection.execute(text("UPDATE scratch SET note = note || :tag WHERE n = :n"), {"tag": f" {tag}", "n": n})
            if then is not None:
                then.set()
            if after is not None:  # the unit runs in the connection's greenlet: wait on the loop
                await_only(after.wait())
            return tag

        return work

    batch_a = [
        asyncio.ensure_future(writer.run(touch(1, "a1", then=a_holds_1, after=b_holds_2))),
        asyncio.ensure_future(writer.run(touch(2, "a2"))),
    ]
    await a_holds_1.wait()  # A holds row 1 and waits inside its transaction: B is a second batch, run beside it
    batch_b = [
        asyncio.ensure_future(writer.run(touch(2, "b1", then=b_holds_2))),
        asyncio.ensure_future(writer.run(touch(1, "b2"))),
    ]
    results = await asyncio.gather(*batch_a, *batch_b, return_exceptions=True)
    await writer.close()
    assert results == ["a1", "a2", "b1", "b2"]
    assert writer.rerun == 2  # the deadlock happened: one batch was aborted, and its two units ran again
    notes = await db.run_read(lambda conn: dict(conn.execute(text("SELECT n, note FROM scratch ORDER BY n")).all()))
    assert {n: sorted(note.split()) for n, note in notes.items()} == {1: ["a1", "b2"], 2: ["a2", "b1"]}


async def test_a_unit_aborted_for_deadlock_every_time_answers_aborted_write_conflict(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """A unit PostgreSQL keeps aborting (SQLSTATE 40P01, raised by the server itself here) is run
    RETRIES more times, then answered ABORTED WRITE_CONFLICT, which clients retry; before, the
    driver's error reached the caller as INTERNAL."""
    db = await _scratch_db(service_db_factory)
    if db.is_sqlite:
        pytest.skip("SQLite has one writer and never reports a deadlock")
    writer = Writer(db)
    attempts: list[int] = []

    def always_deadlocked(tx: Tx) -> None:
        attempts.append(1)
        tx.connection.execute(text("DO $$ BEGIN RAISE EXCEPTION 'forced' USING ERRCODE = 'deadlock_detected'; END $$"))

    with pytest.raises(Aborted) as caught:
        await writer.run(always_deadlocked)
    await writer.close()
    assert caught.value.reason == "WRITE_CONFLICT"
    assert len(attempts) == unit_of_work.RETRIES + 1


STAMPED = Table("stamped", MetaData(), Column("n", Integer, primary_key=True), Column("at", DateTime(timezone=True)))


async def test_kept_rows_the_database_refuses_fail_only_their_unit_and_lose_no_other_units_rows(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """A unit's kept row that cannot be written for a reason other than a constraint (here a value
    of the wrong type) is found when a later unit needs the connection. The batch's rows are then
    written again unit by unit, so only that unit fails: before, the later unit heard of the
    error, and the rows and event kept after the refused row were never written while their unit
    was told it had applied."""
    db = await _scratch_db(service_db_factory)
    await db.run_transaction(lambda conn: STAMPED.create(conn))
    writer = Writer(db, Outbox())

    def refused(tx: Tx) -> str:
        tx.insert(STAMPED, [{"n": 1, "at": "not a time"}])
        return "refused"

    results = await asyncio.gather(
        writer.run(refused), writer.run(_insert(2, kept=True)), writer.run(_insert(3)), return_exceptions=True
    )
    await writer.close()
    assert isinstance(results[0], Exception) and not isinstance(results[0], AssertionError), results[0]
    assert results[1:] == [(2, ""), (3, "")]
    assert await db.run_read(_numbers) == [2, 3]
    assert await db.run_read(_outbox_subjects) == ["rogatory.v1.test.2.written", "rogatory.v1.test.3.written"]
    assert await db.run_read(lambda conn: list(conn.execute(text("SELECT n FROM stamped")))) == []


async def test_a_snapshot_read_the_database_refuses_fails_its_unit_alone(service_db_factory) -> None:  # type: ignore[no-untyped-def]
    """A unit reading through `tx.snapshot` has no savepoint: when the database refuses its
    statement (on PostgreSQL the batch's transaction is then aborted), the units run again, each
    alone, and only that one fails; the others' rows and events are written."""
    db = await _scratch_db(service_db_factory)
    writer = Writer(db, Outbox())

    def refused_read(tx: Tx) -> None:
        tx.snapshot.execute(text("SELECT n FROM no_such_table"))

    results = await asyncio.gather(
        writer.run(_insert(1)),
        writer.run(refused_read),
        writer.run(_insert(2)),  # its savepoint comes after the refused statement
        writer.run(_insert(3, kept=True)),
        return_exceptions=True,
    )
    await writer.close()
    assert results[0] == (1, "") and results[2] == (2, "") and results[3] == (3, ""), results
    assert isinstance(results[1], DBAPIError) and "no_such_table" in str(results[1])
    assert await db.run_read(_numbers) == [1, 2, 3]
    assert await db.run_read(_outbox_subjects) == [f"rogatory.v1.test.{n}.written" for n in (1, 2, 3)]
