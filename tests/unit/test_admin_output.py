"""What `rogatory-admin` writes when its output is piped or redirected: tables with every
column (never cut to a terminal's width), CSV with a fixed header of the --json field names,
and an HTML report that says "no data" where a chart has nothing to draw."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from rogatory.delegation.v1 import delegation_pb2 as pb
from typer.testing import CliRunner

from registry.courts import CourtCatalog
from services.tools.admin import cli, report, views
from services.tools.admin.labels import Labels

EN, ZH = Labels("en"), Labels("zh")
COURTS = CourtCatalog.default()
NOW = datetime(2026, 12, 20, 1, 0, tzinfo=UTC)


def overdue_rows(count: int) -> list[views.OverdueRow]:
    return [
        views.OverdueRow(
            delegation=f"courts/gd0112/delegations/01a21cc9-9b84-715b-a1f4-efedda2aa1{n:02d}",
            case=f"courts/gd0112/cases/2023-enf-{4242 + n}",
            requesting_court="courts/gd0112",
            entrusted_court="courts/ha0122",
            matter_kind="REAL_ESTATE_OR_REGISTERED_MOVABLES",
            state="RETURNED_FOR_SUPPLEMENT",
            step="ACKNOWLEDGE",
            due=NOW - timedelta(days=3 + n),
            days_overdue=3.0 + n,
            urge_count=n,
            escalated=n % 2 == 1,
        )
        for n in range(count)
    ]


def test_piped_tables_keep_every_column(capsys: pytest.CaptureFixture[str]) -> None:
    """Regression: piped tables were cut to 200 columns, losing their right-hand ones."""
    rows = overdue_rows(3)
    cli._out().print(views.overdue_table(rows, "courts/ha01", EN, COURTS))  # stdout is captured: not a terminal
    printed = capsys.readouterr().out
    assert "…" not in printed
    header = next(line for line in printed.splitlines() if "Matter" in line)
    assert all(title in header for title in ("Days overdue", "Urges", "Escalated"))  # the right-hand columns
    for row in rows:
        line = next(line for line in printed.splitlines() if row.delegation in line)
        assert "Real estate / registered movables" in line and "Returned for supplement" in line
        assert line.rstrip().rstrip("│").rstrip().endswith(EN.yes_no(row.escalated))
    assert max(len(line) for line in printed.splitlines()) > 200


def test_a_terminal_keeps_its_width() -> None:
    console = cli._out()
    assert console.is_terminal or console.width == cli.UNBOUNDED_WIDTH


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_overdue_csv_has_the_json_field_names(capsys: pytest.CaptureFixture[str]) -> None:
    rows = overdue_rows(2)
    cli._print_csv(views.OVERDUE_FIELDS, views.overdue_records(rows))
    printed = capsys.readouterr().out
    assert printed.splitlines()[0].split(",") == list(rows[0].to_json())  # same names, same order as --json
    first = read_csv(printed)[0]
    assert first["due"] == (NOW - timedelta(days=3)).isoformat() and first["escalated"] == "false"
    assert first["days_overdue"] == "3.0" and first["urge_count"] == "0"


def test_timeline_csv_has_a_line_per_step_of_every_matter(capsys: pytest.CaptureFixture[str]) -> None:
    def step(action: str, note: str = "") -> pb.DelegationTimeline.Entry:
        entry = pb.DelegationTimeline.Entry(action=action, actor_court="courts/ha0122", trace_id="a" * 32, note=note)
        entry.time.FromDatetime(NOW)
        return entry

    one = pb.DelegationTimeline(
        delegation="courts/gd0112/delegations/a", entries=[step("SUBMIT"), step("COMPLETE", "已冻结, 7,000,000 元")]
    )
    two = pb.DelegationTimeline(delegation="courts/gd0112/delegations/b", entries=[step("SUBMIT")])
    delegation = pb.Delegation(case="courts/gd0112/cases/2023-enf-1", state=pb.Delegation.COMPLETED)
    matters = [views.timeline_view(one, delegation), views.timeline_view(two, delegation)]
    cli._print_csv(views.TIMELINE_FIELDS, views.timeline_records(matters))
    lines = read_csv(capsys.readouterr().out)
    assert [(r["delegation"], r["action"]) for r in lines] == [
        ("courts/gd0112/delegations/a", "SUBMIT"),
        ("courts/gd0112/delegations/a", "COMPLETE"),
        ("courts/gd0112/delegations/b", "SUBMIT"),
    ]
    assert lines[1]["note"] == "已冻结, 7,000,000 元" and lines[1]["state"] == "COMPLETED" and lines[1]["overdue"] == "false"
    json_entry = matters[0].to_json()["entries"][0]
    assert set(views.TIMELINE_FIELDS) == set(json_entry) | {
        "delegation",
        "case",
        "state",
        "requesting_court",
        "entrusted_court",
        "matter_kind",
    }


def test_stats_csv_has_a_fixed_header_whatever_the_data(capsys: pytest.CaptureFixture[str]) -> None:
    group = pb.TurnaroundStatistics.Group(count=3, on_time_rate=0.5, overdue_count=1, return_rate=0.25)
    group.key.update({"entrusted_court": "courts/ha0122"})
    group.returns_by_reason.update({"MATERIALS_INCOMPLETE": 1, "RETURN_REASON_OTHER": 2})
    group.time_to_complete.count = 2
    group.time_to_complete.distribution.add(lower_days=1.0, upper_days=1.09, count=1)
    group.time_to_complete.distribution.add(lower_days=512.0, upper_days=0.0, count=1)
    rows = views.stats_rows(pb.TurnaroundStatistics(groups=[group]))
    cli._print_csv(views.stats_fields(["entrusted_court"], True), views.stats_records(rows, ["entrusted_court"], True))
    [line] = read_csv(capsys.readouterr().out)
    assert line["entrusted_court"] == "courts/ha0122" and line["count"] == "3" and line["on_time_rate"] == "0.5"
    assert line["returns_MATERIALS_INCOMPLETE"] == "1" and line["returns_DUPLICATE"] == "0"
    assert line["returns_RETURN_REASON_OTHER"] == "2" and line["returns_RETURN_REASON_UNSPECIFIED"] == "0"
    assert line["completed_1_2_days"] == "1" and line["completed_128_plus_days"] == "1" and line["completed_0_1_days"] == "0"
    scalar = {k for k, v in rows[0].to_json().items() if not isinstance(v, dict | list)}
    assert scalar <= set(line)  # every figure of --json is a column
    assert views.stats_fields([], False)[0] == "count" and "completed_0_1_days" not in views.stats_fields([], False)


def test_json_and_csv_together_are_refused() -> None:
    for command in (["timeline", "courts/gd0112/delegations/x"], ["overdue"], ["stats"]):
        result = CliRunner().invoke(cli.app, [*command, "--json", "--csv"])
        assert result.exit_code == 2 and "--json or --csv" in result.output, result.output


# --- the HTML report ------------------------------------------------------------------------------------------


CHARTS = ("chart-ranking", "chart-trend", "chart-distribution", "chart-comparison")


def empty_report() -> report.ReportData:
    return report.ReportData(NOW, NOW, "", "courts/spc", None, [], [], [], [])


def test_charts_without_data_say_no_data() -> None:
    """Regression: a chart with nothing to draw showed empty −1…1 axes."""
    for labels, words in ((EN, "No data"), (ZH, "暂无数据")):
        page = report.render(empty_report(), labels, COURTS)
        assert "Plotly.newPlot" not in page
        for chart in CHARTS:
            assert f'<div id="{chart}" class="no-data">{words}</div>' in page


def test_a_group_with_no_completed_matter_is_no_data_too() -> None:
    nothing_done = views.StatsRow(key={"cross_province": "true"}, count=2, **dict.fromkeys(_ZERO_FIGURES, 0))
    month = views.StatsRow(key={"month": "2026-11"}, count=2, **dict.fromkeys(_ZERO_FIGURES, 0))
    data = report.ReportData(NOW, NOW, "", "courts/spc", nothing_done, [nothing_done], [month], [nothing_done], [])
    page = report.render(data, EN, COURTS)
    for chart in ("chart-ranking", "chart-distribution"):  # no court completed anything; no completion time
        assert f'<div id="{chart}" class="no-data">' in page
    for chart in ("chart-trend", "chart-comparison"):  # two matters delegated, in one month, across provinces
        assert f'<div id="{chart}" class="plotly-graph-div"' in page


def test_charts_with_data_are_drawn() -> None:
    row = views.StatsRow(
        key={"entrusted_court": "courts/ha0122", "month": "2026-11", "cross_province": "true"},
        count=4,
        **{**dict.fromkeys(_ZERO_FIGURES, 0), "complete_count": 2, "complete_mean_days": 1.5, "on_time_rate": 1.0},
        complete_distribution=((1.0, 1.09, 2),),
    )
    page = report.render(report.ReportData(NOW, NOW, "", "courts/spc", row, [row], [row], [row], []), EN, COURTS)
    assert page.count("Plotly.newPlot") == len(CHARTS) and 'class="no-data"' not in page
    assert all(f'<div id="{chart}" class="plotly-graph-div"' in page for chart in CHARTS)


def test_the_summary_says_what_on_time_and_overdue_count() -> None:
    row = views.StatsRow(
        key={}, count=12, **{**dict.fromkeys(_ZERO_FIGURES, 0), "complete_count": 3, "on_time_rate": 1.0, "open_overdue_count": 9}
    )
    page = report.render(report.ReportData(NOW, NOW, "", "courts/spc", row, [], [], [], []), EN, COURTS)
    summary = page[page.index('<section id="summary">') : page.index('<section id="ranking">')]
    cards = dict(re.findall(r'<div class="value">([^<]*)</div><div class="label">([^<]*)</div>', summary))
    assert cards["100.0%"] == "Completed on time" and cards["9"] == "Open &amp; overdue now"
    assert "share of the completed matters completed by their FINISH deadline" in summary


_ZERO_FIGURES = tuple(
    f for f in views.StatsRow.__dataclass_fields__ if f not in ("key", "count", "returns_by_reason", "complete_distribution")
)
