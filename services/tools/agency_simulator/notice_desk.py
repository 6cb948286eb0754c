"""SIMULATED agency notice desks for the demo and the tests — not a real agency system.

`NoticeDesk` plays banks, real-estate registries, market regulators (and any other agency)
receiving assistance notices (协助执行通知书): it reads the notices addressed to the agencies
it plays from a durable JetStream consumer per agency
(`rogatory.v1.notice.*.{agency}.sent`), acknowledges each over gRPC as that agency
(the Python client, `rogatory_client`, with `dev:agency:{agency}`) and replies the way such a desk would:

- a bank answers a query with the balance, freezes the amount asked or what is left on the
  account (queued, 轮候, when an earlier freeze took it all), deducts up to the balance,
  registers renewals and unfreezes;
- a real-estate registry (and a traffic-police vehicle registry) registers a seal, or
  queues it behind the seals already on the same unit, with its position; registers
  renewals, unseals and transfers;
- a market regulator registers an equity freeze, or queues it behind an earlier one;
- anyone else registers income withholding.

What a desk knows (balances, seals it registered) lives in memory: one desk, one run.

    desk = NoticeDesk(nats_url, assistance_address)
    await desk.start(["bank-icbc", "re-440100"])
    ...
    await desk.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import nats
from grpc.aio import ClientInterceptor
from nats.aio.client import Client as NATS
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from rogatory.assistance.v1 import assistance_pb2 as pb
from rogatory.events.v1 import events_pb2

from registry.agencies import AgencyCatalog, AgencyKind
from rogatory_client import AsyncClient, Credentials, DeadlineExceeded, Endpoints, RogatoryError, Unavailable
from services.contract.events import NOTICE_SENT

log = logging.getLogger(__name__)
K = pb.AssistanceNotice
R = pb.NoticeResult
#: What a simulated account holds unless `balances` says otherwise: 10,000,000 元.
DEFAULT_BALANCE_FEN = 1_000_000_000


@dataclass
class NoticeDesk:
    nats_url: str
    assistance_address: str
    stream: str = "ROGATORY"
    agencies: AgencyCatalog = field(default_factory=AgencyCatalog.default)
    #: account number → balance in fen; unknown accounts hold DEFAULT_BALANCE_FEN.
    balances: dict[str, int] = field(default_factory=dict)
    #: Durable consumer names are `{durable_prefix}-{agency}`: a restarted desk resumes.
    durable_prefix: str = "simulated-notice-desk"
    #: Where a new durable consumer starts: NEW answers only notices sent from now on.
    deliver_policy: DeliverPolicy = DeliverPolicy.NEW
    answered: list[pb.AssistanceNotice] = field(default_factory=list)  # what it replied, for the demo and tests
    interceptors: Sequence[ClientInterceptor] = ()  # on every desk's calls (the load benchmark times them)
    _nc: NATS | None = None
    _desks: dict[str, AsyncClient] = field(default_factory=dict)  # each agency's system, with its own credential
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    #: asset key → notices registered on it, in order (the desk's own register of seals/freezes)
    _register: dict[str, list[str]] = field(default_factory=dict)

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self, agency_ids: list[str]) -> None:
        for agency_id in agency_ids:
            credentials = Credentials.dev_token(f"agency:{agency_id}")
            endpoints = Endpoints(assistance=self.assistance_address)
            self._desks[agency_id] = AsyncClient(credentials, endpoints, interceptors=self.interceptors)
        self._nc = await nats.connect(self.nats_url, name="simulated-notice-desk")
        js = self._nc.jetstream()
        for agency_id in agency_ids:
            subject = NOTICE_SENT.subject.filter(agency=agency_id)
            config = ConsumerConfig(
                durable_name=f"{self.durable_prefix}-{agency_id}",
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=self.deliver_policy,
                filter_subject=subject,
                ack_wait=30,
            )
            subscription = await js.pull_subscribe(subject, durable=config.durable_name, stream=self.stream, config=config)
            self._tasks.append(asyncio.create_task(self._serve(agency_id, subscription), name=f"notice-desk-{agency_id}"))

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._nc is not None:
            # Not drain(): the cancelled fetches left pull requests behind, which a drain waits
            # out for its whole timeout. Every ack was already sent; flush them and close.
            with contextlib.suppress(Exception):
                await self._nc.flush(timeout=5)
            await self._nc.close()
        for desk in self._desks.values():
            await desk.close()

    async def wait_for_answer(self, notice_name: str, timeout: float = 10.0) -> pb.AssistanceNotice:
        """The desk's reply to `notice_name`, once it has given one."""

        def found() -> pb.AssistanceNotice | None:
            return next((n for n in self.answered if n.name == notice_name), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(found), timeout)
        answer = found()
        assert answer is not None
        return answer

    # --- the loop ---------------------------------------------------------------------------------

    async def _serve(self, agency_id: str, subscription: object) -> None:
        while not self._stopping.is_set():
            try:
                messages = await subscription.fetch(16, timeout=0.5)  # type: ignore[attr-defined]
            except (TimeoutError, NatsTimeoutError):
                continue
            for message in messages:
                notice = events_pb2.AssistanceNoticeSent.FromString(message.data).assistance_notice
                try:
                    await self._handle(agency_id, notice)
                except (Unavailable, DeadlineExceeded):
                    await message.nak(delay=1)  # the service is away for longer than the client retried: later
                    continue
                except RogatoryError as error:
                    # Anything else (e.g. already answered on a redelivery) will not get better.
                    log.info("notice desk %s on %s: %s", agency_id, notice.name, error)
                await message.ack()

    async def _handle(self, agency_id: str, notice: pb.AssistanceNotice) -> None:
        stub = self._desks[agency_id].assistance
        received = await stub.ReceiveAssistanceNotice(pb.ReceiveAssistanceNoticeRequest(name=notice.name, etag=notice.etag))
        result = self.decide(agency_id, received)
        replied = await stub.ReplyAssistanceNotice(
            pb.ReplyAssistanceNoticeRequest(name=notice.name, result=result, etag=received.etag)
        )
        async with self._changed:
            self.answered.append(replied)
            self._changed.notify_all()

    # --- how each desk decides ----------------------------------------------------------------------

    def decide(self, agency_id: str, notice: pb.AssistanceNotice) -> pb.NoticeResult:
        agency = self.agencies.get(agency_id)
        kind = agency.kind if agency else None
        if kind is AgencyKind.BANK:
            return self._bank(agency_id, notice)
        if notice.kind == K.SEAL_PROPERTY or notice.kind == K.FREEZE_EQUITY:
            return self._register_or_queue(self._asset(agency_id, notice), notice.name, f"{agency_id}-登记")
        if notice.kind == K.UNSEAL_PROPERTY:
            self._lift(agency_id, notice)
        return R(kind=R.REGISTERED, reference=f"{agency_id}-{notice.name.rsplit('/', 1)[-1][:8]}")

    def _bank(self, agency_id: str, notice: pb.AssistanceNotice) -> pb.NoticeResult:
        account = notice.target_details.deposit_account
        balance = self.balances.get(account.account_number, DEFAULT_BALANCE_FEN)
        key = self._asset(agency_id, notice)
        if notice.kind == K.QUERY_DEPOSITS:
            total = balance if account.account_number else DEFAULT_BALANCE_FEN
            return R(kind=R.FOUND, amount_fen=total) if total else R(kind=R.NOT_FOUND)
        if notice.kind == K.FREEZE_DEPOSITS:
            if balance <= 0:
                # Everything on the account is frozen already: wait behind those freezes.
                if not self._register.get(key):
                    return R(kind=R.NOT_FOUND, note="账户无可冻结余额")
                return self._register_or_queue(key, notice.name, "冻结")
            frozen = min(account.amount_fen or balance, balance)
            self.balances[account.account_number] = balance - frozen
            self._register.setdefault(key, []).append(notice.name)
            return R(kind=R.FROZEN, amount_fen=frozen, reference=f"冻结-{notice.name[-8:]}")
        if notice.kind == K.DEDUCT_DEPOSITS:
            deducted = min(account.amount_fen or balance, balance)
            if deducted <= 0:
                return R(kind=R.NOT_FOUND, note="账户无可扣划余额")
            self.balances[account.account_number] = balance - deducted
            return R(kind=R.DEDUCTED, amount_fen=deducted)
        if notice.kind == K.UNFREEZE_DEPOSITS:
            self._lift(agency_id, notice)
        return R(kind=R.REGISTERED)  # renewals and unfreezes

    def _asset(self, agency_id: str, notice: pb.AssistanceNotice) -> str:
        t = notice.target_details
        which = t.WhichOneof("subject")
        if which == "deposit_account":
            return f"{agency_id}|{t.deposit_account.account_number}"
        if which == "registered_property":
            p = t.registered_property
            return f"{agency_id}|{p.unit_number or p.certificate_number or p.vin or p.plate or p.registration_number}"
        if which == "equity":
            return f"{agency_id}|{t.equity.credit_code}|{t.debtor}"
        return f"{agency_id}|{t.debtor}"

    def _register_or_queue(self, key: str, notice_name: str, reference: str) -> pb.NoticeResult:
        ahead = self._register.setdefault(key, [])
        ahead.append(notice_name)
        if len(ahead) == 1:
            return R(kind=R.REGISTERED, reference=reference)
        return R(kind=R.QUEUED, queue_position=len(ahead) - 1, note=f"轮候查封，前有 {len(ahead) - 1} 项")

    def _lift(self, agency_id: str, notice: pb.AssistanceNotice) -> None:
        """An unseal / unfreeze (its target is the seizure's): the first registered measure on
        the asset leaves the register and those queued behind it move up."""
        names = self._register.get(self._asset(agency_id, notice), [])
        if names:
            names.pop(0)
