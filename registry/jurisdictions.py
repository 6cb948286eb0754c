"""Which special court takes a matter of its kind in a region, for routing delegations.

Ordinary matters go to the basic court of the property's GB/T 2260 division; some go to a
special court whose territory is drawn differently — a ship's seizure to the maritime
court of those waters. The territories are data (`registry/data/special_jurisdictions.csv`)
because they come from Supreme People's Court notices the project has not verified, and
change by notice, not by release. Stdlib only.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass
from importlib import resources

from registry.agencies import covers
from registry.courts import CourtCatalog, SpecialKind


@dataclass(frozen=True)
class SpecialJurisdiction:
    court_id: str
    special_kind: SpecialKind
    area: str  # GB/T 2260 area code: province (xx0000), prefecture (xxxx00) or county
    source: str


class JurisdictionTable:
    def __init__(self, entries: list[SpecialJurisdiction]):
        self.entries = entries

    @classmethod
    def from_csv(cls, text: str) -> JurisdictionTable:
        rows = csv.DictReader(io.StringIO(text))
        return cls([SpecialJurisdiction(r["court_id"], SpecialKind(r["special_kind"]), r["area"], r["source"]) for r in rows])

    @classmethod
    def default(cls) -> JurisdictionTable:
        return _default_table()

    def court_for(self, kind: SpecialKind, division_code: str) -> str | None:
        """The special court of `kind` whose territory holds `division_code`; the narrowest wins."""
        matches = [e for e in self.entries if e.special_kind is kind and covers(e.area, division_code)]
        return max(matches, key=lambda e: _narrowness(e.area)).court_id if matches else None

    def problems(self, courts: CourtCatalog) -> list[str]:
        """Entries naming a court that is not a special court of that kind (for tests and start-up)."""
        found = []
        for entry in self.entries:
            court = courts.get(entry.court_id)
            if court is None or court.special_kind is not entry.special_kind:
                found.append(f"{entry.court_id}: not a {entry.special_kind} court")
        return found


def _narrowness(area: str) -> int:
    return 0 if area.endswith("0000") else 1 if area.endswith("00") else 2


@functools.cache
def _default_table() -> JurisdictionTable:
    return JurisdictionTable.from_csv((resources.files("registry") / "data" / "special_jurisdictions.csv").read_text("utf-8"))
