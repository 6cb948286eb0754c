"""The agency table and which agencies serve a region (registry/agencies.py)."""

from __future__ import annotations

import re

import pytest

from registry.agencies import Agency, AgencyCatalog, AgencyKind, AgencyScope, covers

PREFECTURES = ["330100", "330300", "440100", "440300", "440700", "310000", "110000", "410100", "411300", "330600"]
RE, TP, MR, BANK = (
    AgencyKind.REAL_ESTATE_REGISTRY,
    AgencyKind.TRAFFIC_POLICE,
    AgencyKind.MARKET_REGULATOR,
    AgencyKind.BANK,
)


@pytest.fixture(scope="module")
def catalog() -> AgencyCatalog:
    return AgencyCatalog.default()


def ids(agencies: list[Agency]) -> list[str]:
    return [a.id for a in agencies]


def test_default_is_cached_and_sized(catalog: AgencyCatalog) -> None:
    assert AgencyCatalog.default() is catalog
    assert 40 <= len(catalog) == len(list(catalog)) <= 60


def test_ids_are_ascii_and_unique(catalog: AgencyCatalog) -> None:
    all_ids = ids(list(catalog))
    assert len(set(all_ids)) == len(all_ids)
    assert all(re.fullmatch(r"[a-z0-9-]+", i) for i in all_ids)


def test_scope_matches_division_code(catalog: AgencyCatalog) -> None:
    for agency in catalog:
        if agency.scope is AgencyScope.NATIONAL:
            assert agency.division_code == "", agency.id
        else:
            assert re.fullmatch(r"[0-9]{6}", agency.division_code), agency.id


@pytest.mark.parametrize(
    ("agency_id", "name", "kind", "division_code", "scope"),
    [
        ("re-330300", "温州市不动产登记服务中心", RE, "330300", AgencyScope.REGIONAL),
        ("tp-330300", "温州市公安局交通警察支队", TP, "330300", AgencyScope.REGIONAL),
        ("tp-330326", "平阳县公安局交通警察大队", TP, "330326", AgencyScope.REGIONAL),
        ("re-440112", "广州市黄埔区不动产登记中心", RE, "440112", AgencyScope.REGIONAL),
        ("mr-440100", "广州市市场监督管理局", MR, "440100", AgencyScope.REGIONAL),
        ("bank-icbc", "中国工商银行", BANK, "", AgencyScope.NATIONAL),
        ("bank-wzbank", "温州银行", BANK, "330300", AgencyScope.REGIONAL),
        ("csdc", "中国证券登记结算有限责任公司", AgencyKind.SECURITIES_DEPOSITORY, "", AgencyScope.NATIONAL),
        ("alipay", "支付宝（中国）网络技术有限公司", AgencyKind.ONLINE_PAYMENT, "", AgencyScope.NATIONAL),
        ("tenpay", "财付通支付科技有限公司", AgencyKind.ONLINE_PAYMENT, "", AgencyScope.NATIONAL),
    ],
)
def test_named_agencies(
    catalog: AgencyCatalog, agency_id: str, name: str, kind: AgencyKind, division_code: str, scope: AgencyScope
) -> None:
    agency = catalog.get(agency_id)
    assert agency is not None
    assert (agency.name, agency.kind, agency.division_code, agency.scope) == (name, kind, division_code, scope)
    assert agency.name_resource == f"agencies/{agency_id}"


@pytest.mark.parametrize("bank", ["icbc", "ccb", "abc", "boc", "bocom", "cmb", "psbc"])
def test_national_banks(catalog: AgencyCatalog, bank: str) -> None:
    agency = catalog.get(f"bank-{bank}")
    assert agency is not None and agency.kind is BANK and agency.scope is AgencyScope.NATIONAL


@pytest.mark.parametrize("division_code", PREFECTURES)
@pytest.mark.parametrize(("prefix", "kind"), [("re", RE), ("tp", TP), ("mr", MR)])
def test_every_sample_region_has_registry_police_and_regulator(
    catalog: AgencyCatalog, division_code: str, prefix: str, kind: AgencyKind
) -> None:
    agency = catalog.get(f"{prefix}-{division_code}")
    assert agency is not None and agency.kind is kind and agency.division_code == division_code


def test_kinds_cover_the_article(catalog: AgencyCatalog) -> None:
    assert {a.kind for a in catalog} >= {RE, TP, MR, BANK, AgencyKind.SECURITIES_DEPOSITORY, AgencyKind.ONLINE_PAYMENT}


def test_unknown_agency(catalog: AgencyCatalog) -> None:
    assert catalog.get("re-999900") is None
    assert "re-999900" not in catalog and "csdc" in catalog


# --- serving -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("area", "region", "expected"),
    [
        ("330000", "330326", True),
        ("330300", "330326", True),
        ("330326", "330326", True),
        ("330326", "330302", False),  # a county agency does not serve its neighbour
        ("330300", "330100", False),
        ("330100", "330000", False),  # a prefecture agency does not serve the whole province
        ("110000", "110108", True),
        ("440000", "330326", False),
    ],
)
def test_covers(area: str, region: str, expected: bool) -> None:
    assert covers(area, region) is expected


def test_traffic_police_for_pingyang_most_local_first(catalog: AgencyCatalog) -> None:
    assert ids(catalog.serving("330326", [TP])) == ["tp-330326", "tp-330300", "tp-mps"]


def test_county_agency_does_not_serve_neighbouring_county(catalog: AgencyCatalog) -> None:
    assert ids(catalog.serving("330302", [TP])) == ["tp-330300", "tp-mps"]


def test_real_estate_for_huangpu(catalog: AgencyCatalog) -> None:
    assert ids(catalog.serving("440112", {RE})) == ["re-440112", "re-440100"]


@pytest.mark.parametrize(
    ("division_code", "expected"),
    [("110108", "re-110000"), ("110105", "re-110000"), ("310115", "re-310000"), ("440305", "re-440300")],
)
def test_municipality_and_prefecture_registries(catalog: AgencyCatalog, division_code: str, expected: str) -> None:
    assert ids(catalog.serving(division_code, [RE])) == [expected]


def test_regional_bank_only_in_its_region(catalog: AgencyCatalog) -> None:
    pingyang = ids(catalog.serving("330326", [BANK]))
    huangpu = ids(catalog.serving("440112", [BANK]))
    assert pingyang[0] == "bank-wzbank"
    assert "bank-wzbank" not in huangpu and "bank-hzbank" not in pingyang
    national = {a.id for a in catalog if a.kind is BANK and a.scope is AgencyScope.NATIONAL}
    assert national <= set(pingyang) and national == set(huangpu)


def test_national_agencies_serve_a_region_without_local_entries(catalog: AgencyCatalog) -> None:
    found = catalog.serving("650102")
    assert found and all(a.scope is AgencyScope.NATIONAL for a in found)
    assert {a.id for a in found} == {a.id for a in catalog if a.scope is AgencyScope.NATIONAL}


def test_all_kinds_when_kinds_is_none(catalog: AgencyCatalog) -> None:
    found = catalog.serving("330326")
    assert {"tp-330326", "re-330300", "mr-330300", "bank-wzbank", "csdc", "alipay"} <= set(ids(found))
    assert all(a.serves("330326") for a in found)
    assert len(found) == len([a for a in catalog if a.serves("330326")])


def test_empty_kinds_selects_nothing(catalog: AgencyCatalog) -> None:
    assert catalog.serving("330326", []) == []


@pytest.mark.parametrize("bad", ["", "3303", "33032a", "3303260", "浙0326"])
def test_serving_rejects_bad_division_code(catalog: AgencyCatalog, bad: str) -> None:
    with pytest.raises(ValueError, match="6 digits"):
        catalog.serving(bad)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agencies", "message"),
    [
        ([Agency("x", "X", BANK, "330300", AgencyScope.NATIONAL)], "NATIONAL"),
        ([Agency("x", "X", BANK, "", AgencyScope.REGIONAL)], "REGIONAL"),
        ([Agency("x", "X", BANK, "3303", AgencyScope.REGIONAL)], "REGIONAL"),
        ([Agency("x", "X", BANK, "", AgencyScope.NATIONAL)] * 2, "duplicate"),
        ([Agency("Bank ICBC", "X", BANK, "", AgencyScope.NATIONAL)], "ASCII"),
        ([Agency("x", "", BANK, "", AgencyScope.NATIONAL)], "empty name"),
    ],
)
def test_catalog_rejects_bad_data(agencies: list[Agency], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AgencyCatalog(agencies)


def test_csv_loader_reports_the_line() -> None:
    header = "id,name,kind,division_code,scope\n"
    with pytest.raises(ValueError, match="line 3"):
        AgencyCatalog.from_csv(
            header + "csdc,中国证券登记结算有限责任公司,SECURITIES_DEPOSITORY,,NATIONAL\nx,X,PAWNSHOP,,NATIONAL\n"
        )
    assert len(AgencyCatalog.from_csv(header + "csdc,CSDC,SECURITIES_DEPOSITORY,,NATIONAL\n")) == 1
