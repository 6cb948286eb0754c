"""A delegation that hands over seized property needs a month of the seizure's term left
(委托执行规定 art. 6), judged on the delegation service's replica of seizures, which the
assistance service's events keep; real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rogatory.assistance.v1 import assistance_pb2 as asst
from rogatory.events.v1 import events_pb2
from sqlalchemy import select

from registry.errors import FailedPrecondition, InvalidArgument
from services.delegation.handlers import DelegationHandlers
from services.delegation.seizure_replica import HANDOVER, apply_seizure_changed
from services.delegation.store import DELEGATIONS
from services.plumbing.events import ReceivedEvent
from services.plumbing.times import timestamp
from tests.conftest import Clock
from tests.integration.test_delegation_lifecycle_store import CREATED, REQUESTING, create_command

SEIZURE = f"courts/{REQUESTING}/seizures/s-1"


def seizure_event(expires: datetime, version: int, state: int = asst.Seizure.ACTIVE, name: str = SEIZURE) -> ReceivedEvent:
    seizure = asst.Seizure(
        name=name, agency="agencies/bank-icbc", state=state, expire_time=timestamp(expires), etag=f'W/"{version}"'
    )
    data = events_pb2.SeizureChanged(seizure=seizure).SerializeToString()
    return ReceivedEvent(f"e{version}{name}", "rogatory.seizure.effective.v1", "x", "rogatory/assistance", CREATED, data, {})


async def replicate(handlers: DelegationHandlers, *events: ReceivedEvent) -> None:
    for event in events:
        await handlers.writer.run(lambda tx, event=event: apply_seizure_changed(tx, event))


async def delegate(handlers: DelegationHandlers, *seizures: str) -> str:
    return (await handlers.create_delegation(create_command(), REQUESTING, None, seizures)).delegation.name


async def rows(handlers: DelegationHandlers, table) -> list:  # type: ignore[no-untyped-def]
    async with handlers.db.read() as conn:
        return list(await conn.execute(select(table)))


async def test_less_than_a_month_left_is_refused_until_renewed(handlers: DelegationHandlers, clock: Clock) -> None:
    # Created 2023-08-31 09:00 China time: a term ending 2023-09-29 has less than a month left.
    await replicate(handlers, seizure_event(datetime(2023, 9, 29, 15, 59, tzinfo=UTC), 1))
    with pytest.raises(FailedPrecondition) as raised:
        await delegate(handlers, SEIZURE)
    assert raised.value.reason == "SEIZURE_TERM_TOO_SHORT"
    assert await rows(handlers, DELEGATIONS) == [] and await rows(handlers, HANDOVER) == []

    renewed_until = datetime(2024, 9, 29, 15, 59, tzinfo=UTC)
    await replicate(handlers, seizure_event(renewed_until, 2))
    await replicate(handlers, seizure_event(datetime(2023, 9, 29, tzinfo=UTC), 1))  # a late copy of the old version
    name = await delegate(handlers, SEIZURE)
    handover = await rows(handlers, HANDOVER)
    assert [(r.delegation_name, r.seizure_name) for r in handover] == [(name, SEIZURE)]


async def test_a_month_to_the_day_is_enough(handlers: DelegationHandlers, clock: Clock) -> None:
    # 2023-08-31 + 1 month = 2023-09-30 (China time): a term ending that day is just enough.
    end_of_sep_30 = datetime(2023, 9, 30, 15, 59, 59, tzinfo=UTC)
    await replicate(handlers, seizure_event(end_of_sep_30, 1))
    await delegate(handlers, SEIZURE)
    clock.advance(days=1)
    with pytest.raises(FailedPrecondition):
        await delegate(handlers, SEIZURE)


async def test_unknown_released_or_malformed_seizures_are_refused(handlers: DelegationHandlers, clock: Clock) -> None:
    far = CREATED + timedelta(days=365)
    other_court = "courts/zj0326/seizures/s-9"
    released = f"courts/{REQUESTING}/seizures/s-2"
    await replicate(handlers, seizure_event(far, 1, name=other_court), seizure_event(far, 3, asst.Seizure.RELEASED, released))
    for name, reason in (
        (f"courts/{REQUESTING}/seizures/nope", "SEIZURE_NOT_FOUND"),
        (other_court, "SEIZURE_NOT_FOUND"),
        (released, "SEIZURE_NOT_ACTIVE"),
    ):
        with pytest.raises(FailedPrecondition) as raised:
            await delegate(handlers, name)
        assert raised.value.reason == reason
    with pytest.raises(InvalidArgument) as bad:
        await delegate(handlers, "seizures/1", released, released)
    assert {(v.field, v.reason) for v in bad.value.violations} == {
        ("handed_over_seizures[0]", "RESOURCE_NAME"),
        ("handed_over_seizures[2]", "DUPLICATE"),
    }
    assert await rows(handlers, DELEGATIONS) == []
    assert await delegate(handlers)  # nothing handed over: nothing to check
