"""What the admin tool shows, from API messages alone: labels in both languages, durations
and rates as people read them, a timeline's deadlines and overdue markers, overdue rows,
statistics groupings (ranking, months, in/cross-province, completion-time bins), filters."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from rich.console import Console
from rogatory.delegation.v1 import delegation_pb2 as pb

from registry.courts import CourtCatalog
from registry.errors import InvalidArgument
from services.tools.admin import views
from services.tools.admin.cli import statistics_filter
from services.tools.admin.client import AdminClient, matter_query
from services.tools.admin.labels import Labels, enum_values

EN, ZH = Labels("en"), Labels("zh")
COURTS = CourtCatalog.default()
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 China time


def stamp(at: datetime) -> Timestamp:
    value = Timestamp()
    value.FromDatetime(at)
    return value


def entry(
    action: str, at: datetime, actor: str = "courts/ha0122", reason: str = "", trace: str = "a" * 32
) -> pb.DelegationTimeline.Entry:
    elapsed = Duration()
    elapsed.FromTimedelta(at - T0)
    return pb.DelegationTimeline.Entry(
        action=action, actor_court=actor, time=stamp(at), elapsed=elapsed, reason_code=reason, trace_id=trace
    )


def deadline(step: int, due: datetime, status: int = pb.Deadline.OPEN) -> pb.Deadline:
    return pb.Deadline(step=step, due_time=stamp(due), status=status)


def render(table: object) -> str:
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text()


# --- labels and formatting ----------------------------------------------------------------------------------


def test_every_state_action_kind_and_step_has_both_languages() -> None:
    for kind, proto_enum in (
        ("state", pb.Delegation.State),
        ("matter_kind", pb.Delegation.MatterKind),
        ("step", pb.Deadline.Step),
    ):
        for name in proto_enum.keys():
            if name.endswith("UNSPECIFIED"):
                continue
            assert EN.enum(kind, name) != ZH.enum(kind, name), (kind, name)
    assert {"SUBMIT", "ACKNOWLEDGE", "COMPLETE", "OVERDUE", "URGE", "ESCALATE"} <= set(enum_values("action"))
    assert ZH.enum("action", "ESCALATE") == "督办" and EN.enum("action", "ESCALATE") == "Escalated"


def test_unknown_values_fall_back_to_the_value() -> None:
    assert ZH.enum("state", "SOMETHING_NEW") == "SOMETHING_NEW" and EN("no_such_key") == "no_such_key"
    assert ZH("fetched", n=3) == "已读取 3 条" and EN("fetched", n=3) == "3 fetched"


def test_durations_rates_and_times() -> None:
    assert views.format_duration(3 * 86_400 + 4 * 3600 + 5 * 60 + 59, EN) == "3d 4h 5m"
    assert views.format_duration(3 * 86_400 + 5 * 60, ZH) == "3天5分"
    assert views.format_duration(20, EN) == "0m" and views.format_duration(-5, EN) == "0m"
    assert views.format_rate(0.9278) == "92.8%" and views.format_days(2.345, 2) == "2.35"
    assert views.china_time(T0) == "2026-11-02 09:00" and views.china_time(None) == "-"


def test_court_and_group_key_labels() -> None:
    assert views.court_label("courts/ha0122", COURTS) == "中牟县人民法院 (ha0122)"
    assert views.court_label("courts/nowhere", COURTS) == "courts/nowhere" and views.court_label("", COURTS) == "-"
    assert views.key_label("province_pair", "gd-ha", ZH, COURTS) == "粤-豫"
    assert views.key_label("province_pair", "gd-ha", EN, COURTS) == "gd-ha"
    assert views.key_label("cross_province", "true", ZH, COURTS) == "跨省"
    assert views.key_label("cross_province", "false", EN, COURTS) == "In-province"
    assert views.key_label("matter_kind", "DEPOSITS", ZH, COURTS) == "存款及理财产品"
    assert views.key_label("month", "2026-11", ZH, COURTS) == "2026-11"


# --- timeline -------------------------------------------------------------------------------------------------


def late_timeline() -> pb.DelegationTimeline:
    ack_due, finish_due = T0 + timedelta(days=7), T0 + timedelta(days=30)
    return pb.DelegationTimeline(
        delegation="courts/gd0112/delegations/x1",
        entries=[
            entry("SUBMIT", T0, actor="courts/gd0112", trace="b" * 32),
            entry("OVERDUE", T0 + timedelta(days=8), actor="", reason="ACKNOWLEDGE"),
            entry("URGE", T0 + timedelta(days=8), actor="", reason="ACKNOWLEDGE"),
            entry("URGE", T0 + timedelta(days=9), actor="courts/gd0112"),
            entry("ACKNOWLEDGE", T0 + timedelta(days=10)),
            entry("COMPLETE", T0 + timedelta(days=12)),
        ],
        deadlines=[
            deadline(pb.Deadline.ACKNOWLEDGE, ack_due, pb.Deadline.MET_LATE),
            deadline(pb.Deadline.FINISH, finish_due, pb.Deadline.MET),
        ],
    )


def test_timeline_rows_name_the_deadline_and_mark_what_was_late() -> None:
    matter = views.timeline_view(late_timeline())
    rows = {(r.action, r.actor_court): r for r in matter.entries}
    assert [r.deadline_step for r in matter.entries] == ["", "ACKNOWLEDGE", "ACKNOWLEDGE", "", "ACKNOWLEDGE", "FINISH"]
    assert [r.overdue for r in matter.entries] == [False, True, True, False, True, False]
    assert rows[("COMPLETE", "courts/ha0122")].deadline_due == T0 + timedelta(days=30)
    assert rows[("ACKNOWLEDGE", "courts/ha0122")].elapsed_seconds == 10 * 86_400
    assert matter.trace_ids == ("b" * 32, "a" * 32)  # the creating call's first


def test_timeline_json_and_tables() -> None:
    matter = views.timeline_view(late_timeline())
    data = matter.to_json()
    assert data["entries"][1]["time"] == (T0 + timedelta(days=8)).isoformat()
    assert data["deadlines"][0] == {
        "step": "ACKNOWLEDGE",
        "due": (T0 + timedelta(days=7)).isoformat(),
        "status": "MET_LATE",
        "provisional": False,
        "source": "",
        "extensions": [],
    }
    zh = render(views.timeline_table(matter, ZH, COURTS)) + render(views.deadlines_table(matter, ZH))
    assert all(
        word in zh for word in ("环节", "超期", "系统", "中牟县人民法院 (ha0122)", "签收 2026-11-09 09:00", "逾期完成", "b" * 32)
    )
    en = render(views.timeline_table(matter, EN, COURTS))
    assert all(word in en for word in ("Overdue", "system", "Acknowledge 2026-11-09 09:00", "10d"))


# --- overdue --------------------------------------------------------------------------------------------------


def late_delegation(name: str, entrusted: str, missed_days_ago: float, now: datetime) -> pb.Delegation:
    due = now - timedelta(days=missed_days_ago)
    return pb.Delegation(
        name=name,
        case="courts/gd0112/cases/2023-enf-1",
        requesting_court="courts/gd0112",
        entrusted_court=entrusted,
        matter_kind=pb.Delegation.DEPOSITS,
        state=pb.Delegation.SUBMITTED,
        urge_count=2,
        deadlines=[
            deadline(pb.Deadline.SUPPLEMENT, due - timedelta(days=5), pb.Deadline.OVERDUE),  # the requesting court's
            deadline(pb.Deadline.ACKNOWLEDGE, due, pb.Deadline.OVERDUE),
            deadline(pb.Deadline.START, due + timedelta(days=1)),
        ],
    )


def test_overdue_row_takes_the_earliest_missed_deadline_of_the_entrusted_court() -> None:
    now = T0 + timedelta(days=20)
    row = views.overdue_row(late_delegation("courts/gd0112/delegations/a", "courts/ha0122", 3, now), now)
    assert row.step == "ACKNOWLEDGE" and row.days_overdue == pytest.approx(3) and not row.escalated
    started_late = views.overdue_row(
        late_delegation("courts/gd0112/delegations/a", "courts/ha0122", 3, now), now + timedelta(days=2)
    )
    assert started_late.days_overdue == pytest.approx(5)
    early = views.overdue_row(late_delegation("courts/gd0112/delegations/a", "courts/ha0122", 3, now), now - timedelta(days=10))
    assert early.days_overdue == 0.0  # scanned "as of" a later instant: never negative
    assert row.to_json()["due"] == (now - timedelta(days=3)).isoformat()


def test_only_entrusted_to_leaves_out_subordinate_courts() -> None:
    now = T0
    rows = [
        views.overdue_row(late_delegation("courts/gd0112/delegations/a", "courts/ha01", 1, now), now),
        views.overdue_row(late_delegation("courts/gd0112/delegations/b", "courts/ha0122", 1, now), now),
    ]
    assert [r.delegation for r in views.only_entrusted_to(rows, "courts/ha01")] == ["courts/gd0112/delegations/a"]
    table = render(views.overdue_table(rows, "courts/ha01", ZH, COURTS))
    assert "郑州市中级人民法院 (ha01) 及下级法院的超期事项" in table and "courts/gd0112/delegations/b" in table


# --- statistics -----------------------------------------------------------------------------------------------


def group(
    key: dict[str, str], count: int, complete_mean: float, complete_count: int = 1, **rates: float
) -> pb.TurnaroundStatistics.Group:
    g = pb.TurnaroundStatistics.Group(count=count, **rates)
    g.key.update(key)
    g.time_to_complete.count = complete_count
    g.time_to_complete.mean_days = complete_mean
    return g


def test_ranking_fastest_first_and_only_courts_with_completed_matters() -> None:
    answer = pb.TurnaroundStatistics(
        groups=[
            group({"entrusted_court": "courts/a"}, 5, 9.0),
            group({"entrusted_court": "courts/b"}, 5, 2.0),
            group({"entrusted_court": "courts/c"}, 9, 2.0, complete_count=4),
            group({"entrusted_court": "courts/d"}, 3, 0.0, complete_count=0),
        ]
    )
    ranked = views.ranking(views.stats_rows(answer))
    assert [r.key["entrusted_court"] for r in ranked] == ["courts/c", "courts/b", "courts/a"]


def test_months_in_order_and_in_vs_cross_province() -> None:
    rows = views.stats_rows(
        pb.TurnaroundStatistics(groups=[group({"month": "2026-02"}, 1, 1.0), group({"month": "2025-12"}, 1, 1.0)])
    )
    assert [r.key["month"] for r in views.by_month(rows)] == ["2025-12", "2026-02"]
    split = views.stats_rows(pb.TurnaroundStatistics(groups=[group({"cross_province": "true"}, 4, 6.0)]))
    inside, across = views.split_cross_province(split)
    assert inside is None and across is not None and across.count == 4


def test_distribution_bins_add_up_buckets_at_powers_of_two() -> None:
    buckets = [(0.0, 1 / 64, 2), (0.5, 0.54, 1), (1.0, 1.09, 3), (3.9, 4.0, 1), (4.0, 4.36, 2), (512.0, math.inf, 1)]
    bins = views.coarse_distribution(buckets)
    assert [n for _, _, n in bins] == [3, 3, 1, 2, 0, 0, 0, 0, 1]
    assert sum(n for _, _, n in bins) == sum(n for _, _, n in buckets)
    assert [views.bin_label(lo, hi, EN) for lo, hi, _ in bins][:2] == ["<1d", "1–2d"]
    assert views.bin_label(128.0, math.inf, ZH) == "≥128天"


def test_stats_rows_keep_the_distribution_and_render() -> None:
    g = group({"entrusted_court": "courts/ha0122"}, 2, 1.5, complete_count=2, on_time_rate=0.5, return_rate=0.25)
    g.time_to_complete.distribution.add(lower_days=1.0, upper_days=1.09, count=1)
    g.time_to_complete.distribution.add(lower_days=512.0, upper_days=0.0, count=1)  # unbounded
    [row] = views.stats_rows(pb.TurnaroundStatistics(groups=[g]))
    assert row.complete_distribution == ((1.0, 1.09, 1), (512.0, math.inf, 1))
    assert row.to_json()["complete_distribution"][1] == {"lower_days": 512.0, "upper_days": None, "count": 1}
    table = render(views.stats_table([row], ["entrusted_court"], ZH, COURTS))
    assert all(word in table for word in ("受托法院", "中牟县人民法院 (ha0122)", "50.0%", "25.0%", "1.5"))
    bins = render(views.distribution_table([row], ["entrusted_court"], EN, COURTS))
    assert "1–2d" in bins and "≥128d" in bins


def test_on_time_and_overdue_count_different_matters_and_say_so() -> None:
    """Regression: `stats` showed "On time 100.0%" next to "Overdue 9". The share is of the
    completed matters, the count of the open ones; each column says which, and the caption
    defines both (docs/admin.md, "What the figures count")."""
    contradicting = group(
        {"entrusted_court": "courts/ha0122"}, 12, 0.2, complete_count=3, on_time_rate=1.0, overdue_count=9, open_overdue_count=9
    )
    contradicting.completion_rate = 1.0
    nothing_completed = group(
        {"entrusted_court": "courts/ha1321"}, 4, 0.0, complete_count=0, overdue_count=4, open_overdue_count=4
    )
    rows = views.stats_rows(pb.TurnaroundStatistics(groups=[contradicting, nothing_completed]))
    for labels, on_time, open_overdue, defined in (
        (EN, "Completed on time", "Open & overdue now", "share of the completed matters completed by their FINISH deadline"),
        (ZH, "按期办结率", "在办超期数", "已办结事项中在办结期限内办结的比例"),
    ):
        table = render(views.stats_table(rows, ["entrusted_court"], labels, COURTS))
        header = next(line for line in table.splitlines() if on_time in line)
        assert open_overdue in header and defined in table.replace("\n", "")
        assert labels("overdue_count") not in header  # "went overdue at some time" is in --json/--csv only
        ha0122 = next(line for line in table.splitlines() if "(ha0122)" in line)
        cells = [c.strip() for c in ha0122.split("│")[1:-1]]
        assert cells[views.STATS_COLUMNS.index("on_time_rate") + 1] == "100.0%"
        assert cells[views.STATS_COLUMNS.index("open_overdue_count") + 1] == "9"
        ha1321 = next(line for line in table.splitlines() if "(ha1321)" in line)
        cells = [c.strip() for c in ha1321.split("│")[1:-1]]
        assert cells[views.STATS_COLUMNS.index("on_time_rate") + 1] == "-"  # no completed matter: no share, not 0 %
        assert cells[views.STATS_COLUMNS.index("completion_rate") + 1] == "-"
    data = rows[0].to_json()
    assert (data["on_time_rate"], data["overdue_count"], data["open_overdue_count"]) == (1.0, 9, 9)


# --- options → requests ---------------------------------------------------------------------------------------


def test_statistics_filter_from_options() -> None:
    assert statistics_filter() == ""
    assert statistics_filter("ha0122", "courts/gd0112", "DEPOSITS", "2026-11", False, "x = 1") == (
        'entrusted_court = "courts/ha0122" AND requesting_court = "courts/gd0112" AND matter_kind = DEPOSITS'
        ' AND month = "2026-11" AND cross_province = false AND x = 1'
    )


def test_matter_queries_and_credentials() -> None:
    assert matter_query("courts/gd0112/delegations/01J", COURTS).kind == "name"
    assert matter_query("courts/gd0112/cases/2023-enf-7", COURTS).kind == "case"
    by_number = matter_query(" （2023）粤0112执1234号 ", COURTS)
    assert (by_number.kind, by_number.value) == ("case", "courts/gd0112/cases/2023-enf-1234")
    assert matter_query("(2023)粤0112执1234号", COURTS).value == "courts/gd0112/cases/2023-enf-1234"
    assert matter_query("01a21cc9-9b84", COURTS).kind == "id"
    with pytest.raises(InvalidArgument):
        matter_query("（2023）粤9999执1号", COURTS)
    assert AdminClient(credential="admin:ops").credentials.token == "dev:admin:ops"
    assert AdminClient(credential="dev:court:ha13").credentials.token == "dev:court:ha13"
    with pytest.raises(ValueError):
        AdminClient(credential="root")
