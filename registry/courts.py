"""The court table: which courts exist, how they are coded and who supervises whom.

Court codes follow 法〔2015〕137号: `最高法` for the Supreme People's Court, a one-character
province abbreviation for a high court, plus 2 digits for an intermediate court and 4 digits
for a basic court. For ordinary courts the digits are digits 3–6 of the GB/T 2260 division
code (`粤0703` ↔ 440703). Special courts (maritime, IP, internet, financial, cross-division,
military, XPCC) break that rule, which is why the registry ships an explicit table
(`registry/data/courts.csv`) instead of deriving courts from division codes.

Stdlib only: the catalog is used by gRPC handlers, the CLI and tests alike.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources

SUPREME_COURT_CODE = "最高法"
SUPREME_COURT_ID = "spc"

# Province abbreviation → (ISO 3166-2:CN subdivision code, first two digits of GB/T 2260).
_PROVINCES: dict[str, tuple[str, str]] = {
    "京": ("bj", "11"), "津": ("tj", "12"), "冀": ("he", "13"), "晋": ("sx", "14"),
    "内": ("nm", "15"), "辽": ("ln", "21"), "吉": ("jl", "22"), "黑": ("hl", "23"),
    "沪": ("sh", "31"), "苏": ("js", "32"), "浙": ("zj", "33"), "皖": ("ah", "34"),
    "闽": ("fj", "35"), "赣": ("jx", "36"), "鲁": ("sd", "37"), "豫": ("ha", "41"),
    "鄂": ("hb", "42"), "湘": ("hn", "43"), "粤": ("gd", "44"), "桂": ("gx", "45"),
    "琼": ("hi", "46"), "渝": ("cq", "50"), "川": ("sc", "51"), "黔": ("gz", "52"),
    "云": ("yn", "53"), "藏": ("xz", "54"), "陕": ("sn", "61"), "甘": ("gs", "62"),
    "青": ("qh", "63"), "宁": ("nx", "64"), "新": ("xj", "65"),
}  # fmt: skip

#: The 31 provincial-level abbreviations → lowercase ISO 3166-2:CN code (浙 → "zj").
ISO_BY_PROVINCE: dict[str, str] = {abbr: iso for abbr, (iso, _) in _PROVINCES.items()}
#: Province abbreviation → first two digits of its GB/T 2260 division codes (浙 → "33").
DIVISION_PREFIX_BY_PROVINCE: dict[str, str] = {abbr: prefix for abbr, (_, prefix) in _PROVINCES.items()}
#: Court systems that have a high-court-level code but no administrative division.
NON_TERRITORIAL_ID_PREFIX: dict[str, str] = {"军": "mil", "兵": "xpcc"}
#: Every character that may start a court code other than 最高法.
COURT_CODE_PREFIXES: frozenset[str] = frozenset(ISO_BY_PROVINCE) | frozenset(NON_TERRITORIAL_ID_PREFIX)

_CODE_DIGITS = re.compile(r"[0-9]*")
_DIVISION_CODE = re.compile(r"[0-9]{6}")


class CourtLevel(StrEnum):
    SUPREME = "SUPREME"
    HIGH = "HIGH"
    INTERMEDIATE = "INTERMEDIATE"
    BASIC = "BASIC"

    @property
    def rank(self) -> int:
        """0 for the Supreme People's Court, growing downwards; a parent always ranks lower."""
        return _LEVEL_RANK[self]


_LEVEL_RANK = {CourtLevel.SUPREME: 0, CourtLevel.HIGH: 1, CourtLevel.INTERMEDIATE: 2, CourtLevel.BASIC: 3}
# Number of digits after the province character in a code of that level.
_DIGITS_BY_LEVEL = {CourtLevel.HIGH: 0, CourtLevel.INTERMEDIATE: 2, CourtLevel.BASIC: 4}
_LEVEL_BY_DIGITS = {n: level for level, n in _DIGITS_BY_LEVEL.items()}


class SpecialKind(StrEnum):
    NONE = ""
    RAILWAY = "RAILWAY"
    MARITIME = "MARITIME"
    IP = "IP"
    INTERNET = "INTERNET"
    FINANCIAL = "FINANCIAL"
    MILITARY = "MILITARY"
    XPCC = "XPCC"
    CROSS_DIVISION = "CROSS_DIVISION"


@dataclass(frozen=True)
class Court:
    id: str
    code: str
    name: str
    level: CourtLevel
    province: str  # one-character abbreviation; "" for 最高法
    division_code: str  # GB/T 2260 code of ordinary courts; "" for special courts and 最高法
    parent_id: str | None
    special_kind: SpecialKind = SpecialKind.NONE

    @property
    def name_resource(self) -> str:
        return f"courts/{self.id}"

    @property
    def is_special(self) -> bool:
        return self.special_kind is not SpecialKind.NONE


def split_court_code(code: str) -> tuple[str, str]:
    """Split `浙0326` into ("浙", "0326"); `最高法` into ("最高法", "").

    Raises ValueError when the code is not 最高法 or a known prefix followed by 0, 2 or 4 digits.
    """
    if code == SUPREME_COURT_CODE:
        return code, ""
    prefix, digits = code[:1], code[1:]
    if prefix not in COURT_CODE_PREFIXES:
        raise ValueError(f"court code {code!r} does not start with a province abbreviation, 军 or 兵")
    if not _CODE_DIGITS.fullmatch(digits) or len(digits) not in _LEVEL_BY_DIGITS:
        raise ValueError(f"court code {code!r} must have 0, 2 or 4 ASCII digits after {prefix!r}")
    return prefix, digits


def court_id_for_code(code: str) -> str:
    """Stable ASCII id of a court code: 最高法 → spc, 浙0326 → zj0326, 军 → mil, 兵01 → xpcc01."""
    prefix, digits = split_court_code(code)
    if prefix == SUPREME_COURT_CODE:
        return SUPREME_COURT_ID
    return (ISO_BY_PROVINCE.get(prefix) or NON_TERRITORIAL_ID_PREFIX[prefix]) + digits


def level_for_code(code: str) -> CourtLevel:
    """The level a code's shape implies (number of digits after the province character)."""
    prefix, digits = split_court_code(code)
    return CourtLevel.SUPREME if prefix == SUPREME_COURT_CODE else _LEVEL_BY_DIGITS[len(digits)]


def expected_division_code(code: str) -> str:
    """GB/T 2260 code an *ordinary* court with this code must have (浙0326 → 330326, 浙 → 330000)."""
    prefix, digits = split_court_code(code)
    if prefix not in DIVISION_PREFIX_BY_PROVINCE:
        raise ValueError(f"court code {code!r} has no administrative division")
    return DIVISION_PREFIX_BY_PROVINCE[prefix] + digits.ljust(4, "0")


class CourtCatalog:
    """Immutable, self-validating set of courts with the supervision tree (parent = superior court)."""

    def __init__(self, courts: Iterable[Court]):
        self._courts: dict[str, Court] = {}
        problems: list[str] = []
        for court in courts:
            if court.id in self._courts:
                problems.append(f"duplicate court id {court.id!r}")
                continue
            self._courts[court.id] = court
        self._by_code: dict[str, Court] = {}
        for court in self._courts.values():
            if court.code in self._by_code:
                problems.append(f"duplicate court code {court.code!r} ({self._by_code[court.code].id}, {court.id})")
            self._by_code[court.code] = court
        problems += _validate(self._courts)
        if problems:
            raise ValueError("invalid court catalog: " + "; ".join(problems))
        self._children: dict[str, list[Court]] = {court_id: [] for court_id in self._courts}
        for court in self._courts.values():
            if court.parent_id is not None:
                self._children[court.parent_id].append(court)
        self._basic_by_division: dict[str, Court] = {
            c.division_code: c for c in self._courts.values() if c.level is CourtLevel.BASIC and not c.is_special
        }

    # --- loading -------------------------------------------------------------------------

    @classmethod
    def from_csv(cls, text: str) -> CourtCatalog:
        """Build from CSV text with the header of `registry/data/courts.csv`."""
        return cls(_court_from_row(row, line) for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2))

    @classmethod
    def default(cls) -> CourtCatalog:
        """The shipped court table, loaded once per process."""
        return _default_catalog()

    # --- lookups ---------------------------------------------------------------------------

    def get(self, court_id: str) -> Court | None:
        return self._courts.get(court_id)

    def by_code(self, code: str) -> Court | None:
        return self._by_code.get(code)

    def __iter__(self) -> Iterator[Court]:
        return iter(self._courts.values())

    def __len__(self) -> int:
        return len(self._courts)

    def __contains__(self, court_id: object) -> bool:
        return court_id in self._courts

    def _require(self, court_id: str) -> Court:
        court = self._courts.get(court_id)
        if court is None:
            raise KeyError(court_id)
        return court

    # --- the supervision tree ---------------------------------------------------------------

    def superiors(self, court_id: str) -> list[Court]:
        """Superior courts, nearest first, ending at 最高法. KeyError for an unknown id."""
        chain: list[Court] = []
        court = self._require(court_id)
        while court.parent_id is not None:
            court = self._courts[court.parent_id]
            chain.append(court)
        return chain

    def subordinates(self, court_id: str) -> list[Court]:
        """All descendants at any depth, breadth-first (children before grandchildren)."""
        self._require(court_id)
        found: list[Court] = []
        queue = [court_id]
        while queue:
            children = self._children[queue.pop(0)]
            found.extend(children)
            queue.extend(c.id for c in children)
        return found

    def is_superior_of(self, superior_id: str, court_id: str) -> bool:
        """True when `superior_id` is on `court_id`'s chain of superiors (a court is not its own superior)."""
        self._require(superior_id)
        return any(c.id == superior_id for c in self.superiors(court_id))

    def high_court_of(self, court_id: str) -> Court | None:
        """The HIGH court over `court_id` (itself if HIGH); None for 最高法.

        Returning a delegation needs the entrusted court's high court approval.
        """
        court = self._require(court_id)
        for candidate in [court, *self.superiors(court_id)]:
            if candidate.level is CourtLevel.HIGH:
                return candidate
        return None

    def basic_court_for_division(self, division_code: str) -> Court | None:
        """The ordinary BASIC court whose division code is `division_code` (special courts never match)."""
        return self._basic_by_division.get(division_code)

    def province_of(self, court_id: str) -> str:
        """One-character province abbreviation (军 / 兵 for those systems, "" for 最高法)."""
        return self._require(court_id).province


@functools.cache
def _default_catalog() -> CourtCatalog:
    text = (resources.files("registry") / "data" / "courts.csv").read_text(encoding="utf-8")
    return CourtCatalog.from_csv(text)


def _court_from_row(row: dict[str, str], line: int) -> Court:
    try:
        return Court(
            id=row["id"].strip(),
            code=row["code"].strip(),
            name=row["name"].strip(),
            level=CourtLevel(row["level"].strip()),
            province=row["province"].strip(),
            division_code=row["division_code"].strip(),
            parent_id=row["parent_id"].strip() or None,
            special_kind=SpecialKind((row["special_kind"] or "").strip()),
        )
    except (KeyError, ValueError, AttributeError) as exc:
        raise ValueError(f"courts.csv line {line}: {exc}") from exc


def _validate(courts: dict[str, Court]) -> list[str]:
    problems = [p for court in courts.values() for p in _validate_court(court)]
    problems += _validate_tree(courts)
    supremes = [c.id for c in courts.values() if c.level is CourtLevel.SUPREME]
    if len(supremes) > 1:
        problems.append(f"more than one SUPREME court: {supremes}")
    return problems


def _validate_court(court: Court) -> list[str]:
    """Checks that need only the row itself: code shape, derived id, level, province, division code."""
    where = f"court {court.id!r} ({court.code})"
    try:
        expected_id = court_id_for_code(court.code)
        expected_level = level_for_code(court.code)
    except ValueError as exc:
        return [f"{where}: {exc}"]
    problems: list[str] = []
    if not court.name:
        problems.append(f"{where}: empty name")
    if court.id != expected_id:
        problems.append(f"{where}: id must be {expected_id!r} (derived from the code)")
    if court.level is not expected_level:
        problems.append(f"{where}: level {court.level} does not match the code shape ({expected_level})")
    expected_province = "" if court.code == SUPREME_COURT_CODE else court.code[0]
    if court.province != expected_province:
        problems.append(f"{where}: province must be {expected_province!r}")
    problems += _validate_division(court, where)
    return problems


def _validate_division(court: Court, where: str) -> list[str]:
    # Special courts and 最高法 have no territory of their own; ordinary ones mirror GB/T 2260.
    if court.is_special or court.level is CourtLevel.SUPREME:
        return [f"{where}: special courts and 最高法 have no division code"] if court.division_code else []
    if court.province not in DIVISION_PREFIX_BY_PROVINCE:
        return [f"{where}: an ordinary court needs a provincial division (军/兵 courts must be special)"]
    expected = expected_division_code(court.code)
    if not _DIVISION_CODE.fullmatch(court.division_code) or court.division_code != expected:
        return [f"{where}: division code must be {expected!r}, got {court.division_code!r}"]
    return []


def _validate_tree(courts: dict[str, Court]) -> list[str]:
    problems: list[str] = []
    for court in courts.values():
        where = f"court {court.id!r}"
        if court.level is CourtLevel.SUPREME:
            if court.parent_id is not None:
                problems.append(f"{where}: the SUPREME court has no parent")
            continue
        if court.parent_id is None:
            problems.append(f"{where}: missing parent")
            continue
        parent = courts.get(court.parent_id)
        if parent is None:
            problems.append(f"{where}: parent {court.parent_id!r} does not exist")
        elif _on_cycle(court.id, courts):
            problems.append(f"{where}: parent chain forms a cycle")
        else:
            problems += _validate_parent(court, parent, where)
    return problems


def _on_cycle(court_id: str, courts: dict[str, Court]) -> bool:
    seen: set[str] = set()
    current: str | None = court_id
    while current is not None and current in courts:
        if current in seen:
            return True
        seen.add(current)
        current = courts[current].parent_id
    return False


def _validate_parent(court: Court, parent: Court, where: str) -> list[str]:
    problems: list[str] = []
    # Supervision runs level by level: a basic court answers to an intermediate court, never directly upwards.
    if parent.level.rank != court.level.rank - 1:
        problems.append(f"{where}: parent {parent.id!r} ({parent.level}) must be one level above {court.level}")
    # Supervision stays inside a province; only high-court-level systems hang directly under 最高法.
    if parent.level is not CourtLevel.SUPREME and parent.province != court.province:
        problems.append(f"{where}: parent {parent.id!r} is in another province")
    return problems
