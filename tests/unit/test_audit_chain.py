"""The audit hash chain: intact when untouched; any edit, deletion or truncation is found."""

from __future__ import annotations

from dataclasses import replace

from services.audit.chain import GENESIS, Anchor, AuditEntry, entry_hash, verify


def chain(length: int) -> list[AuditEntry]:
    entries, prev = [], GENESIS
    for seq in range(1, length + 1):
        entry = AuditEntry(seq, 100 + seq, f"event-{seq}", "rogatory.case.registered.v1", "rogatory.v1.case.zj0326.registered",
                           "2026-11-27T08:00:00+00:00", "rogatory/registry", f"{seq:064x}", prev)  # fmt: skip
        entry = replace(entry, hash=entry_hash(entry))
        entries.append(entry)
        prev = entry.hash
    return entries


def test_an_untouched_chain_holds() -> None:
    entries = chain(5)
    assert verify(entries, Anchor(5, entries[-1].hash)) == []
    assert entries[0].prev_hash == GENESIS and len({e.hash for e in entries}) == 5


def test_an_edited_entry_breaks_its_hash() -> None:
    entries = chain(5)
    entries[2] = replace(entries[2], subject="rogatory.v1.case.gd0112.registered")
    assert [(b.seq, "edited" in b.problem) for b in verify(entries)] == [(3, True)]


def test_an_edited_entry_with_a_recomputed_hash_breaks_the_next_link() -> None:
    entries = chain(5)
    forged = replace(entries[2], payload_sha256="f" * 64)
    entries[2] = replace(forged, hash=entry_hash(forged))
    assert [b.seq for b in verify(entries)] == [4]


def test_a_deleted_entry_leaves_a_gap_and_a_broken_link() -> None:
    entries = chain(5)
    del entries[1]
    problems = verify(entries)
    assert [b.seq for b in problems] == [2, 3] and "missing" in problems[0].problem


def test_entries_deleted_from_the_end_are_caught_by_the_anchor() -> None:
    entries = chain(5)
    anchor = Anchor(5, entries[-1].hash)
    assert verify(entries[:3]) == []  # the chain alone cannot tell
    assert [b.seq for b in verify(entries[:3], anchor)] == [5]


def test_each_field_is_committed_to() -> None:
    entry = chain(1)[0]
    for field in ("stream_seq", "event_id", "event_type", "subject", "occurred_at", "source", "payload_sha256", "prev_hash"):
        value = getattr(entry, field)
        changed = replace(entry, **{field: value + 1 if isinstance(value, int) else value + "x"})
        assert entry_hash(changed) != entry.hash, field
