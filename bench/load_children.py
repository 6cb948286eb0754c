"""The two helper processes of `bench.bench_load`: the simulated agencies and the subscribers.

Each runs in its own spawned interpreter (own uvloop, own GIL), so neither the load generator
nor the other can delay it. Both talk to the benchmark over a pipe: they send "ready" once
serving, then wait for "stop" and answer with what they measured.

- **Agencies** (`agencies_process`): the existing simulators (services/tools/agency_simulator):
  `NoticeDesk` for bank-icbc and re-440100 (acknowledges each notice, then answers it, over
  gRPC as the agency), `SimulatedQueryResponder` for every bank and online-payment agency
  (answers property queries on JetStream) and a `TrafficPoliceSimulator` for tp-330300 that
  reports the sighting and the seizure of every vehicle put on its watch list. Their gRPC
  calls go through a timing interceptor, so the agencies' RPCs count like the courts'.
- **Subscribers** (`subscribers_process`): ordered JetStream consumers (deliver new) on the
  subjects a court and an agency may read (docs/events.md), each event timed on arrival
  against its `ce-time`; events that end a flow (notice answered, query completed, vehicle
  seized) are also reported by name, so the benchmark can time the whole flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import grpc
import nats
import uvloop
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy
from rogatory.assistance.v1 import vehicle_control_pb2 as vc
from rogatory.events.v1 import events_pb2, query_events_pb2, vehicle_events_pb2

from registry.agencies import AgencyCatalog, AgencyKind
from services.contract.events import family
from services.plumbing.events import parse_time
from services.tools.agency_simulator.notice_desk import NoticeDesk
from services.tools.agency_simulator.query_responder import SimulatedQueryResponder
from services.tools.agency_simulator.traffic_police import TrafficPoliceSimulator

STREAM = "ROGATORY"
REFERENCE_STREAM, REFERENCE_SUBJECT = "BENCHREF", "bench.reference.published"
REFERENCE_AUDIENCE = "reference: raw js.publish"
NOTICE_AGENCIES = ["bank-icbc", "re-440100"]
TRAFFIC_POLICE = "tp-330300"

#: audience → subject filters it reads: the subject families of the event catalog its NATS user
#: may read (docs/events.md, "Subscribing to one court's or one agency's events"). Property-query
#: requests are direct messages, outside the stream, so no audience replays them.
AUDIENCES: dict[str, list[str]] = {
    "court gd0112": [family("court", f).filter_for("gd0112") for f in ("cases", "sent", "notices", "seizures", "queries")],
    "court zj0326": [family("court", f).filter_for("zj0326") for f in ("cases", "vehicles")],
    "agency bank-icbc": [family("agency", f).filter_for("bank-icbc") for f in ("notices", "seizures")],
    "agency tp-330300": [family("agency", "watchlist").filter_for(TRAFFIC_POLICE)],
    # The reference: raw js.publish by the benchmark during the mix, same headers, same subscriber.
    REFERENCE_AUDIENCE: [REFERENCE_SUBJECT],
}

#: (subject prefix, subject suffix) of events that end a flow → how to read the resource name.
FLOW_ENDS: dict[tuple[str, str], Callable[[bytes], str]] = {
    ("rogatory.v1.notice.gd0112.", ".answered"): lambda d: (
        events_pb2.AssistanceNoticeTransitioned.FromString(d).assistance_notice.name
    ),
    ("rogatory.v1.query.gd0112.", ".completed"): lambda d: (
        query_events_pb2.PropertyQueryCompleted.FromString(d).property_query.name
    ),
    ("rogatory.v1.vehicle.zj0326.", ".seized"): lambda d: vehicle_events_pb2.VehicleSeized.FromString(d).vehicle_control.name,
}


def query_agencies() -> list[str]:
    """The agencies a DEPOSITS + ONLINE_FUNDS query reaches: every bank and online-payment agency."""
    return [a.id for a in AgencyCatalog.default() if a.kind in (AgencyKind.BANK, AgencyKind.ONLINE_PAYMENT)]


# ---------------------------------------------------------------- pipe protocol


def _serve(main: Callable[[str, str, Connection], Any], nats_url: str, assistance: str, conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the benchmark stops it, also on Ctrl-C
    logging.basicConfig(level=logging.WARNING, format=f"[{main.__name__.strip('_')}] %(name)s: %(message)s")
    uvloop.run(main(nats_url, assistance, conn))


async def _until_stop(conn: Connection) -> None:
    """Blocks a thread, not the loop, until the benchmark says stop (or goes away)."""
    with contextlib.suppress(EOFError):
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)


# ---------------------------------------------------------------- agencies


@dataclass
class RpcTimes:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)  # "Method CODE"
    first_errors: dict[str, str] = field(default_factory=dict)


class TimingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """Times every unary call of a simulator's channel, and counts its errors by code."""

    def __init__(self, times: RpcTimes):
        self.times = times

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method.decode() if isinstance(details.method, bytes) else details.method
        name = method.rsplit("/", 1)[-1]
        began = time.perf_counter()
        call = await continuation(details, request)
        try:
            await call
        except grpc.aio.AioRpcError as error:
            key = f"{name} {error.code().name}"
            self.times.errors[key] += 1
            self.times.first_errors.setdefault(key, error.details() or "")
            raise
        self.times.latencies[name].append(time.perf_counter() - began)
        return call


class SeizingTrafficPolice(TrafficPoliceSimulator):
    """Reports the sighting and the seizure of every vehicle as soon as it is on the unit's list."""

    async def _note(self, agency_id: str, control: vc.VehicleControl, *, listed: bool) -> None:
        await super()._note(agency_id, control, listed=listed)
        if listed and control.state == vc.VehicleControl.ACTIVE:
            task = asyncio.create_task(self._auto_seize(agency_id, control))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


def agencies_process(nats_url: str, assistance: str, conn: Connection) -> None:
    _serve(_agencies, nats_url, assistance, conn)


async def _agencies(nats_url: str, assistance: str, conn: Connection) -> None:
    times = RpcTimes()

    timing = [TimingInterceptor(times)]
    desk = NoticeDesk(nats_url, assistance, interceptors=timing)
    responder = SimulatedQueryResponder(nats_url, query_agencies(), seed=10)
    police = SeizingTrafficPolice(nats_url, assistance, [TRAFFIC_POLICE], interceptors=timing)
    await desk.start(NOTICE_AGENCIES)
    await responder.start()
    await police.start()
    conn.send("ready")
    try:
        await _until_stop(conn)
    finally:
        stop_seconds = {}
        for name, simulator in (("traffic police", police), ("query responder", responder), ("notice desk", desk)):
            began = time.perf_counter()
            await simulator.stop()
            stop_seconds[name] = round(time.perf_counter() - began, 2)
    conn.send(
        {
            "latencies": dict(times.latencies),
            "errors": dict(times.errors),
            "first_errors": times.first_errors,
            "notices_answered": len(desk.answered),
            "query_requests_received": responder.received,
            "query_replies_sent": responder.replied,
            "vehicle_reports": len(police.reports),
            "stop_seconds": stop_seconds,  # a drain timing out shows here
        }
    )


# ---------------------------------------------------------------- subscribers


@dataclass
class Arrival:
    arrived: float  # time.time() on arrival
    ce_time: str
    ce_id: str
    subject: str
    data: bytes | None  # kept only for events that end a flow


def subscribers_process(nats_url: str, assistance: str, conn: Connection) -> None:
    _serve(_subscribers, nats_url, assistance, conn)


async def _subscribers(nats_url: str, _assistance: str, conn: Connection) -> None:
    async def quiet(_error: Exception) -> None:  # the benchmark reports what matters
        pass

    nc = await nats.connect(nats_url, error_cb=quiet, name="bench-load-subscribers")
    js = nc.jetstream()
    arrivals: dict[str, list[Arrival]] = {audience: [] for audience in AUDIENCES}
    subscriptions = []

    def on_message(audience: str) -> Callable[[Msg], Any]:
        into = arrivals[audience]

        async def record(msg: Msg) -> None:
            # Only the clock and the headers here; parsing waits until the run is over.
            headers = msg.headers or {}
            ends_flow = any(msg.subject.startswith(p) and msg.subject.endswith(s) for p, s in FLOW_ENDS)
            into.append(Arrival(time.time(), headers.get("ce-time", ""), headers.get("ce-id", ""), msg.subject,
                                msg.data if ends_flow else None))  # fmt: skip

        return record

    for audience, filters in AUDIENCES.items():
        for subject in filters:
            subscriptions.append(
                await js.subscribe(
                    subject,
                    stream=REFERENCE_STREAM if audience == REFERENCE_AUDIENCE else STREAM,
                    cb=on_message(audience),
                    ordered_consumer=True,
                    deliver_policy=DeliverPolicy.NEW,
                )  # fmt: skip
            )
    conn.send("ready")
    try:
        await _until_stop(conn)
        await asyncio.sleep(1.0)  # the last deliveries in flight
    finally:
        for subscription in subscriptions:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        await nc.drain()
    conn.send(summarize(arrivals))


def summarize(arrivals: dict[str, list[Arrival]]) -> dict[str, Any]:
    """Per audience: lags (seconds, sorted) overall and per event family, duplicates; flow ends by name."""
    result: dict[str, Any] = {"audiences": {}, "flow_ends": {}}
    for audience, events in arrivals.items():
        seen: Counter[str] = Counter()
        lags: list[float] = []
        by_family: dict[str, list[float]] = defaultdict(list)
        for a in events:
            seen[a.ce_id] += 1
            if seen[a.ce_id] > 1 or not a.ce_time:
                continue
            lag = a.arrived - parse_time(a.ce_time).timestamp()
            lags.append(lag)
            by_family[a.subject.split(".")[2] + "." + a.subject.rsplit(".", 1)[1]].append(lag)
            if a.data is not None:
                for (prefix, suffix), name_of in FLOW_ENDS.items():
                    if a.subject.startswith(prefix) and a.subject.endswith(suffix):
                        result["flow_ends"].setdefault(name_of(a.data), a.arrived)
        result["audiences"][audience] = {
            "events": len(events),
            "duplicates": sum(c - 1 for c in seen.values() if c > 1),
            "without_ce_time": sum(1 for a in events if not a.ce_time),
            "lags": sorted(lags),
            "by_family": {k: sorted(v) for k, v in sorted(by_family.items())},
        }
    return result
