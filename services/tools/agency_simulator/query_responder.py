"""SIMULATED agencies answering property queries (网络查控) — for the demo, tests and benchmarks only.

`SimulatedQueryResponder` takes, for each agency id it plays, the requests on that agency's
own subject (`rogatory.direct.v1.query.*.{agency}.requested`, core NATS), and answers
each request on its reply subject (`rogatory.direct.v1.query-reply.{agency}.{court}`) with
plausible property data: bank accounts with balances, real-estate units,
vehicles, shareholdings, securities, payment and housing-fund balances. The data is
deterministic: the same seed, query and agency always give the same reply. Agencies can
be made slow (reply after a delay) or silent (never reply), to exercise timeouts. A request
sent again (the service asks until it is answered) is answered again, with the same reply.

    responder = SimulatedQueryResponder(nats_url, ["bank-icbc", "tp-330300"], seed=7, silent={"tp-330300"})
    await responder.start()
    ...
    await responder.stop()

Nothing here is an integration with a real agency.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from collections.abc import Iterable, Mapping

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from rogatory.assistance.v1 import property_query_pb2 as pb
from rogatory.events.v1 import query_events_pb2 as events_pb2

from services.contract.events import QUERY_REQUESTED

log = logging.getLogger(__name__)

_SURNAMES = "王李张刘陈杨黄赵吴周"
_BRANCHES = ("营业部", "城东支行", "城西支行", "开发区支行", "新城支行")
_MODELS = ("大众朗逸", "丰田卡罗拉", "比亚迪秦PLUS", "本田雅阁", "吉利帝豪", "特斯拉Model 3")
_SECURITIES = (("600000", "浦发银行"), ("000001", "平安银行"), ("601318", "中国平安"), ("600519", "贵州茅台"))
_VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"


class SimulatedQueryResponder:
    """Plays the agencies `agency_ids` on the query network; start() / stop() around its use."""

    def __init__(
        self,
        nats_url: str,
        agency_ids: Iterable[str],
        *,
        seed: int = 0,
        slow: Mapping[str, float] | None = None,  # agency id → seconds before it replies
        silent: Iterable[str] = (),  # agencies that never reply
        property_rate: float = 0.4,  # share of (query, agency) pairs that find property
        failure_rate: float = 0.02,  # share that reply FAILED
    ):
        self.nats_url = nats_url
        self.agency_ids = list(dict.fromkeys(agency_ids))
        self._playing = frozenset(self.agency_ids)
        self.seed = seed
        self.slow = dict(slow or {})
        self.silent = frozenset(silent)
        self.property_rate = property_rate
        self.failure_rate = failure_rate
        self.received = 0
        self.replied = 0
        # perf_counter() of the first / last request received and the last reply sent (for benchmarks)
        self.first_request_at = self.last_request_at = self.last_reply_at = 0.0
        self._nc: NATS | None = None
        self._subscriptions: list[Subscription] = []
        self._delayed: set[asyncio.Task[None]] = set()

    async def start(self) -> SimulatedQueryResponder:
        self._nc = await nats.connect(self.nats_url, name="agency-simulator", pending_size=64 * 1024 * 1024)
        # Each agency takes the requests on its own subject only (as its NATS permissions would
        # allow), picked out here by the subject's agency token: one subscription for every
        # agency played, since a thousand in one client mostly measure the client's hand-off
        # per subscription, not what an agency does.
        everyone = QUERY_REQUESTED.subject.filter()
        self._subscriptions.append(await self._nc.subscribe(everyone, cb=self._on_request))
        await self._nc.flush()
        return self

    async def stop(self) -> None:
        for task in list(self._delayed):
            task.cancel()
        await asyncio.gather(*self._delayed, return_exceptions=True)
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None

    async def __aenter__(self) -> SimulatedQueryResponder:
        return await self.start()

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def _on_request(self, msg: Msg) -> None:
        agency_id = msg.subject.split(".")[5]
        if agency_id not in self._playing:
            return  # another agency's request
        self.received += 1
        self.last_request_at = time.perf_counter()
        self.first_request_at = self.first_request_at or self.last_request_at
        request = events_pb2.PropertyQueryRequested.FromString(msg.data)
        if agency_id in self.silent:
            return
        reply_to = msg.reply or request.reply_subject
        delay = self.slow.get(agency_id, 0.0)
        if delay > 0:
            task = asyncio.create_task(self._reply_later(delay, request, agency_id, reply_to))
            self._delayed.add(task)
            task.add_done_callback(self._delayed.discard)
            return
        await self._reply(request, agency_id, reply_to)

    async def _reply_later(self, delay: float, request: events_pb2.PropertyQueryRequested, agency_id: str, reply_to: str) -> None:
        await asyncio.sleep(delay)
        await self._reply(request, agency_id, reply_to)

    async def _reply(self, request: events_pb2.PropertyQueryRequested, agency_id: str, reply_to: str) -> None:
        assert self._nc is not None
        reply = answer_for(request, agency_id, self.seed, self.property_rate, self.failure_rate)
        await self._nc.publish(reply_to, reply.SerializeToString())  # the subject says who; the payload says what
        self.replied += 1
        self.last_reply_at = time.perf_counter()


def answer_for(
    request: events_pb2.PropertyQueryRequested, agency_id: str, seed: int, property_rate: float = 0.4, failure_rate: float = 0.02
) -> events_pb2.PropertyQueryReply:
    """The simulated agency's reply: deterministic in (seed, query, agency)."""
    key = zlib.crc32(f"{seed}|{request.property_query}|{agency_id}".encode())
    reply = events_pb2.PropertyQueryReply(property_query=request.property_query, agency=f"agencies/{agency_id}")
    draw = key / 2**32  # the outcome; a generator (slow to seed) only when there is property to make up
    if draw < failure_rate:
        reply.outcome = pb.AgencyQueryResult.FAILED
        reply.failure_reason = "被执行人身份信息核验不一致（模拟）"
        return reply
    if draw >= failure_rate + property_rate or not request.categories:
        reply.outcome = pb.AgencyQueryResult.NO_PROPERTY
        return reply
    reply.outcome = pb.AgencyQueryResult.ANSWERED
    rng = random.Random(key)
    for category in request.categories:
        for _ in range(rng.randint(1, 2)):
            reply.items.append(_item(rng, category, agency_id))
    return reply


def _item(rng: random.Random, category: int, agency_id: str) -> pb.PropertyItem:
    item = pb.PropertyItem(category=category)  # type: ignore[arg-type]
    if category in (pb.DEPOSITS, pb.WEALTH_PRODUCTS, pb.ONLINE_FUNDS, pb.HOUSING_FUND):
        item.value_fen = rng.randrange(0, 50_000_000)  # up to ¥500,000
        product = {pb.DEPOSITS: rng.choice(("活期", "定期")), pb.WEALTH_PRODUCTS: "稳健理财一号", pb.ONLINE_FUNDS: "余额"}.get(
            category, "住房公积金"
        )
        item.account.CopyFrom(
            pb.Account(
                account_number=f"6222{rng.randrange(10**4):04d}****{rng.randrange(10**4):04d}",
                institution=f"{agency_id} {rng.choice(_BRANCHES)}",
                currency="CNY",
                product=product,
                frozen_fen=rng.choice((0, 0, 0, item.value_fen // 2)),
            )
        )
    elif category == pb.REAL_ESTATE:
        item.value_fen = rng.randrange(50, 500) * 1_000_000  # ¥0.5–5 million, as an estimate
        item.real_estate_unit.CopyFrom(
            pb.RealEstateUnit(
                unit_number=f"{rng.randrange(110000, 660000)}{rng.randrange(10**6):06d}GB{rng.randrange(10**5):05d}F{rng.randrange(10**8):08d}",
                address=f"某市某区{rng.choice(_SURNAMES)}家路{rng.randint(1, 300)}号{rng.randint(1, 30)}幢{rng.randint(101, 2604)}室",
                area_m2=round(rng.uniform(45, 180), 2),
                encumbrances=rng.choice(((), ("抵押：某银行",), ("查封：某法院（2024）执12号",))),
            )
        )
    elif category == pb.VEHICLES:
        vin = "L" + "".join(rng.choice(_VIN_CHARS) for _ in range(16))
        item.vehicle.CopyFrom(
            pb.Vehicle(
                plate="浙C" + "".join(rng.choice("0123456789ABCDEFGHJK") for _ in range(5)),
                vin=vin,
                model=rng.choice(_MODELS),
                registration_status=rng.choice(("正常", "正常", "抵押")),
            )
        )
    elif category == pb.EQUITY:
        capital = rng.randrange(10, 1000) * 1_000_000
        item.value_fen = capital
        item.equity_holding.CopyFrom(
            pb.EquityHolding(
                company=f"{rng.choice(_SURNAMES)}氏商贸有限公司",
                credit_code=f"91{rng.randrange(10**16):016d}",
                subscribed_capital_fen=capital,
                share_basis_points=rng.randrange(100, 10_000),
            )
        )
    elif category == pb.SECURITIES:
        code, name = rng.choice(_SECURITIES)
        quantity = rng.randrange(1, 100) * 100
        item.value_fen = quantity * rng.randrange(500, 5000)
        item.securities_holding.CopyFrom(
            pb.SecuritiesHolding(
                securities_account=f"A{rng.randrange(10**9):09d}", security_code=code, security_name=name, quantity=quantity
            )
        )
    return item
