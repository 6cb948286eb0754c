"""`rogatory-admin` against the real stack: matters taken through their life over gRPC (one
completed the same day, one never acknowledged and left to the deadline scanner), then
timeline, overdue and stats run as the installed command would run them, as tables and
as --json, in English and Chinese, as an admin and as courts."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from rogatory.delegation.v1 import delegation_pb2 as dg

from services.tools.admin import views
from services.tools.admin.client import AdminClient
from services.tools.demo import as_court, delegate_freeze, execute_freeze_same_day, until_case_replicated
from services.tools.launcher import Stack
from tests.conftest import wait_for
from tests.e2e.admin_cli import admin
from tests.e2e.test_deadline_escalation_e2e import past_deadline, scan_at
from tests.e2e.test_delegation_assistance_e2e import register_case

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class Scenario:
    case_name: str
    case_number: str
    done: str  # completed the same day, entrusted to 中牟县人民法院 (ha0122)
    late: str  # never acknowledged, entrusted to 中牟县人民法院 too; scanned 10 days on
    scanned_at: datetime


def as_json(stack: Stack, *args: str, **kwargs: Any) -> Any:
    return json.loads(admin(stack, *args, "--json", **kwargs).stdout)


@pytest.fixture(scope="module")
async def scenario(stack: Stack, sequence_numbers: Iterator[int]) -> Scenario:
    number = 900_000 + next(sequence_numbers)
    case_name = await register_case(stack, number)
    async with as_court("gd0112", stack.describe()) as huangpu:
        done = await until_case_replicated(lambda: delegate_freeze(huangpu, case_name))
        await execute_freeze_same_day(stack.describe(), done)
        late = await delegate_freeze(huangpu, case_name)
    scanned_at = past_deadline(late, dg.Deadline.ACKNOWLEDGE, 3)
    assert "MARK_OVERDUE 1" in scan_at(stack, scanned_at, late.name)  # its ACKNOWLEDGE deadline passed 3 days before
    await _until_read_model_has(stack, "courts/ha0122", matters=2, completed=1, overdue=1)
    return Scenario(case_name, f"（2023）粤0112执{number}号", done.name, late.name, scanned_at)


async def _until_read_model_has(stack: Stack, court: str, matters: int, completed: int, overdue: int) -> None:
    """The turnaround read model follows the events, the overdue mark's after the scan: wait
    for all of them, bounded (a test that reads the figures at once saw overdue_count 0)."""
    async with AdminClient(stack.address("delegation")) as client:

        async def has_them() -> bool:
            group = (await client.statistics(f'entrusted_court = "{court}"')).groups[0]
            return group.count >= matters and group.time_to_complete.count >= completed and group.overdue_count >= overdue

        await wait_for(has_them)


def test_the_console_script_is_installed() -> None:
    script = Path(sysconfig.get_path("scripts")) / "rogatory-admin"
    assert script.exists()
    shown = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and all(c in shown.stdout for c in ("timeline", "overdue", "stats", "report"))


def test_timeline_of_a_completed_matter_as_json(stack: Stack, scenario: Scenario) -> None:
    [matter] = as_json(stack, "timeline", scenario.done)["matters"]
    assert matter["delegation"] == scenario.done and matter["state"] == "COMPLETED" and matter["case"] == scenario.case_name
    steps = matter["entries"]
    assert [e["action"] for e in steps] == ["SUBMIT", "ACKNOWLEDGE", "START", "COMPLETE"]
    assert [e["actor_court"] for e in steps] == ["courts/gd0112"] + ["courts/ha0122"] * 3
    assert all(TRACE_ID.match(e["trace_id"]) for e in steps)
    assert matter["trace_ids"][0] == steps[0]["trace_id"]
    assert steps[-1]["deadline_step"] == "FINISH" and steps[-1]["deadline_due"] and not steps[-1]["overdue"]
    assert steps[0]["elapsed_seconds"] == 0 and all(e["elapsed_seconds"] >= 0 for e in steps)
    assert {d["step"] for d in matter["deadlines"]} >= {"ACKNOWLEDGE", "START", "FINISH"}


def test_timeline_by_case_number_finds_every_matter_of_the_case(stack: Stack, scenario: Scenario) -> None:
    found = as_json(stack, "timeline", scenario.case_number)["matters"]
    assert {m["delegation"] for m in found} == {scenario.done, scenario.late}
    by_case_name = as_json(stack, "timeline", scenario.case_name)["matters"]
    assert {m["delegation"] for m in by_case_name} == {scenario.done, scenario.late}


def test_timeline_by_bare_id_and_of_a_late_matter(stack: Stack, scenario: Scenario) -> None:
    [matter] = as_json(stack, "timeline", scenario.late.rsplit("/", 1)[1])["matters"]
    assert matter["delegation"] == scenario.late
    overdue = [e for e in matter["entries"] if e["action"] == "OVERDUE"]
    assert overdue and overdue[0]["overdue"] and overdue[0]["deadline_step"] == "ACKNOWLEDGE" and overdue[0]["actor_court"] == ""
    assert not matter["entries"][0]["overdue"]  # SUBMIT


def test_timeline_tables_in_english_and_chinese(stack: Stack, scenario: Scenario) -> None:
    english = admin(stack, "timeline", scenario.done).stdout
    trace_id = as_json(stack, "timeline", scenario.done)["matters"][0]["trace_ids"][0]
    assert "Timeline of " + scenario.done in english
    assert all(word in english for word in ("Acknowledged", "Completed", "Working days", "Trace id", trace_id))
    assert f"http://localhost:16686/trace/{trace_id}" in english
    chinese = admin(stack, "timeline", scenario.late, "--lang", "zh").stdout
    assert all(word in chinese for word in ("办理时间线", "发起委托", "超期", "系统", "中牟县人民法院", "追踪 ID"))


def test_unknown_matter_and_bad_case_number(stack: Stack, scenario: Scenario) -> None:
    missing = admin(stack, "timeline", "courts/gd0112/delegations/nope", check=False)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
    bad = admin(stack, "timeline", "（2023）粤9999执1号", check=False)
    assert bad.returncode == 2 and "case_number" in bad.stderr


def test_overdue_includes_subordinate_courts(stack: Stack, scenario: Scenario) -> None:
    at = scenario.scanned_at.isoformat()
    superior = as_json(stack, "overdue", "--court", "ha01", "--at", at)  # 郑州市中级人民法院 supervises 中牟县
    [row] = [r for r in superior["delegations"] if r["delegation"] == scenario.late]
    assert row["entrusted_court"] == "courts/ha0122" and row["step"] == "ACKNOWLEDGE" and row["urge_count"] >= 1
    assert 1 <= row["days_overdue"] <= 10
    assert scenario.done not in {r["delegation"] for r in superior["delegations"]}
    only_own = as_json(stack, "overdue", "--court", "ha01", "--only-this-court", "--at", at)
    assert scenario.late not in {r["delegation"] for r in only_own["delegations"]}
    table = admin(stack, "overdue", "--court", "ha01", "--at", at).stdout
    assert scenario.late in table and "Days overdue" in table and "中牟县人民法院 (ha0122)" in table


def test_overdue_follows_the_credential(stack: Stack, scenario: Scenario) -> None:
    as_superior = as_json(stack, "overdue", "--court", "ha01", credential="court:ha01")
    assert scenario.late in {r["delegation"] for r in as_superior["delegations"]}
    bystander = admin(stack, "overdue", "--court", "ha01", credential="court:zj0326", check=False)
    assert bystander.returncode == 1 and "PERMISSION_DENIED" in bystander.stderr


def test_stats_grouped_and_filtered(stack: Stack, scenario: Scenario) -> None:
    answer = as_json(stack, "stats", "-g", "entrusted_court", "-g", "matter_kind", "--cross-province", "--distribution")
    assert answer["group_by"] == ["entrusted_court", "matter_kind"] and answer["filter"] == "cross_province = true"
    [group] = [g for g in answer["groups"] if g["key"] == {"entrusted_court": "courts/ha0122", "matter_kind": "DEPOSITS"}]
    assert group["count"] >= 2 and group["complete_count"] >= 1 and group["overdue_count"] >= 1
    assert sum(b["count"] for b in group["complete_distribution"]) == group["complete_count"]
    assert group["complete_distribution"][0]["lower_days"] == 0  # same day: under 22.5 minutes

    none = as_json(stack, "stats", "--court", "ha0122", "--requesting-court", "gd0112", "--in-province")
    assert none["groups"][0]["count"] == 0  # Guangdong → Henan is cross-province

    table = admin(stack, "stats", "-g", "entrusted_court", "--court", "ha0122", "--lang", "zh", "--distribution").stdout
    assert all(
        word in table for word in ("办理时效统计", "受托法院", "中牟县人民法院 (ha0122)", "按期办结率", "办结用时分布", "<1天")
    )
    bad = admin(stack, "stats", "--month", "November", check=False)
    assert bad.returncode == 2 and "month" in bad.stderr


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    return list(reader.fieldnames or ()), list(reader)


def test_csv_of_every_listing(stack: Stack, scenario: Scenario) -> None:
    header, steps = read_csv(admin(stack, "timeline", scenario.case_number, "--csv").stdout)
    assert header == list(views.TIMELINE_FIELDS)
    assert {r["delegation"] for r in steps} == {scenario.done, scenario.late}
    assert [r["action"] for r in steps if r["delegation"] == scenario.done] == ["SUBMIT", "ACKNOWLEDGE", "START", "COMPLETE"]
    assert all(TRACE_ID.match(r["trace_id"]) and r["case"] == scenario.case_name for r in steps)

    at = scenario.scanned_at.isoformat()
    header, late = read_csv(admin(stack, "overdue", "--court", "ha01", "--at", at, "--csv").stdout)
    assert header == list(views.OVERDUE_FIELDS)
    [row] = [r for r in late if r["delegation"] == scenario.late]
    assert row["step"] == "ACKNOWLEDGE" and row["entrusted_court"] == "courts/ha0122" and row["escalated"] in ("true", "false")

    header, groups = read_csv(
        admin(stack, "stats", "-g", "entrusted_court", "--court", "ha0122", "--distribution", "--csv").stdout
    )
    assert header == list(views.stats_fields(["entrusted_court"], True))
    [group] = groups
    assert group["entrusted_court"] == "courts/ha0122" and int(group["count"]) >= 2 and int(group["completed_0_1_days"]) >= 1


def test_piped_tables_keep_every_column(stack: Stack, scenario: Scenario) -> None:
    """The in-process runner's stdout is no terminal, like a pipe: no column is cut."""
    table = admin(stack, "overdue", "--court", "ha01", "--at", scenario.scanned_at.isoformat()).stdout
    header = next(line for line in table.splitlines() if "Matter" in line)
    assert all(title in header for title in ("Days overdue", "Urges", "Escalated")) and "…" not in table
    line = next(line for line in table.splitlines() if scenario.late in line)
    assert "中牟县人民法院 (ha0122)" in line and "广州市黄埔区人民法院 (gd0112)" in line
    stats = admin(stack, "stats", "-g", "entrusted_court", "-g", "requesting_court", "-g", "matter_kind").stdout
    assert all(title in stats for title in ("Completed on time", "Open & overdue now", "Return rate")) and "…" not in stats


async def test_open_and_overdue_now_counts_the_late_matter_apart_from_completed_on_time(stack: Stack, scenario: Scenario) -> None:
    """The completed matter is on time, the late one is open and overdue: each figure says
    which matters it counts, so the two do not contradict (issue 17, point 6)."""
    async with AdminClient(stack.address("delegation")) as client:
        for _ in range(100):  # the overdue event reaches the read model after the scan
            figures = await client.statistics('entrusted_court = "courts/ha0122" AND requesting_court = "courts/gd0112"')
            if figures.groups[0].open_overdue_count >= 1:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the read model never counted the late matter as open and overdue")
    [row] = json.loads(admin(stack, "stats", "--court", "ha0122", "--requesting-court", "gd0112", "--json").stdout)["groups"]
    assert row["open_overdue_count"] >= 1 and row["overdue_count"] >= row["open_overdue_count"]
    assert row["complete_count"] >= 1 and 0 < row["on_time_rate"] <= 1
    table = admin(stack, "stats", "--court", "ha0122", "--requesting-court", "gd0112").stdout
    assert "Completed on time" in table and "Open & overdue now" in table and "share of the completed matters" in table
