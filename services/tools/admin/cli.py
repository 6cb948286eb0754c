"""`rogatory-admin`: timeline, overdue, stats and report against the running services.

    rogatory-admin timeline '（2020）粤0112执123号' --lang zh
    rogatory-admin overdue --court ha13
    rogatory-admin stats -g entrusted_court --month 2026-11 --json
    rogatory-admin overdue --csv > overdue.csv
    rogatory-admin report --out report.html

Addresses default to what `make run` uses (DELEGATION_ADDR); the credential is a
development token (`--as admin:NAME` or `--as court:ID`, ROGATORY_CREDENTIAL). Tables go to
stdout, progress to stderr, so `--json` and `--csv` output can be piped; piped or
redirected tables keep every column (they are never cut to a terminal's width).
"""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import grpc
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn

from registry.courts import CourtCatalog
from registry.errors import InvalidArgument
from rogatory_client import RogatoryError
from services.tools.admin import views
from services.tools.admin.client import DEFAULT_CREDENTIAL, DEFAULT_DELEGATION_ADDR, AdminClient, OnPage, matter_query
from services.tools.admin.labels import Labels

T = TypeVar("T")

app = typer.Typer(
    name="rogatory-admin",
    help="Admin and supervising-court views of delegated matters: timelines with trace ids, overdue matters, turnaround.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Lang(StrEnum):
    zh = "zh"
    en = "en"


class Dimension(StrEnum):
    entrusted_court = "entrusted_court"
    requesting_court = "requesting_court"
    province_pair = "province_pair"
    cross_province = "cross_province"
    matter_kind = "matter_kind"
    month = "month"


class Kind(StrEnum):
    DEPOSITS = "DEPOSITS"
    EQUITY = "EQUITY"
    REAL_ESTATE_OR_REGISTERED_MOVABLES = "REAL_ESTATE_OR_REGISTERED_MOVABLES"
    PROPERTY_INVESTIGATION = "PROPERTY_INVESTIGATION"
    SERVICE_OF_DOCUMENTS = "SERVICE_OF_DOCUMENTS"
    CONTROL_MEASURES = "CONTROL_MEASURES"
    OTHER = "OTHER"


Address = Annotated[
    str, typer.Option("--delegation-addr", envvar="DELEGATION_ADDR", help="delegation service gRPC address", show_default=True)
]
Credential = Annotated[
    str,
    typer.Option(
        "--as",
        envvar="ROGATORY_CREDENTIAL",
        help="who is asking: admin:NAME (reads everything) or court:ID (its own and its subordinates' matters)",
    ),
]
LangOption = Annotated[Lang, typer.Option("--lang", envvar="ROGATORY_LANG", help="label language")]
JsonOption = Annotated[bool, typer.Option("--json", help="machine-readable JSON on stdout instead of tables")]
CsvOption = Annotated[
    bool, typer.Option("--csv", help="CSV on stdout instead of tables: a header of field names, then one line per row")
]
TraceUi = Annotated[
    str, typer.Option("--trace-ui", envvar="ROGATORY_TRACE_UI", help="trace UI base URL, for links to a matter's traces")
]


def main() -> None:
    app()


# --- plumbing of the commands ------------------------------------------------------------------------------


#: Piped or redirected, a table is as wide as its content: no column is ever cut or dropped.
UNBOUNDED_WIDTH = 100_000


def _out() -> Console:
    """stdout: a terminal's width on a terminal; unbounded on a pipe or a file (rich would assume 80)."""
    console = Console()
    return console if console.is_terminal else Console(width=UNBOUNDED_WIDTH)


def _err() -> Console:
    return Console(stderr=True)


@contextmanager
def _progress(labels: Labels, what: str, quiet: bool = False) -> Iterator[OnPage]:
    """A spinner with a running count on stderr while pages come in."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[done]}"),
        console=_err(),
        transient=True,
        disable=quiet,
    ) as progress:
        task = progress.add_task(f"{labels('fetching')} {what}", total=None, done="")
        seen = 0

        def on_page(n: int) -> None:
            nonlocal seen
            seen += n
            progress.update(task, advance=n, done=labels("fetched", n=seen))

        yield on_page


def _run(work: Callable[[], Awaitable[T]]) -> T:
    """Runs a command's async work; gRPC and argument errors become a message and exit code 1."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except RogatoryError as error:  # what the service answered, with its reason and bad fields
        reason = f" {error.reason}" if error.reason else ""
        _err().print(f"[red]{error.code().name}[/red]{reason}: {error.message}", markup=True, highlight=False)
        for bad in error.field_violations:
            _err().print(f"[red]{bad.field}[/red]: {bad.description}", markup=True, highlight=False)
        # 2, as for a bad option: the request was wrong, not the service.
        raise typer.Exit(2 if error.code() == grpc.StatusCode.INVALID_ARGUMENT else 1) from None
    except InvalidArgument as error:
        for violation in error.violations:
            _err().print(f"[red]{violation.field}[/red]: {violation.description}")
        raise typer.Exit(2) from None


def _client(address: str, credential: str) -> AdminClient:
    try:
        return AdminClient(address, credential)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--as") from None


def _court_name(court: str) -> str:
    return court if court.startswith("courts/") else f"courts/{court}"


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def _print_csv(fields: Sequence[str], records: Iterable[views.Record]) -> None:
    """RFC 4180 CSV in UTF-8 (no BOM), "\\n" line ends: the header, then a line per record."""
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(fields)
    writer.writerows([views.csv_cell(record[f]) for f in fields] for record in records)


def _one_format(as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise typer.BadParameter("give --json or --csv, not both", param_hint="--csv")


def _at(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise typer.BadParameter("give a UTC offset, e.g. 2026-12-01T09:00:00+08:00", param_hint="--at")
    return value


# --- timeline ------------------------------------------------------------------------------------------------


@app.command()
def timeline(
    matter: Annotated[
        str,
        typer.Argument(help="courts/{court}/delegations/{id}, a bare id, courts/{court}/cases/{case}, or a case number (案号)"),
    ],
    address: Address = DEFAULT_DELEGATION_ADDR,
    credential: Credential = DEFAULT_CREDENTIAL,
    lang: LangOption = Lang.en,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
    trace_ui: TraceUi = "http://localhost:16686",
) -> None:
    """Every step of a matter (or of every matter of a case): actor, time, elapsed calendar and
    working days, deadline, overdue marker and trace id."""
    _one_format(as_json, as_csv)
    labels, courts = Labels(lang.value), CourtCatalog.default()
    query = _run_sync(lambda: matter_query(matter, courts))

    async def work() -> list[views.MatterTimeline]:
        async with _client(address, credential) as client:
            with _progress(labels, matter, quiet=query.kind == "name") as on_page:
                names = await client.resolve(query, on_page)
            found = []
            for name in names:
                delegation, steps = await asyncio.gather(client.delegation(name), client.timeline(name))
                found.append(views.timeline_view(steps, delegation))
            return found

    matters = _run(work)
    if as_json:
        _print_json({"query": matter, "matters": [m.to_json() for m in matters]})
    elif as_csv:
        _print_csv(views.TIMELINE_FIELDS, views.timeline_records(matters))
    else:
        out = _out()
        for item in matters:
            out.print(views.matter_header(item, labels, courts), highlight=False)
            out.print(views.timeline_table(item, labels, courts))
            out.print(views.deadlines_table(item, labels))
            for trace_id in item.trace_ids[:1]:
                out.print(f"{labels('trace_id')}: {trace_id}  {trace_ui.rstrip('/')}/trace/{trace_id}")
            out.print()
    if not matters:
        _err().print(labels("no_matters", query=matter))
        raise typer.Exit(1)


def _run_sync(work: Callable[[], T]) -> T:
    try:
        return work()
    except InvalidArgument as error:
        for violation in error.violations:
            _err().print(f"[red]{violation.field}[/red]: {violation.description}")
        raise typer.Exit(2) from None


# --- overdue -------------------------------------------------------------------------------------------------


@app.command()
def overdue(
    court: Annotated[
        str, typer.Option("--court", help="supervising court id or name: its matters and its subordinate courts'")
    ] = "spc",
    only_this_court: Annotated[bool, typer.Option("--only-this-court", help="leave out the subordinate courts' matters")] = False,
    at: Annotated[str | None, typer.Option("--at", help="count days overdue as of this instant (ISO 8601 with offset)")] = None,
    address: Address = DEFAULT_DELEGATION_ADDR,
    credential: Credential = DEFAULT_CREDENTIAL,
    lang: LangOption = Lang.en,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Overdue matters entrusted to a court or any of its subordinate courts, longest overdue first."""
    _one_format(as_json, as_csv)
    labels, courts, name, now = Labels(lang.value), CourtCatalog.default(), _court_name(court), _at(at)

    async def work() -> list[views.OverdueRow]:
        async with _client(address, credential) as client:
            with _progress(labels, name) as on_page:
                found = await client.overdue(name, on_page)
        return [views.overdue_row(d, now) for d in found]

    rows = _run(work)
    if only_this_court:
        rows = views.only_entrusted_to(rows, name)
    if as_json:
        _print_json({"court": name, "as_of": now.isoformat(), "delegations": [r.to_json() for r in rows]})
    elif as_csv:
        _print_csv(views.OVERDUE_FIELDS, views.overdue_records(rows))
    elif rows:
        _out().print(views.overdue_table(rows, name, labels, courts))
    else:
        _out().print(labels("nothing_overdue"))


# --- stats ---------------------------------------------------------------------------------------------------


def statistics_filter(
    entrusted_court: str | None = None,
    requesting_court: str | None = None,
    kind: str | None = None,
    month: str | None = None,
    cross_province: bool | None = None,
    extra: str = "",
) -> str:
    """The AIP-160 filter of GetTurnaroundStatistics for the command's options, joined by AND."""
    terms = []
    if entrusted_court:
        terms.append(f'entrusted_court = "{_court_name(entrusted_court)}"')
    if requesting_court:
        terms.append(f'requesting_court = "{_court_name(requesting_court)}"')
    if kind:
        terms.append(f"matter_kind = {kind}")
    if month:
        terms.append(f'month = "{month}"')
    if cross_province is not None:
        terms.append(f"cross_province = {'true' if cross_province else 'false'}")
    if extra.strip():
        terms.append(extra.strip())
    return " AND ".join(terms)


@app.command()
def stats(
    group_by: Annotated[
        list[Dimension] | None, typer.Option("--group-by", "-g", help="dimension to group by (repeatable)")
    ] = None,
    court: Annotated[str | None, typer.Option("--court", help="only matters entrusted to this court")] = None,
    requesting_court: Annotated[str | None, typer.Option("--requesting-court", help="only matters this court delegated")] = None,
    kind: Annotated[Kind | None, typer.Option("--kind", help="only this matter kind")] = None,
    month: Annotated[str | None, typer.Option("--month", help='only matters submitted in this month, "YYYY-MM"')] = None,
    cross_province: Annotated[
        bool | None, typer.Option("--cross-province/--in-province", help="only cross-province / in-province matters")
    ] = None,
    filter_text: Annotated[str, typer.Option("--filter", help="any further AIP-160 filter, ANDed")] = "",
    distribution: Annotated[bool, typer.Option("--distribution", help="also show how completion times are distributed")] = False,
    address: Address = DEFAULT_DELEGATION_ADDR,
    credential: Credential = DEFAULT_CREDENTIAL,
    lang: LangOption = Lang.en,
    as_json: JsonOption = False,
    as_csv: CsvOption = False,
) -> None:
    """Turnaround figures (time to acknowledge and complete, on-time, completion and return
    rates, overdue count), filtered and grouped."""
    _one_format(as_json, as_csv)
    labels, courts = Labels(lang.value), CourtCatalog.default()
    dimensions = [d.value for d in group_by or []]
    text = statistics_filter(court, requesting_court, kind.value if kind else None, month, cross_province, filter_text)

    async def work() -> list[views.StatsRow]:
        async with _client(address, credential) as client:
            return views.stats_rows(await client.statistics(text, dimensions, include_distributions=distribution))

    rows = _run(work)
    if as_json:
        _print_json({"filter": text, "group_by": dimensions, "groups": [r.to_json() for r in rows]})
        return
    if as_csv:
        _print_csv(views.stats_fields(dimensions, distribution), views.stats_records(rows, dimensions, distribution))
        return
    out = _out()
    out.print(views.stats_table(rows, dimensions, labels, courts))
    if distribution:
        out.print(views.distribution_table(rows, dimensions, labels, courts))


# --- report --------------------------------------------------------------------------------------------------


@app.command()
def report(
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path("report.html"),
    court: Annotated[str, typer.Option("--court", help="supervising court of the overdue list")] = "spc",
    filter_text: Annotated[str, typer.Option("--filter", help="AIP-160 filter applied to every figure")] = "",
    top: Annotated[int, typer.Option("--top", help="courts shown in the ranking")] = 20,
    at: Annotated[str | None, typer.Option("--at", help="count days overdue as of this instant")] = None,
    address: Address = DEFAULT_DELEGATION_ADDR,
    credential: Credential = DEFAULT_CREDENTIAL,
    lang: LangOption = Lang.en,
) -> None:
    """A self-contained HTML turnaround report (charts work offline): court ranking, monthly
    trend, distribution of completion times, in- vs cross-province, overdue list."""
    from services.tools.admin import report as html_report  # noqa: PLC0415  (plotly loads slowly)

    labels, courts, now = Labels(lang.value), CourtCatalog.default(), _at(at)

    async def work() -> html_report.ReportData:
        async with _client(address, credential) as client:
            with _progress(labels, "report") as on_page:
                return await html_report.collect(client, _court_name(court), filter_text, now, on_page)

    data = _run(work)
    out.write_text(html_report.render(data, labels, courts, top=top), encoding="utf-8")
    _err().print(f"{out} ({out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
