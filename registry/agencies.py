"""Agencies that assist courts on a 协助执行通知书 (registries, traffic police, banks, ...).

Stdlib only; the shipped table is `registry/data/agencies.csv`.
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

_DIVISION_CODE = re.compile(r"[0-9]{6}")
_AGENCY_ID = re.compile(r"[a-z0-9][a-z0-9-]*")


class AgencyKind(StrEnum):
    REAL_ESTATE_REGISTRY = "REAL_ESTATE_REGISTRY"  # seals real estate (查封登记)
    TRAFFIC_POLICE = "TRAFFIC_POLICE"  # finds and seizes vehicles
    BANK = "BANK"  # freezes and deducts deposits
    MARKET_REGULATOR = "MARKET_REGULATOR"  # freezes equity
    SECURITIES_DEPOSITORY = "SECURITIES_DEPOSITORY"
    ONLINE_PAYMENT = "ONLINE_PAYMENT"
    HOUSING_FUND = "HOUSING_FUND"
    TAX = "TAX"
    CIVIL_AFFAIRS = "CIVIL_AFFAIRS"  # marriage records
    # Keep in step with rogatory.registry.v1.Agency.Kind: services map these by name.


class AgencyScope(StrEnum):
    REGIONAL = "REGIONAL"  # serves its division_code's area
    NATIONAL = "NATIONAL"  # serves every region; division_code is ""


@dataclass(frozen=True)
class Agency:
    id: str
    name: str
    kind: AgencyKind
    division_code: str
    scope: AgencyScope

    @property
    def name_resource(self) -> str:
        return f"agencies/{self.id}"

    def serves(self, division_code: str) -> bool:
        """Whether this agency's area contains the region `division_code` (see `covers`)."""
        return self.scope is AgencyScope.NATIONAL or covers(self.division_code, division_code)


def covers(area: str, region: str) -> bool:
    """Whether GB/T 2260 `area` contains `region`.

    The level of `area` is read from its trailing zeros: `330000` (province / municipality)
    covers every `33xxxx`, `330300` (prefecture) every `3303xx`, `330326` (county) only
    itself. So a county agency never serves a neighbouring county of the same prefecture,
    and a prefecture agency does not serve a whole province.
    """
    if area.endswith("0000"):
        return region[:2] == area[:2]
    if area.endswith("00"):
        return region[:4] == area[:4]
    return region == area


def _specificity(agency: Agency) -> int:
    """0 = county, 1 = prefecture, 2 = province, 3 = national: used to list local agencies first."""
    if agency.scope is AgencyScope.NATIONAL:
        return 3
    code = agency.division_code
    return 2 if code.endswith("0000") else 1 if code.endswith("00") else 0


class AgencyCatalog:
    """Immutable, self-validating set of agencies."""

    def __init__(self, agencies: Iterable[Agency]):
        self._agencies: dict[str, Agency] = {}
        problems: list[str] = []
        for agency in agencies:
            if agency.id in self._agencies:
                problems.append(f"duplicate agency id {agency.id!r}")
                continue
            problems += _validate_agency(agency)
            self._agencies[agency.id] = agency
        if problems:
            raise ValueError("invalid agency catalog: " + "; ".join(problems))

    @classmethod
    def from_csv(cls, text: str) -> AgencyCatalog:
        """Build from CSV text with the header of `registry/data/agencies.csv`."""
        return cls(_agency_from_row(row, line) for line, row in enumerate(csv.DictReader(io.StringIO(text)), start=2))

    @classmethod
    def default(cls) -> AgencyCatalog:
        """The shipped agency table, loaded once per process."""
        return _default_catalog()

    def get(self, agency_id: str) -> Agency | None:
        return self._agencies.get(agency_id)

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._agencies.values())

    def __len__(self) -> int:
        return len(self._agencies)

    def __contains__(self, agency_id: object) -> bool:
        return agency_id in self._agencies

    def serving(self, division_code: str, kinds: Iterable[AgencyKind] | None = None) -> list[Agency]:
        """Agencies that can act in region `division_code`, most local first, then by id.

        Rule: every NATIONAL agency, plus every REGIONAL agency whose area contains the region
        (same province for a province-level agency, same prefecture — first 4 digits — for a
        prefecture-level one, exact match for a county-level one). `kinds` None means all kinds.
        Raises ValueError when `division_code` is not 6 digits.
        """
        if not _DIVISION_CODE.fullmatch(division_code):
            raise ValueError(f"division code must be 6 digits, got {division_code!r}")
        wanted = None if kinds is None else frozenset(kinds)
        found = [a for a in self._agencies.values() if (wanted is None or a.kind in wanted) and a.serves(division_code)]
        return sorted(found, key=lambda a: (_specificity(a), a.id))


@functools.cache
def _default_catalog() -> AgencyCatalog:
    text = (resources.files("registry") / "data" / "agencies.csv").read_text(encoding="utf-8")
    return AgencyCatalog.from_csv(text)


def _agency_from_row(row: dict[str, str], line: int) -> Agency:
    try:
        return Agency(
            id=row["id"].strip(),
            name=row["name"].strip(),
            kind=AgencyKind(row["kind"].strip()),
            division_code=(row["division_code"] or "").strip(),
            scope=AgencyScope(row["scope"].strip()),
        )
    except (KeyError, ValueError, AttributeError) as exc:
        raise ValueError(f"agencies.csv line {line}: {exc}") from exc


def _validate_agency(agency: Agency) -> list[str]:
    where = f"agency {agency.id!r}"
    problems: list[str] = []
    if not _AGENCY_ID.fullmatch(agency.id):
        problems.append(f"{where}: id must be lowercase ASCII letters, digits and '-'")
    if not agency.name:
        problems.append(f"{where}: empty name")
    if agency.scope is AgencyScope.NATIONAL and agency.division_code:
        problems.append(f"{where}: a NATIONAL agency has no division code")
    if agency.scope is AgencyScope.REGIONAL and not _DIVISION_CODE.fullmatch(agency.division_code):
        problems.append(f"{where}: a REGIONAL agency needs a 6-digit division code")
    return problems
