"""The event catalog (services/contract/events.py) is the only definition of Rogatory's events:
every event the code can write is built from one of its types, and what is derived from it —
the JSON clients load (protos/rogatory/events/v1/catalog.json), the NATS permission families —
is current. Every entry names a payload the protos declare, in the file it names, on a
subject of the stream."""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import FieldDescriptor
from rogatory.assistance.v1 import assistance_pb2, vehicle_control_pb2
from rogatory.delegation.v1 import delegation_pb2
from rogatory.events.v1 import alert_events_pb2, events_pb2, query_events_pb2, vehicle_events_pb2  # noqa: F401 - registers the payloads

import services
from delegation.matters import Action
from registry.agencies import AgencyCatalog
from registry.courts import CourtCatalog
from services.assistance.messages import notice_to_proto
from services.assistance.notice_tracing import notice_attributes
from services.contract import events as catalog
from services.plumbing.events import EventType, SubjectTemplate, defined_event_types
from services.tools.event_catalog import DOCS, OUT, render, render_docs
from tests.unit.test_assistance_domain import send

ROOT = Path(__file__).resolve().parents[2]


def test_catalog_is_not_stale() -> None:
    assert render() == OUT.read_text(encoding="utf-8"), "stale event catalog: run `make proto`"


def test_every_entry_names_a_declared_payload_on_a_stream_subject() -> None:
    catalog = json.loads(OUT.read_text(encoding="utf-8"))
    pool = descriptor_pool.Default()
    for entry in catalog["events"] + catalog["direct"]:
        message = pool.FindMessageTypeByName(entry["payload"])
        assert message.file.name == entry["proto"] and (ROOT / "protos" / entry["proto"]).is_file()
    types = [e["type"] for e in catalog["events"]]
    assert len(types) == len(set(types))
    assert all(e["subject"].startswith("rogatory.v1.") and e["type"].endswith(".v1") for e in catalog["events"])
    assert all(d["subject"].startswith("rogatory.direct.v1.") for d in catalog["direct"])


def test_the_event_tables_of_the_docs_are_the_catalog() -> None:
    """docs/events.md's event and direct-message tables are written from the catalog: a row
    edited by hand, or a catalog change without `make proto`, fails here."""
    assert render_docs(DOCS.read_text(encoding="utf-8")) == DOCS.read_text(encoding="utf-8"), (
        "stale docs/events.md: run `make proto`"
    )


def test_a_table_row_that_disagrees_with_the_catalog_is_found() -> None:
    text = DOCS.read_text(encoding="utf-8")
    edited = text.replace("| `DelegationUrged` (events.proto) |", "| `DelegationTransitioned` (events.proto) |", 1)
    assert edited != text and render_docs(edited) == text


def test_every_event_type_the_docs_name_is_in_the_catalog() -> None:
    """No page names a ce-type the code does not publish (`{verb}` patterns aside)."""
    named = set()
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        named |= {(page.name, t) for t in re.findall(r"rogatory\.[a-z]+\.[a-z-]+\.v1\b", page.read_text(encoding="utf-8"))}
    assert sorted((page, t) for page, t in named if t not in catalog.BY_TYPE) == []


def test_docs_name_every_payload_of_the_catalog() -> None:
    """docs/events.md explains each payload; a new one in the code must reach the docs too."""
    docs = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    catalog = json.loads(OUT.read_text(encoding="utf-8"))
    payloads = {e["payload"].rsplit(".", 1)[1] for e in catalog["events"] + catalog["direct"]}
    assert sorted(p for p in payloads if p not in docs) == []


def test_consumers_are_the_ones_nats_credentials_allow() -> None:
    court = json.loads(OUT.read_text(encoding="utf-8"))["consumers"]["court"]
    assert court["sent"] == {"filter": "rogatory.v1.delegation.{court}.*.>", "consumer": "court-{court}-sent"}
    assert court["cases"] == {"filter": "rogatory.v1.case.{court}.>", "consumer": "court-{court}-cases"}


def _import_every_module_of_services() -> None:
    for module in pkgutil.walk_packages(services.__path__, "services."):
        if not module.name.startswith("services.migrations"):  # frozen schema copies, no events
            importlib.import_module(module.name)


def test_every_event_type_the_code_defines_is_in_the_catalog() -> None:
    """An EventType defined next to the code that emits it, and not listed, fails here."""
    _import_every_module_of_services()
    assert sorted(defined_event_types()) == sorted(catalog.BY_TYPE)
    assert len(catalog.BY_TYPE) == len(catalog.EVENTS)  # no type listed twice


def test_events_are_made_by_their_type_only() -> None:
    """`Event(...)` is called by EventType.event alone, so no code path writes an event the
    catalog does not list (a new one is a new EventType, which the test above checks)."""
    callers = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Event":
                callers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert [c for c in callers if not c.startswith("services/plumbing/events.py:")] == []


def test_an_event_takes_its_own_payload_and_every_id_of_its_subject() -> None:
    delegation = delegation_pb2.Delegation(name="courts/gd0112/delegations/d1")
    at = datetime(2026, 3, 2, tzinfo=UTC)
    acknowledged = catalog.DELEGATION_TRANSITIONED[Action.ACKNOWLEDGE]
    event = acknowledged.event(
        events_pb2.DelegationTransitioned(delegation=delegation),
        occurred_at=at,
        requesting_court="gd0112",
        entrusted_court="ha0122",
    )
    assert (event.event_type, event.subject) == (
        "rogatory.delegation.acknowledged.v1",
        "rogatory.v1.delegation.gd0112.ha0122.acknowledged",
    )
    assert event.occurred_at == at
    with pytest.raises(TypeError, match="carries rogatory.events.v1.DelegationTransitioned"):
        acknowledged.event(events_pb2.DelegationUrged(), requesting_court="gd0112", entrusted_court="ha0122")
    with pytest.raises(ValueError, match="takes"):
        acknowledged.event(events_pb2.DelegationTransitioned(), requesting_court="gd0112")
    with pytest.raises(ValueError, match="unsafe subject token"):
        acknowledged.event(events_pb2.DelegationTransitioned(), requesting_court="gd.0112", entrusted_court="ha0122")
    assert catalog.DELEGATION_TRANSITIONED[Action.DEEM_WITHDRAWN] is catalog.DELEGATION_TRANSITIONED[Action.WITHDRAW]


def test_a_type_is_defined_once() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        EventType(
            catalog.CASE_REGISTERED.type, SubjectTemplate("rogatory.v1.case.{court}.x"), events_pb2.CaseRegistered, "case.name"
        )


@pytest.mark.parametrize("kind", catalog.EVENTS, ids=lambda kind: kind.type)
def test_the_ordering_key_is_a_string_field_of_the_payload(kind: EventType) -> None:
    descriptor = kind.payload.DESCRIPTOR
    *path, last = kind.ordering_key.split(".")
    for name in path:
        descriptor = descriptor.fields_by_name[name].message_type
    assert descriptor.fields_by_name[last].type == FieldDescriptor.TYPE_STRING


@pytest.mark.parametrize("kind", catalog.EVENTS, ids=lambda kind: kind.type)
def test_each_event_is_read_by_a_party_it_names_and_the_admins(kind: EventType) -> None:
    """A party reads an event only where its id is in the subject; alerts are for admins alone."""
    readers = {(r.family.party, r.placeholder) for r in catalog.readers(kind)}
    named = {(catalog.PARTY_OF[p], p) for p in kind.subject.placeholders if p in catalog.PARTY_OF}
    assert ("admin", "") in readers and readers - {("admin", "")} <= named
    assert bool(readers - {("admin", "")}) == (not kind.type.startswith("rogatory.alert."))


def test_a_court_reads_a_matter_as_requesting_or_entrusted_court() -> None:
    readers = {(r.family.name, r.placeholder) for r in catalog.readers(catalog.DELEGATION_SUBMITTED)}
    assert readers == {("sent", "requesting_court"), ("received", "entrusted_court"), ("all", "")}
    assert catalog.families("court")["sent"] == "delegation.{id}.*.>"
    # the watch list is the agencies': the controlling court follows its vehicle events instead
    assert {r.family.party for r in catalog.readers(catalog.WATCHLIST_ENTRY_ADDED)} == {"agency", "admin"}
    assert catalog.family("agency", "watchlist").filter_for("tp-330300") == "rogatory.v1.watchlist.tp-330300.>"


def test_span_attributes_come_from_the_payload() -> None:
    """The relay's and consumers' spans name the matter, notice or vehicle control an event is about,
    with the attributes the calls' spans carry."""
    matter = delegation_pb2.Delegation(
        name="courts/gd0112/delegations/d1", entrusted_court="courts/ha0122", case_number="（2023）粤0112执1号"
    )
    payload = events_pb2.DelegationEscalated(delegation=matter).SerializeToString()
    attributes = catalog.span_attributes(catalog.SUPERVISION_ESCALATED.type, payload)
    assert attributes["rogatory.delegation.name"] == matter.name and attributes["rogatory.court.entrusted"] == "ha0122"
    notice = assistance_pb2.AssistanceNotice(
        name="courts/gd0112/assistanceNotices/n1", case="courts/gd0112/cases/c1", agency="agencies/bank-icbc", kind=2
    )
    payload = events_pb2.AssistanceNoticeSent(assistance_notice=notice).SerializeToString()
    assert catalog.span_attributes(catalog.NOTICE_SENT.type, payload) == {
        "rogatory.assistance_notice.name": notice.name,
        "rogatory.assistance_notice.kind": assistance_pb2.AssistanceNotice.Kind.Name(2),
        "rogatory.case.name": notice.case,
        "rogatory.court": "gd0112",
        "rogatory.agency": "bank-icbc",
    }
    control = vehicle_control_pb2.VehicleControl(name="courts/zj0326/vehicleControls/v1", case="courts/zj0326/cases/c1")
    payload = vehicle_events_pb2.WatchListEntryAdded(vehicle_control=control).SerializeToString()
    assert catalog.span_attributes(catalog.WATCHLIST_ENTRY_ADDED.type, payload) == {
        "rogatory.vehicle_control.name": control.name,
        "rogatory.case.name": control.case,
        "rogatory.court": "zj0326",
    }
    assert catalog.span_attributes(catalog.CASE_REGISTERED.type, b"") == {}
    assert catalog.span_attributes("rogatory.unknown.thing.v1", b"") == {}


def test_consumers_filter_what_the_catalog_lists() -> None:
    assert catalog.aggregate_filter("delegation") == "rogatory.v1.delegation.>"
    assert catalog.CASE_CLOSED.subject.filter() == "rogatory.v1.case.*.closed"
    assert catalog.QUERY_REQUESTED.subject.filter(agency="bank-icbc") == "rogatory.direct.v1.query.*.bank-icbc.requested"
    with pytest.raises(ValueError, match="no event"):
        catalog.aggregate_filter("invoice")


def test_the_subscription_examples_of_the_docs_keep_to_the_families() -> None:
    """docs/events.md's "Subscribing to one court's or one agency's events": each filter of a row
    lies inside the family of a consumer the row names (court-gd0112-sent: delegation.gd0112.*.>)."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("### Subscribing to one court's or one agency's events", 1)[1].split("\n\n", 2)[1]
    checked = 0
    for row in table.splitlines()[2:]:
        _, _who, filters, consumers, _ = row.split("|")
        owned = re.findall(r"`(court|agency|admin)-([a-z0-9{}-]+?)-([a-z]+)`", consumers)
        for subject in re.findall(r"`(rogatory\.v1\.[^`]+)`", filters):
            families = [catalog.family(party, name).filter_for(party_id) for party, party_id, name in owned]
            assert any(_within(subject, f) for f in families), (subject, families)
            checked += 1
    assert checked >= 10


def _within(subject_filter: str, family_filter: str) -> bool:
    """Whether every subject `subject_filter` matches, `family_filter` matches too (NATS wildcards)."""
    inner, outer = subject_filter.split("."), family_filter.split(".")
    for i, token in enumerate(outer):
        if token == ">":
            return len(inner) > i
        if i >= len(inner) or inner[i] == ">" or (token != "*" and token != inner[i]):
            return False
    return len(inner) == len(outer)


def test_other_pages_event_tables_agree_with_the_catalog() -> None:
    """Rows like docs/vehicle-control.md's "| `vehicle.{court}.seized` | `VehicleSeized` | … |"
    (a subject, `.verb` alternatives, the payload) name an event of the catalog with that payload."""
    templates = {kind.subject.template: kind.payload.DESCRIPTOR.name for kind in catalog.EVENTS}
    rows = 0
    for page in sorted((ROOT / "docs").glob("*.md")):
        for line in page.read_text(encoding="utf-8").splitlines():
            match = re.match(r"\| `((?:rogatory\.v1\.)?[a-z-]+\.\{[^`]+)`((?: / `\.[a-z-]+`)*) \| `([A-Za-z]+)` \|", line)
            if match is None:
                continue
            subject, alternatives, payload = match.groups()
            subject = subject if subject.startswith("rogatory.v1.") else f"rogatory.v1.{subject}"
            stem = subject.rsplit(".", 1)[0]
            for each in [subject, *(stem + verb for verb in re.findall(r"`(\.[a-z-]+)`", alternatives))]:
                assert templates.get(each) == payload, f"{page.name}: {line}"
                rows += 1
    assert rows >= 10


def test_each_events_readers_are_families_with_a_consumer() -> None:
    data = json.loads(OUT.read_text(encoding="utf-8"))
    submitted = next(e for e in data["events"] if e["type"] == "rogatory.delegation.submitted.v1")
    assert submitted["readers"] == {"court": {"sent": "{requesting_court}", "received": "{entrusted_court}"}}
    assert submitted["ordering_key"] == "delegation.name"
    for entry in data["events"]:
        for party, families in entry["readers"].items():
            assert set(families) <= set(data["consumers"][party]) and all(f"{p}" in entry["subject"] for p in families.values())


def test_a_notice_events_span_attributes_are_those_of_the_calls_on_it() -> None:
    notice = send(CourtCatalog.default(), AgencyCatalog.default())[0]
    payload = events_pb2.AssistanceNoticeSent(assistance_notice=notice_to_proto(notice)).SerializeToString()
    assert catalog.span_attributes(catalog.NOTICE_SENT.type, payload) == notice_attributes(notice)
