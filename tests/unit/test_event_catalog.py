"""The event catalog clients load (protos/rogatory/events/v1/catalog.json) is what the code
defines now: regenerating it gives the checked-in file, and every entry names a payload the
protos declare, in the file it names, on a subject of the stream."""

from __future__ import annotations

import json
from pathlib import Path

from google.protobuf import descriptor_pool
from rogatory.events.v1 import alert_events_pb2, events_pb2, query_events_pb2, vehicle_events_pb2  # noqa: F401 - registers the payloads

from services.tools.event_catalog import OUT, render

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
