"""The HTML turnaround report: figures read over gRPC, charts drawn by plotly, one
self-contained file (plotly.js inlined once, so it opens offline and can be mailed).

Sections: summary, courts ranked by average handling time (with on-time and return rates),
monthly trend, distribution of completion times, in-province vs cross-province, overdue list.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from registry.courts import CourtCatalog
from services.tools.admin import views
from services.tools.admin.client import AdminClient, OnPage
from services.tools.admin.labels import Labels

# Colours of the whole report: one per meaning, the same in every chart.
BLUE, GREEN, RED, GREY, ORANGE = "#3366cc", "#2ca02c", "#d62728", "#7f7f7f", "#ff7f0e"


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    as_of: datetime  # days overdue are counted to this instant
    filter_text: str
    supervising_court: str
    total: views.StatsRow | None
    by_court: list[views.StatsRow]
    by_month: list[views.StatsRow]
    by_locality: list[views.StatsRow]
    overdue: list[views.OverdueRow]


async def collect(client: AdminClient, court: str, filter_text: str, now: datetime, on_page: OnPage) -> ReportData:
    """Every figure the report shows: four statistics queries and the overdue list."""
    total = views.stats_rows(await client.statistics(filter_text, (), include_distributions=True))
    on_page(1)
    by_court = views.stats_rows(await client.statistics(filter_text, ["entrusted_court"]))
    on_page(len(by_court))
    by_month = views.stats_rows(await client.statistics(filter_text, ["month"]))
    on_page(len(by_month))
    by_locality = views.stats_rows(await client.statistics(filter_text, ["cross_province"], include_distributions=True))
    on_page(len(by_locality))
    overdue = [views.overdue_row(d, now) for d in await client.overdue(court, on_page)]
    return ReportData(
        datetime.now(UTC),
        now,
        filter_text,
        court,
        total[0] if total else None,
        by_court,
        views.by_month(by_month),
        by_locality,
        overdue,
    )


# --- charts --------------------------------------------------------------------------------------------------


def _layout(fig: go.Figure, title: str, height: int) -> go.Figure:
    # The section heading names the chart on the page; the figure keeps its title only as
    # the name of a downloaded image, so none is drawn.
    fig.update_layout(
        meta={"title": title},
        height=height,
        template="plotly_white",
        margin={"l": 60, "r": 30, "t": 40, "b": 50},
        font={"family": "Noto Sans CJK SC, Microsoft YaHei, PingFang SC, sans-serif", "size": 13},
        legend={"orientation": "h", "y": -0.15},
    )
    return fig


# Each figure is None when there is nothing to draw: the page says "no data" instead of
# drawing empty axes.


def ranking_figure(rows: list[views.StatsRow], labels: Labels, courts: CourtCatalog, top: int) -> go.Figure | None:
    ranked = views.ranking(rows)[:top]
    if not ranked:
        return None
    names = [views.court_label(r.key["entrusted_court"], courts) for r in ranked]
    fig = make_subplots(
        rows=1,
        cols=3,
        shared_yaxes=True,
        column_widths=[0.5, 0.25, 0.25],
        horizontal_spacing=0.045,
        subplot_titles=(labels("mean_days_axis"), labels("on_time_rate"), labels("return_rate")),
    )
    hover = [f"{labels('count')}: {r.count}<br>{labels('complete_median')}: {r.complete_median_days:.1f}" for r in ranked]
    fig.add_trace(
        go.Bar(
            y=names,
            x=[r.complete_mean_days for r in ranked],
            orientation="h",
            marker_color=BLUE,
            name=labels("complete_mean"),
            text=[views.format_days(r.complete_mean_days) for r in ranked],
            textposition="inside",
            insidetextanchor="end",
            textangle=0,
            hovertext=hover,
        ),
        row=1,
        col=1,
    )
    # On-time rates sit near 100 % and return rates near 0: the first gets the whole scale
    # with labels inside, the second a scale that fits its largest value, labels outside.
    returns = [r.return_rate for r in ranked]
    return_scale = max(0.2, 1.3 * max(returns, default=0.0))
    for col, values, colour, key, scale, position in (
        (2, [r.on_time_rate for r in ranked], GREEN, "on_time_rate", 1.0, "inside"),
        (3, returns, RED, "return_rate", return_scale, "outside"),
    ):
        fig.add_trace(
            go.Bar(
                y=names,
                x=values,
                orientation="h",
                marker_color=colour,
                name=labels(key),
                text=[views.format_rate(v) for v in values],
                textposition=position,
                insidetextanchor="end",
                textangle=0,
                cliponaxis=False,
            ),
            row=1,
            col=col,
        )
        fig.update_xaxes(range=[0, scale], nticks=3, tickformat=".0%", row=1, col=col)
    fig.update_yaxes(autorange="reversed")  # fastest on top
    _layout(fig, labels("ranking_title"), max(300, 60 + 28 * len(ranked)))
    fig.update_layout(showlegend=False, margin={"l": 220})
    return fig


def trend_figure(rows: list[views.StatsRow], labels: Labels) -> go.Figure | None:
    rows = [r for r in rows if r.count]
    if not rows:
        return None
    months = [r.key["month"] for r in rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=months, y=[r.count for r in rows], name=labels("matters_delegated"), marker_color="#aec7e8"))
    fig.add_trace(
        go.Scatter(
            x=months, y=[r.complete_mean_days for r in rows], name=labels("complete_mean"), mode="lines+markers", line_color=BLUE
        ),
        secondary_y=True,
    )
    fig.add_trace(
        go.Scatter(
            x=months,
            y=[r.complete_p90_days for r in rows],
            name=labels("complete_p90"),
            mode="lines",
            line={"color": GREY, "dash": "dot"},
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text=labels("matters_axis"), secondary_y=False)
    fig.update_yaxes(title_text=labels("days_axis"), secondary_y=True, rangemode="tozero", showgrid=False)
    fig.update_xaxes(type="category")
    _layout(fig, labels("trend_title"), 420)
    fig.update_layout(margin={"r": 70})
    return fig


def distribution_figure(total: views.StatsRow | None, labels: Labels) -> go.Figure | None:
    if total is None or not any(n for _, _, n in total.complete_distribution):
        return None
    bins = views.coarse_distribution(total.complete_distribution)
    fig = go.Figure(
        go.Bar(
            x=[views.bin_label(lo, hi, labels) for lo, hi, _ in bins],
            y=[n for _, _, n in bins],
            marker_color=BLUE,
            text=[str(n) for _, _, n in bins],
            textposition="outside",
            name=labels("matters_axis"),
        )
    )
    fig.update_xaxes(title_text=labels("completion_time_axis"), type="category")
    fig.update_yaxes(title_text=labels("matters_axis"))
    return _layout(fig, labels("distribution_title"), 380)


def comparison_figure(rows: list[views.StatsRow], labels: Labels) -> go.Figure | None:
    inside, across = (row if row is not None and row.count else None for row in views.split_cross_province(rows))
    if inside is None and across is None:
        return None
    fig = make_subplots(rows=1, cols=2, column_widths=[0.6, 0.4], subplot_titles=(labels("days_axis"), labels("rate_axis")))
    measures = [
        (labels("ack_time") + " " + labels("mean"), lambda r: r.ack_mean_days),
        (labels("complete_time") + " " + labels("mean"), lambda r: r.complete_mean_days),
        (labels("complete_time") + " " + labels("median"), lambda r: r.complete_median_days),
        (labels("complete_time") + " " + labels("p90"), lambda r: r.complete_p90_days),
    ]
    rates = [(labels("on_time_rate"), lambda r: r.on_time_rate), (labels("return_rate"), lambda r: r.return_rate)]
    for row, name, colour in ((inside, labels("in_province"), GREEN), (across, labels("cross_province_value"), ORANGE)):
        if row is None:
            continue
        label = f"{name} ({row.count})"
        fig.add_trace(
            go.Bar(
                x=[m for m, _ in measures], y=[f(row) for _, f in measures], name=label, marker_color=colour, legendgroup=name
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Bar(
                x=[m for m, _ in rates],
                y=[f(row) for _, f in rates],
                name=label,
                marker_color=colour,
                legendgroup=name,
                showlegend=False,
                text=[views.format_rate(f(row)) for _, f in rates],
                textposition="outside",
            ),
            row=1,
            col=2,
        )
    fig.update_yaxes(tickformat=".0%", range=[0, 1.1], row=1, col=2)
    fig.update_layout(barmode="group")
    return _layout(fig, labels("comparison_title"), 420)


# --- page ----------------------------------------------------------------------------------------------------


def _figure_html(fig: go.Figure | None, div_id: str, labels: Labels) -> str:
    if fig is None:
        return f'<div id="{div_id}" class="no-data">{html.escape(labels("no_data_chart"))}</div>'
    return fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True, "displayModeBar": False},
    )


def _summary_html(total: views.StatsRow | None, labels: Labels) -> str:
    if total is None or total.count == 0:
        return f"<p>{html.escape(labels('no_data'))}</p>"
    # The table's cells, so a figure reads the same in the report as in `stats`.
    cells = dict(zip(views.STATS_COLUMNS, views.stats_cells(total), strict=True))
    shown = ("count", "complete_mean", "complete_median", "on_time_rate", "open_overdue_count", "completion_rate", "return_rate")
    cards = [(labels(key), cells[key]) for key in shown]
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{html.escape(v)}</div><div class="label">{html.escape(k)}</div></div>'
            for k, v in cards
        )
        + "</div>"
        + f'<p class="note">{html.escape(labels("figures_defined"))}</p>'
    )


def _overdue_html(rows: list[views.OverdueRow], labels: Labels, courts: CourtCatalog) -> str:
    if not rows:
        return f"<p>{html.escape(labels('nothing_overdue'))}</p>"
    heads = (
        "matter",
        "entrusted_court",
        "requesting_court",
        "matter_kind",
        "overdue_step",
        "due",
        "days_overdue",
        "urge_count",
        "escalated",
    )
    head = "".join(f"<th>{html.escape(labels(h))}</th>" for h in heads)
    body = []
    for r in rows:
        cells = (
            r.delegation,
            views.court_label(r.entrusted_court, courts),
            views.court_label(r.requesting_court, courts),
            labels.enum("matter_kind", r.matter_kind),
            labels.enum("step", r.step),
            views.china_time(r.due),
            views.format_days(r.days_overdue),
            str(r.urge_count),
            labels.yes_no(r.escalated),
        )
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    return f'<table class="overdue"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


_STYLE = """
body { font-family: "Noto Sans CJK SC", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 24px auto; max-width: 1200px;
       color: #222; padding: 0 16px; }
h1 { margin-bottom: 4px; } .meta { color: #666; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 10px 16px; min-width: 120px; }
.card .value { font-size: 22px; font-weight: 600; } .card .label { color: #666; font-size: 13px; }
section { margin: 28px 0; } .note { color: #666; font-size: 13px; }
.no-data { border: 1px dashed #ccc; border-radius: 6px; color: #888; padding: 48px 0; text-align: center; }
table.overdue { border-collapse: collapse; width: 100%; font-size: 13px; }
table.overdue th, table.overdue td { border-bottom: 1px solid #e5e5e5; padding: 6px 8px; text-align: left; }
table.overdue th { background: #f6f6f6; }
"""


def render(data: ReportData, labels: Labels, courts: CourtCatalog, top: int = 20) -> str:
    """The whole report as one HTML document."""
    title = labels("report_title")
    meta = labels("generated", time=views.china_time(data.generated_at))
    if abs(data.as_of - data.generated_at) > timedelta(minutes=1):
        meta += " · " + labels("as_of", time=views.china_time(data.as_of))
    if data.filter_text:
        meta += f" · filter: {data.filter_text}"
    sections = [
        ("summary", labels("summary"), _summary_html(data.total, labels)),
        (
            "ranking",
            labels("ranking_title"),
            f'<p class="note">{html.escape(labels("ranking_note"))}</p>'
            + _figure_html(ranking_figure(data.by_court, labels, courts, top), "chart-ranking", labels),
        ),
        ("trend", labels("trend_title"), _figure_html(trend_figure(data.by_month, labels), "chart-trend", labels)),
        (
            "distribution",
            labels("distribution_title"),
            _figure_html(distribution_figure(data.total, labels), "chart-distribution", labels),
        ),
        (
            "comparison",
            labels("comparison_title"),
            _figure_html(comparison_figure(data.by_locality, labels), "chart-comparison", labels),
        ),
        (
            "overdue",
            f"{labels('overdue_list_title')} — {views.court_label(data.supervising_court, courts)}",
            _overdue_html(data.overdue, labels, courts),
        ),
    ]
    body = "\n".join(f'<section id="{sid}"><h2>{html.escape(head)}</h2>{content}</section>' for sid, head, content in sections)
    lang = "zh-CN" if labels.lang == "zh" else "en"
    return (
        f'<!DOCTYPE html>\n<html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style>"
        f'<script type="text/javascript">{get_plotlyjs()}</script></head>'
        f'<body><h1>{html.escape(title)}</h1><p class="meta">{html.escape(meta)}</p>\n{body}\n</body></html>\n'
    )
