"""Property categories of the query network (网络查控) and the agencies that answer each.

DOMAIN.md: the national network covers "16 classes, 25 items" of property information
[unverified: the item list is not public in the sources we have]. The categories below are
the property classes Rogatory's agency catalog can answer today; the table is data, so a
new class or a new kind of agency answering an existing class is a one-line change here
(plus an enum value in rogatory.assistance.v1.PropertyCategory).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from registry.agencies import Agency, AgencyCatalog, AgencyKind


class PropertyCategory(StrEnum):
    """Names match rogatory.assistance.v1.PropertyCategory."""

    DEPOSITS = "DEPOSITS"  # 存款
    WEALTH_PRODUCTS = "WEALTH_PRODUCTS"  # 理财产品
    REAL_ESTATE = "REAL_ESTATE"  # 不动产
    VEHICLES = "VEHICLES"  # 车辆
    EQUITY = "EQUITY"  # 股权及其他投资权益
    SECURITIES = "SECURITIES"  # 证券
    ONLINE_FUNDS = "ONLINE_FUNDS"  # 网络资金 (payment-institution balances)
    HOUSING_FUND = "HOUSING_FUND"  # 住房公积金


#: Which kinds of agency answer a query for each category.
CATEGORY_AGENCY_KINDS: dict[PropertyCategory, frozenset[AgencyKind]] = {
    PropertyCategory.DEPOSITS: frozenset({AgencyKind.BANK}),
    PropertyCategory.WEALTH_PRODUCTS: frozenset({AgencyKind.BANK}),
    PropertyCategory.REAL_ESTATE: frozenset({AgencyKind.REAL_ESTATE_REGISTRY}),
    PropertyCategory.VEHICLES: frozenset({AgencyKind.TRAFFIC_POLICE}),
    PropertyCategory.EQUITY: frozenset({AgencyKind.MARKET_REGULATOR}),
    PropertyCategory.SECURITIES: frozenset({AgencyKind.SECURITIES_DEPOSITORY}),
    PropertyCategory.ONLINE_FUNDS: frozenset({AgencyKind.ONLINE_PAYMENT}),
    PropertyCategory.HOUSING_FUND: frozenset({AgencyKind.HOUSING_FUND}),
}


@dataclass(frozen=True)
class Addressee:
    """An agency a query goes to, with the categories it is asked about."""

    agency: Agency
    categories: tuple[PropertyCategory, ...]


def addressees(categories: Iterable[PropertyCategory], catalog: AgencyCatalog) -> list[Addressee]:
    """Every agency of the catalog that answers at least one of `categories`, by id.

    The network is national: a debtor's account, flat or car may be anywhere, so regional
    agencies are asked too, not only those of the court's region.
    """
    return list(_addressees(tuple(dict.fromkeys(categories)), catalog))  # de-duplicated, in the order asked


@functools.lru_cache(maxsize=256)  # a catalog is immutable, and a 1,000-agency scan runs for every query
def _addressees(wanted: tuple[PropertyCategory, ...], catalog: AgencyCatalog) -> tuple[Addressee, ...]:
    found: list[Addressee] = []
    for agency in sorted(catalog, key=lambda a: a.id):
        answered = tuple(c for c in wanted if agency.kind in CATEGORY_AGENCY_KINDS[c])
        if answered:
            found.append(Addressee(agency, answered))
    return tuple(found)
