"""Closing a case (registry/cases.py `close_case`): who, how, etag, once."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry.cases import CaseClosure, CaseState, CloseCase, CloseOutcome, close_case
from registry.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied

NOW = datetime(2026, 11, 27, 9, tzinfo=UTC)
NAME = "courts/zj0326/cases/2023-enf-1234"


def close(command: CloseCase, *, caller: str = "zj0326", state: CaseState = CaseState.OPEN, version: int = 1) -> CaseClosure:
    return close_case(NAME, "zj0326", state, version, caller, command, NOW)


def test_the_owning_court_closes_with_an_outcome() -> None:
    assert close(CloseCase("EXECUTED_IN_FULL", "  已全部履行 ")) == CaseClosure(CloseOutcome.EXECUTED_IN_FULL, "已全部履行", NOW)
    assert close(CloseCase("TERMINATED_THIS_ROUND", expected_version=3), version=3).outcome is CloseOutcome.TERMINATED_THIS_ROUND


def test_refusals_in_order() -> None:
    with pytest.raises(PermissionDenied) as denied:
        close(CloseCase(""), caller="zj03")  # another court learns nothing about its arguments
    assert denied.value.reason == "NOT_CASE_OWNER"
    with pytest.raises(InvalidArgument) as invalid:
        close(CloseCase("", "x" * 2001))
    assert {(v.field, v.reason) for v in invalid.value.violations} == {("outcome", "REQUIRED"), ("reason", "TOO_LONG")}
    with pytest.raises(Aborted):
        close(CloseCase("WITHDRAWN", expected_version=1), version=2, state=CaseState.CLOSED)  # stale etag first
    with pytest.raises(FailedPrecondition) as closed:
        close(CloseCase("WITHDRAWN"), state=CaseState.CLOSED)
    assert closed.value.reason == "CASE_ALREADY_CLOSED"
