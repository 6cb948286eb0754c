"""The hash chain: each entry commits to the one before it, and its heads are anchored.

`entry_hash` = SHA-256 over the previous entry's hash and the entry's own fields, each
length-prefixed so no two different entries can serialise alike. Editing any field of an
entry breaks its hash; deleting an entry breaks the next entry's `prev_hash` link and
leaves a gap in `seq`. What the chain cannot show alone — entries deleted from the end, or
an entry rewritten with every later hash recomputed — is caught by the heads anchored
outside the database (`Anchor`): the chain must still hold every one of them. Plain
Python: the appender and the CLI use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

GENESIS = "0" * 64  # the prev_hash of the first entry


@dataclass(frozen=True)
class AuditEntry:
    seq: int  # position in the chain, 1, 2, 3, …
    stream_seq: int  # the event's JetStream sequence number
    event_id: str
    event_type: str
    subject: str
    occurred_at: str  # ISO 8601, as the event's ce-time says
    source: str
    payload_sha256: str
    prev_hash: str
    hash: str = ""


def entry_hash(entry: AuditEntry) -> str:
    fields = (
        entry.prev_hash,
        str(entry.seq),
        str(entry.stream_seq),
        entry.event_id,
        entry.event_type,
        entry.subject,
        entry.occurred_at,
        entry.source,
        entry.payload_sha256,
    )
    digest = hashlib.sha256()
    for value in fields:
        data = value.encode()
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class Break:
    """Where the chain stops holding, and why."""

    seq: int
    problem: str


@dataclass(frozen=True)
class Anchor:
    """A chain head (entry `seq` and its hash) published outside the database, in an
    append-only JetStream stream; `at` says when, for the messages."""

    seq: int
    hash: str
    at: str = field(default="", compare=False)


def verify(entries: Iterable[AuditEntry], anchors: Sequence[Anchor] = ()) -> list[Break]:
    """Every break in `entries` (ordered by seq), then the first anchored head the chain
    no longer holds; empty when the chain holds and holds every anchored head."""
    breaks: list[Break] = []
    expected_prev, expected_seq = GENESIS, 1
    hashes: dict[int, str] = {}
    for entry in entries:
        if entry.seq != expected_seq:
            breaks.append(Break(expected_seq, f"entries {expected_seq}..{entry.seq - 1} are missing (deleted)"))
        if entry.prev_hash != expected_prev:
            breaks.append(Break(entry.seq, "does not link to the entry before it (that one was edited or deleted)"))
        if entry_hash(entry) != entry.hash:
            breaks.append(Break(entry.seq, "its content does not match its hash (edited)"))
        hashes[entry.seq] = entry.hash
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    # Every anchored head is checked, the first failure reported (for a deleted tail, with
    # the highest anchored head: it names everything that went).
    failed = [(b, a.seq) for a in anchors if (b := anchor_break(a, hashes.get(a.seq), expected_seq - 1))]
    if failed:
        first, _ = min(failed, key=lambda failure: (failure[0].seq, -failure[1]))
        more = f" ({len(failed) - 1} other anchored head(s) fail too)" if len(failed) > 1 else ""
        breaks.append(Break(first.seq, first.problem + more))
    return breaks


def anchor_break(anchor: Anchor, found: str | None, last_seq: int) -> Break | None:
    """Why a chain whose entry `anchor.seq` has hash `found` (None: no such entry) and
    whose last entry is `last_seq` does not hold the anchored head; None when it does."""
    if found == anchor.hash:
        return None
    when = f" at {anchor.at}" if anchor.at else ""
    if found is None and anchor.seq > last_seq:
        gone = f"entry {anchor.seq} is" if anchor.seq == last_seq + 1 else f"entries {last_seq + 1}..{anchor.seq} are"
        problem = (
            f"{gone} missing (deleted from the end): the chain ends at entry {last_seq}, "
            f"but entry {anchor.seq} was anchored{when} with hash {anchor.hash[:16]}…"
        )
        return Break(last_seq + 1, problem)
    if found is None:
        return Break(anchor.seq, f"entry {anchor.seq} is missing, but it was anchored{when} with hash {anchor.hash[:16]}…")
    problem = (
        f"entry {anchor.seq}'s hash {found[:16]}… differs from the head anchored{when} "
        f"({anchor.hash[:16]}…): it or an entry before it was rewritten"
    )
    return Break(anchor.seq, problem)
