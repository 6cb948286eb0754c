"""The audit hash chain: intact when untouched; any edit, deletion or truncation is found,
the last two by the heads anchored outside the database."""

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
    assert verify(entries, [Anchor(n, entries[n - 1].hash) for n in range(1, 6)]) == []
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
    anchor = Anchor(5, entries[-1].hash, "2026-12-07T08:00:00+00:00")
    assert verify(entries[:3]) == []  # the chain alone cannot tell
    [found] = verify(entries[:3], [anchor])
    assert found.seq == 4 and found.problem.startswith("entries 4..5 are missing (deleted from the end)")
    assert "entry 5 was anchored at 2026-12-07T08:00:00+00:00" in found.problem


def test_i15_p3_a_tail_deleted_and_regrown_is_caught_by_an_earlier_anchor() -> None:
    """The last three entries deleted and a new event appended on top: the chain holds, and
    so does the newest head; the heads anchored before do not."""
    entries = chain(5)
    anchors = [Anchor(n, entries[n - 1].hash) for n in range(1, 6)]
    regrown = [*entries[:2], *chain_from(entries[1], ["another event"])]
    assert verify(regrown) == []
    regrown_anchors = [*anchors, Anchor(3, regrown[-1].hash)]
    [found] = verify(regrown, regrown_anchors)
    assert found.seq == 3 and found.problem.startswith("entry 3's hash") and "rewritten" in found.problem
    assert "(2 other anchored head(s) fail too)" in found.problem  # entries 4 and 5 are gone


def test_i15_p3_a_rewrite_with_every_later_hash_recomputed_is_caught_by_the_anchors() -> None:
    entries = chain(5)
    anchors = [Anchor(n, entries[n - 1].hash) for n in range(1, 6)]
    forged = [*entries[:1], *chain_from(entries[0], ["rewritten", "event-3", "event-4", "event-5"])]
    assert verify(forged) == []  # the chain alone cannot tell
    [found] = verify(forged, anchors)
    assert found.seq == 2 and found.problem.startswith(f"entry 2's hash {forged[1].hash[:16]}… differs from the head anchored")
    assert "published head" not in found.problem


def chain_from(after: AuditEntry, event_ids: list[str]) -> list[AuditEntry]:
    """Entries correctly chained after `after`: what someone rewriting the log would write."""
    entries, prev = [], after
    for event_id in event_ids:
        entry = replace(prev, seq=prev.seq + 1, event_id=event_id, prev_hash=prev.hash)
        entry = replace(entry, hash=entry_hash(entry))
        entries.append(entry)
        prev = entry
    return entries


def test_each_field_is_committed_to() -> None:
    entry = chain(1)[0]
    for field in ("stream_seq", "event_id", "event_type", "subject", "occurred_at", "source", "payload_sha256", "prev_hash"):
        value = getattr(entry, field)
        changed = replace(entry, **{field: value + 1 if isinstance(value, int) else value + "x"})
        assert entry_hash(changed) != entry.hash, field
