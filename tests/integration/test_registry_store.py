"""Registry command handlers against real SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from rogatory.events.v1 import events_pb2
from sqlalchemy import func, select

from registry.agencies import AgencyCatalog
from registry.cases import PartyInput, RegisterCase
from registry.courts import CourtCatalog
from registry.errors import AlreadyExists, InvalidArgument, NotFound
from services.plumbing.outbox import OUTBOX, Outbox
from services.plumbing.unit_of_work import Reader, Writer
from services.registry.handlers import RegistryHandlers
from services.registry.messages import case_to_proto
from services.registry.store import CASES, COURTS, PARTIES, CaseQuery
from tests.conftest import request_key

NOW = datetime(2023, 8, 31, 9, 0, tzinfo=UTC)


def command(number: int, court: str = "zj0326", code: str = "浙0326", respondent: str = "张三", year: int = 2023) -> RegisterCase:
    return RegisterCase(
        parent=f"courts/{court}",
        case_number=f"({year}){code}执{number}号",
        parties=(
            PartyInput("APPLICANT", "ORGANIZATION", "温州银行股份有限公司"),
            PartyInput("RESPONDENT", "PERSON", respondent, "11010519491231002X"),
        ),
        amount_owed=Decimal("1000.50"),
    )


@pytest.fixture
async def handlers(service_db_factory) -> RegistryHandlers:
    db = await service_db_factory("registry")
    h = RegistryHandlers(Writer(db, Outbox()), Reader(db), CourtCatalog.default(), AgencyCatalog.default(), clock=lambda: NOW)
    await h.load_reference_data()
    return h


async def count(handlers: RegistryHandlers, table) -> int:  # type: ignore[no-untyped-def]
    async with handlers.db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def test_reference_data_is_loaded_and_reloadable(handlers: RegistryHandlers) -> None:
    await handlers.load_reference_data()  # a restart replaces, never duplicates
    assert await count(handlers, COURTS) == len(CourtCatalog.default())


async def test_create_writes_case_parties_and_event_in_one_transaction(handlers: RegistryHandlers) -> None:
    view = await handlers.create_case(command(1234), request=request_key("req-1"))
    assert view.name == "courts/zj0326/cases/2023-enf-1234"
    assert view.parties[1].id_number_masked == "110105********002X"
    assert (await count(handlers, CASES), await count(handlers, PARTIES), await count(handlers, OUTBOX)) == (1, 2, 1)
    async with handlers.db.read() as conn:
        row = (await conn.execute(select(OUTBOX))).mappings().one()
    assert row["subject"] == "rogatory.v1.case.zj0326.registered"
    payload = events_pb2.CaseRegistered.FromString(row["payload"])
    assert payload.case.parties[1].id_number == "110105********002X"  # masked in the event too
    assert b"11010519491231002X" not in row["payload"]


async def test_the_reply_reuses_the_message_of_the_event_and_matches_a_fresh_read(handlers: RegistryHandlers) -> None:
    """CreateCase renders the case once, for its event and its reply; what it answers is what
    a later GetCase answers, and what subscribers read."""
    created = await handlers.create_case(command(1235))
    assert created.rendered is not None and case_to_proto(created) is created.rendered
    fetched = await handlers.get_case(created.name)
    assert fetched.rendered is None
    fresh = case_to_proto(fetched)
    async with handlers.db.read() as conn:
        payload = events_pb2.CaseRegistered.FromString((await conn.execute(select(OUTBOX.c.payload))).scalar_one())
    assert created.rendered == fresh == payload.case


async def test_same_request_id_returns_the_first_answer(handlers: RegistryHandlers) -> None:
    first = await handlers.create_case(command(7), request=request_key("req-7"))
    again = await handlers.create_case(command(7), request=request_key("req-7"))
    assert replace(again, seq=0) == first  # seq is the list cursor, known only after insert
    assert await count(handlers, OUTBOX) == 1


async def test_concurrent_retries_create_one_case(handlers: RegistryHandlers) -> None:
    results = await asyncio.gather(*(handlers.create_case(command(8), request=request_key("req-8")) for _ in range(5)))
    assert {r.name for r in results} == {"courts/zj0326/cases/2023-enf-8"}
    assert await count(handlers, CASES) == 1


async def test_same_case_number_is_already_exists_and_writes_nothing(handlers: RegistryHandlers) -> None:
    await handlers.create_case(command(9), request=request_key("a"))
    with pytest.raises(AlreadyExists) as caught:
        await handlers.create_case(command(9), request=request_key("b"))
    assert caught.value.reason == "CASE_ALREADY_REGISTERED"
    assert (await count(handlers, CASES), await count(handlers, OUTBOX)) == (1, 1)


async def test_invalid_case_writes_nothing(handlers: RegistryHandlers) -> None:
    with pytest.raises(InvalidArgument):
        await handlers.create_case(command(0))
    assert (await count(handlers, CASES), await count(handlers, PARTIES), await count(handlers, OUTBOX)) == (0, 0, 0)


async def test_amounts_beyond_32_bits_are_stored(handlers: RegistryHandlers) -> None:
    """enforcement_case.amount_owed_fen is BIGINT (registry_0001); the table once said Integer,
    and PostgreSQL refused 50,000,000 yuan as out of int32 range (found by test_schema_drift)."""
    view = await handlers.create_case(replace(command(4242), amount_owed=Decimal("50000000.00")))
    assert view.amount_owed_fen == 5_000_000_000
    assert (await handlers.get_case(view.name)).amount_owed_fen == 5_000_000_000


async def test_get_unknown_case_is_not_found(handlers: RegistryHandlers) -> None:
    with pytest.raises(NotFound):
        await handlers.get_case("courts/zj0326/cases/2023-enf-404")


async def test_list_filters_and_keyset_pages(handlers: RegistryHandlers) -> None:
    for n in range(1, 8):
        await handlers.create_case(command(n, respondent="张三" if n % 2 else "李四"))
    await handlers.create_case(command(1, year=2022))
    await handlers.create_case(command(1, court="gd0112", code="粤0112"))

    async def names(query: CaseQuery) -> list[str]:
        return [v.name.rsplit("/", 1)[1] for v in await handlers.list_cases(query, 0, 100)]

    assert len(await names(CaseQuery())) == 9
    assert len(await names(CaseQuery(court_id="zj0326"))) == 8
    assert await names(CaseQuery(court_id="zj0326", year=2022)) == ["2022-enf-1"]
    assert await names(CaseQuery(party="李")) == ["2023-enf-2", "2023-enf-4", "2023-enf-6"]
    assert await names(CaseQuery(type_code="执恢")) == []
    page_one = await handlers.list_cases(CaseQuery(court_id="zj0326"), 0, 3)
    page_two = await handlers.list_cases(CaseQuery(court_id="zj0326"), page_one[-1].seq, 3)
    assert [v.sequence for v in page_one + page_two] == [1, 2, 3, 4, 5, 6]


async def test_party_filter_treats_wildcards_literally(handlers: RegistryHandlers) -> None:
    await handlers.create_case(command(1, respondent="张三"))
    assert await handlers.list_cases(CaseQuery(party="%"), 0, 10) == []
