"""The court table and its supervision tree (registry/courts.py, registry/data/courts.csv)."""

from __future__ import annotations

import dataclasses
import re

import pytest

from registry.courts import (
    ISO_BY_PROVINCE,
    Court,
    CourtCatalog,
    CourtLevel,
    SpecialKind,
    court_id_for_code,
)

PROVINCES = "京津沪渝冀晋内辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川黔云藏陕甘青宁新"


@pytest.fixture(scope="module")
def catalog() -> CourtCatalog:
    return CourtCatalog.default()


def code(catalog: CourtCatalog, court_code: str) -> Court:
    court = catalog.by_code(court_code)
    assert court is not None, court_code
    return court


def codes(courts: list[Court]) -> list[str]:
    return [c.code for c in courts]


# --- the shipped table -------------------------------------------------------------------


def test_default_is_cached_and_nonempty(catalog: CourtCatalog) -> None:
    assert CourtCatalog.default() is catalog
    assert len(catalog) == len(list(catalog)) > 60


def test_supreme_court(catalog: CourtCatalog) -> None:
    spc = catalog.get("spc")
    assert spc is not None
    assert (spc.code, spc.name, spc.level, spc.parent_id) == ("最高法", "最高人民法院", CourtLevel.SUPREME, None)
    assert (spc.province, spc.division_code, spc.special_kind) == ("", "", SpecialKind.NONE)


def test_thirty_one_provinces_are_known() -> None:
    assert set(ISO_BY_PROVINCE) == set(PROVINCES) and len(PROVINCES) == 31


@pytest.mark.parametrize("province", [*PROVINCES, "军", "兵"])
def test_every_high_court_is_present(catalog: CourtCatalog, province: str) -> None:
    court = code(catalog, province)
    assert court.level is CourtLevel.HIGH
    assert court.parent_id == "spc"
    assert court.province == province
    assert court.name.endswith("法院") or court.name.endswith("分院")


def test_exactly_33_high_courts(catalog: CourtCatalog) -> None:
    assert len([c for c in catalog if c.level is CourtLevel.HIGH]) == 33


@pytest.mark.parametrize(
    ("court_code", "court_id", "name", "division_code", "special_kind"),
    [
        ("浙", "zj", "浙江省高级人民法院", "330000", SpecialKind.NONE),
        ("内", "nm", "内蒙古自治区高级人民法院", "150000", SpecialKind.NONE),
        ("新", "xj", "新疆维吾尔自治区高级人民法院", "650000", SpecialKind.NONE),
        ("豫", "ha", "河南省高级人民法院", "410000", SpecialKind.NONE),
        ("军", "mil", "中国人民解放军军事法院", "", SpecialKind.MILITARY),
        ("兵", "xpcc", "新疆维吾尔自治区高级人民法院生产建设兵团分院", "", SpecialKind.XPCC),
    ],
)
def test_high_court_details(
    catalog: CourtCatalog, court_code: str, court_id: str, name: str, division_code: str, special_kind: SpecialKind
) -> None:
    court = code(catalog, court_code)
    assert (court.id, court.name, court.division_code, court.special_kind) == (
        court_id,
        name,
        division_code,
        special_kind,
    )


@pytest.mark.parametrize(
    ("court_code", "name", "level", "division_code", "parent_code"),
    [
        ("浙01", "杭州市中级人民法院", CourtLevel.INTERMEDIATE, "330100", "浙"),
        ("浙0106", "杭州市西湖区人民法院", CourtLevel.BASIC, "330106", "浙01"),
        ("浙02", "宁波市中级人民法院", CourtLevel.INTERMEDIATE, "330200", "浙"),
        ("浙03", "温州市中级人民法院", CourtLevel.INTERMEDIATE, "330300", "浙"),
        ("浙0326", "平阳县人民法院", CourtLevel.BASIC, "330326", "浙03"),
        ("浙06", "绍兴市中级人民法院", CourtLevel.INTERMEDIATE, "330600", "浙"),
        ("浙0681", "诸暨市人民法院", CourtLevel.BASIC, "330681", "浙06"),
        ("粤01", "广州市中级人民法院", CourtLevel.INTERMEDIATE, "440100", "粤"),
        ("粤0112", "广州市黄埔区人民法院", CourtLevel.BASIC, "440112", "粤01"),
        ("粤03", "深圳市中级人民法院", CourtLevel.INTERMEDIATE, "440300", "粤"),
        ("粤0305", "深圳市南山区人民法院", CourtLevel.BASIC, "440305", "粤03"),
        ("粤07", "江门市中级人民法院", CourtLevel.INTERMEDIATE, "440700", "粤"),
        ("粤0703", "江门市蓬江区人民法院", CourtLevel.BASIC, "440703", "粤07"),
        ("粤0781", "台山市人民法院", CourtLevel.BASIC, "440781", "粤07"),
        ("沪01", "上海市第一中级人民法院", CourtLevel.INTERMEDIATE, "310100", "沪"),
        ("沪0115", "上海市浦东新区人民法院", CourtLevel.BASIC, "310115", "沪01"),
        ("京01", "北京市第一中级人民法院", CourtLevel.INTERMEDIATE, "110100", "京"),
        ("京03", "北京市第三中级人民法院", CourtLevel.INTERMEDIATE, "110300", "京"),
        ("京0108", "北京市海淀区人民法院", CourtLevel.BASIC, "110108", "京01"),
        ("京0105", "北京市朝阳区人民法院", CourtLevel.BASIC, "110105", "京03"),
        ("豫01", "郑州市中级人民法院", CourtLevel.INTERMEDIATE, "410100", "豫"),
        ("豫0122", "中牟县人民法院", CourtLevel.BASIC, "410122", "豫01"),
        ("豫13", "南阳市中级人民法院", CourtLevel.INTERMEDIATE, "411300", "豫"),
        ("豫1321", "南召县人民法院", CourtLevel.BASIC, "411321", "豫13"),
    ],
)
def test_sample_ordinary_courts(
    catalog: CourtCatalog, court_code: str, name: str, level: CourtLevel, division_code: str, parent_code: str
) -> None:
    court = code(catalog, court_code)
    assert (court.name, court.level, court.division_code) == (name, level, division_code)
    assert court.special_kind is SpecialKind.NONE
    assert court.parent_id == code(catalog, parent_code).id


@pytest.mark.parametrize(
    ("court_code", "name", "special_kind", "level", "parent_code"),
    [
        ("粤0192", "广州互联网法院", SpecialKind.INTERNET, CourtLevel.BASIC, "粤01"),
        ("浙0192", "杭州互联网法院", SpecialKind.INTERNET, CourtLevel.BASIC, "浙01"),
        ("京0491", "北京互联网法院", SpecialKind.INTERNET, CourtLevel.BASIC, "京04"),
        ("京04", "北京市第四中级人民法院", SpecialKind.CROSS_DIVISION, CourtLevel.INTERMEDIATE, "京"),
        ("浙72", "宁波海事法院", SpecialKind.MARITIME, CourtLevel.INTERMEDIATE, "浙"),
        ("粤72", "广州海事法院", SpecialKind.MARITIME, CourtLevel.INTERMEDIATE, "粤"),
        ("沪74", "上海金融法院", SpecialKind.FINANCIAL, CourtLevel.INTERMEDIATE, "沪"),
        ("京73", "北京知识产权法院", SpecialKind.IP, CourtLevel.INTERMEDIATE, "京"),
    ],
)
def test_special_courts(
    catalog: CourtCatalog,
    court_code: str,
    name: str,
    special_kind: SpecialKind,
    level: CourtLevel,
    parent_code: str,
) -> None:
    court = code(catalog, court_code)
    assert (court.name, court.special_kind, court.level) == (name, special_kind, level)
    assert court.is_special
    assert court.division_code == ""
    assert court.parent_id == code(catalog, parent_code).id


def test_ids_are_derived_ascii_and_unique(catalog: CourtCatalog) -> None:
    ids = [c.id for c in catalog]
    assert len(set(ids)) == len(ids)
    for court in catalog:
        assert re.fullmatch(r"[a-z]+[0-9]*", court.id), court.id
        assert court.id == court_id_for_code(court.code)
        assert catalog.get(court.id) is court
        assert catalog.by_code(court.code) is court


def test_name_resource(catalog: CourtCatalog) -> None:
    assert code(catalog, "浙0326").name_resource == "courts/zj0326"
    assert code(catalog, "最高法").name_resource == "courts/spc"


def test_every_ordinary_court_mirrors_its_division_code(catalog: CourtCatalog) -> None:
    ordinary = [c for c in catalog if not c.is_special and c.level is not CourtLevel.SUPREME]
    assert len(ordinary) > 50
    for court in ordinary:
        digits = court.code[1:].ljust(4, "0")
        assert court.division_code[2:6] == digits, court.code
        assert court.division_code[:2] == code(catalog, court.province).division_code[:2]


@pytest.mark.parametrize(
    ("division_code", "court_code"),
    [("440703", "粤0703"), ("330326", "浙0326"), ("110108", "京0108"), ("410122", "豫0122"), ("411321", "豫1321")],
)
def test_basic_court_for_division(catalog: CourtCatalog, division_code: str, court_code: str) -> None:
    assert catalog.basic_court_for_division(division_code) is code(catalog, court_code)


@pytest.mark.parametrize("division_code", ["330300", "330000", "999999", "", "440192"])
def test_no_basic_court_for_other_divisions(catalog: CourtCatalog, division_code: str) -> None:
    assert catalog.basic_court_for_division(division_code) is None


def test_every_ordinary_basic_court_is_found_by_its_division(catalog: CourtCatalog) -> None:
    for court in catalog:
        if court.level is CourtLevel.BASIC and not court.is_special:
            assert catalog.basic_court_for_division(court.division_code) is court


def test_lookups_of_unknown_courts(catalog: CourtCatalog) -> None:
    assert catalog.get("zz99") is None
    assert catalog.by_code("浙0399") is None
    assert catalog.by_code("蒙") is None


# --- the supervision tree ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("court_code", "chain"),
    [
        ("浙0326", ["浙03", "浙", "最高法"]),
        ("京0108", ["京01", "京", "最高法"]),
        ("京0105", ["京03", "京", "最高法"]),
        ("京0491", ["京04", "京", "最高法"]),
        ("粤0192", ["粤01", "粤", "最高法"]),
        ("浙72", ["浙", "最高法"]),
        ("豫1321", ["豫13", "豫", "最高法"]),
        ("军", ["最高法"]),
        ("最高法", []),
    ],
)
def test_superiors_nearest_first(catalog: CourtCatalog, court_code: str, chain: list[str]) -> None:
    assert codes(catalog.superiors(code(catalog, court_code).id)) == chain


def test_every_chain_ends_at_the_supreme_court(catalog: CourtCatalog) -> None:
    for court in catalog:
        if court.id != "spc":
            assert catalog.superiors(court.id)[-1].id == "spc"


def test_subordinates_of_a_high_court(catalog: CourtCatalog) -> None:
    found = codes(catalog.subordinates("zj"))
    assert {"浙0326", "浙03", "浙01", "浙0106", "浙0192", "浙72", "浙0681"} <= set(found)
    assert all(c.startswith("浙") for c in found)
    assert found.index("浙03") < found.index("浙0326")  # breadth-first: children before grandchildren


def test_subordinates_of_intermediate_and_basic(catalog: CourtCatalog) -> None:
    assert set(codes(catalog.subordinates("gd07"))) == {"粤0703", "粤0781"}
    assert set(codes(catalog.subordinates("bj04"))) == {"京0491"}
    assert catalog.subordinates("zj0326") == []


def test_supreme_court_supervises_everyone(catalog: CourtCatalog) -> None:
    assert {c.id for c in catalog.subordinates("spc")} == {c.id for c in catalog} - {"spc"}


@pytest.mark.parametrize(
    ("superior", "court", "expected"),
    [
        ("zj03", "zj0326", True),
        ("zj", "zj0326", True),
        ("spc", "zj0326", True),
        ("zj0326", "zj03", False),
        ("zj01", "zj0326", False),
        ("gd", "zj0326", False),
        ("zj0326", "zj0326", False),
        ("bj01", "bj0105", False),
        ("bj03", "bj0105", True),
    ],
)
def test_is_superior_of(catalog: CourtCatalog, superior: str, court: str, expected: bool) -> None:
    assert catalog.is_superior_of(superior, court) is expected


@pytest.mark.parametrize(
    ("court_id", "high_court_id"), [("zj0326", "zj"), ("zj", "zj"), ("bj0491", "bj"), ("mil", "mil"), ("spc", None)]
)
def test_high_court_of(catalog: CourtCatalog, court_id: str, high_court_id: str | None) -> None:
    high = catalog.high_court_of(court_id)
    assert (high.id if high else None) == high_court_id


@pytest.mark.parametrize(("court_id", "province"), [("zj0326", "浙"), ("gd0192", "粤"), ("nm", "内"), ("mil", "军"), ("spc", "")])
def test_province_of(catalog: CourtCatalog, court_id: str, province: str) -> None:
    assert catalog.province_of(court_id) == province


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.superiors("nope"),
        lambda c: c.subordinates("nope"),
        lambda c: c.province_of("nope"),
        lambda c: c.is_superior_of("nope", "zj"),
        lambda c: c.is_superior_of("zj", "nope"),
        lambda c: c.high_court_of("nope"),
    ],
)
def test_unknown_ids_raise_key_error(catalog: CourtCatalog, call) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError):
        call(catalog)


# --- ids from codes --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("court_code", "court_id"),
    [
        ("最高法", "spc"),
        ("浙", "zj"),
        ("浙0326", "zj0326"),
        ("粤0112", "gd0112"),
        ("浙72", "zj72"),
        ("内01", "nm01"),
        ("豫1321", "ha1321"),
        ("琼", "hi"),
        ("陕01", "sn01"),
        ("军", "mil"),
        ("兵", "xpcc"),
        ("兵01", "xpcc01"),
    ],
)
def test_court_id_for_code(court_code: str, court_id: str) -> None:
    assert court_id_for_code(court_code) == court_id


@pytest.mark.parametrize("bad", ["", "蒙", "蒙01", "浙032", "浙03261", "浙ab", "最高法01", "zj0326", "浙０３"])
def test_court_id_for_bad_code(bad: str) -> None:
    with pytest.raises(ValueError):
        court_id_for_code(bad)


# --- catalog validation ----------------------------------------------------------------------


def _court(court_code: str, level: CourtLevel, parent_id: str | None, **changes: object) -> Court:
    division = {"最高法": "", "浙": "330000", "浙03": "330300", "浙0326": "330326", "浙01": "330100"}.get(court_code, "")
    court = Court(court_id_for_code(court_code), court_code, f"court {court_code}", level,
                  "" if court_code == "最高法" else court_code[0], division, parent_id)  # fmt: skip
    return dataclasses.replace(court, **changes)  # type: ignore[arg-type]


def _valid() -> list[Court]:
    return [
        _court("最高法", CourtLevel.SUPREME, None),
        _court("浙", CourtLevel.HIGH, "spc"),
        _court("浙03", CourtLevel.INTERMEDIATE, "zj"),
        _court("浙0326", CourtLevel.BASIC, "zj03"),
    ]


def test_small_valid_catalog() -> None:
    small = CourtCatalog(_valid())
    assert len(small) == 4
    assert codes(small.superiors("zj0326")) == ["浙03", "浙", "最高法"]


def _replace(courts: list[Court], court_id: str, **changes: object) -> list[Court]:
    return [dataclasses.replace(c, **changes) if c.id == court_id else c for c in courts]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("courts", "message"),
    [
        (_replace(_valid(), "zj", parent_id="zj0326"), "cycle"),
        (_replace(_valid(), "zj03", parent_id="zj03"), "cycle"),
        (_replace(_valid(), "zj0326", parent_id="zj01"), "does not exist"),
        (_replace(_valid(), "zj0326", parent_id=None), "missing parent"),
        ([*_valid(), _court("浙03", CourtLevel.INTERMEDIATE, "zj")], "duplicate court id"),
        ([*_valid(), _court("浙03", CourtLevel.INTERMEDIATE, "zj", id="zj03b")], "duplicate court code"),
        ([*_valid(), _court("浙01", CourtLevel.BASIC, "zj")], "level"),
        (_replace(_valid(), "zj0326", division_code="330327"), "division code"),
        (_replace(_valid(), "zj0326", special_kind=SpecialKind.INTERNET), "no division code"),
        (_replace(_valid(), "zj0326", id="pingyang"), "id must be"),
        (_replace(_valid(), "zj0326", province="粤"), "province"),
        (_replace(_valid(), "zj0326", parent_id="zj"), "one level above"),
        (_replace(_valid(), "spc", parent_id="zj"), "no parent"),
        (
            [*_valid(), Court("mn01", "蒙01", "court 蒙01", CourtLevel.INTERMEDIATE, "蒙", "150100", "spc")],
            "province abbreviation",
        ),
    ],
)
def test_catalog_rejects_bad_data(courts: list[Court], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CourtCatalog(courts)


def test_catalog_rejects_parent_in_another_province() -> None:
    courts = [*_valid(), _court("粤", CourtLevel.HIGH, "spc", division_code="440000")]
    courts = _replace(courts, "zj03", parent_id="gd")
    with pytest.raises(ValueError, match="another province"):
        CourtCatalog(courts)


def test_csv_loader_reports_the_line() -> None:
    header = "id,code,name,level,province,division_code,parent_id,special_kind\n"
    with pytest.raises(ValueError, match="line 2"):
        CourtCatalog.from_csv(header + "spc,最高法,最高人民法院,TOP,,,,\n")
    assert len(CourtCatalog.from_csv(header + "spc,最高法,最高人民法院,SUPREME,,,,\n")) == 1
