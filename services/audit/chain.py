"""The hash chain: each entry commits to the one before it.

`entry_hash` = SHA-256 over the previous entry's hash and the entry's own fields, each
length-prefixed so no two different entries can serialise alike. Editing any field of an
entry breaks its hash; deleting an entry breaks the next entry's `prev_hash` link and
leaves a gap in `seq`; deleting the last entries is caught by the head published outside
the database (`Anchor`). Plain Python: the store and the CLI use it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

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
    for field in fields:
        data = field.encode()
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
    """A chain head published outside the database (a JetStream key-value entry): entries
    deleted from the end of the log cannot hide behind it."""

    seq: int
    hash: str


def verify(entries: Iterable[AuditEntry], anchor: Anchor | None = None) -> list[Break]:
    """Every break in `entries` (ordered by seq); empty when the chain holds."""
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
    if anchor is not None and hashes.get(anchor.seq) != anchor.hash:
        problem = "is missing (deleted from the end)" if anchor.seq not in hashes else "differs from the published head (edited)"
        breaks.append(Break(anchor.seq, f"the published head {problem}"))
    return breaks
