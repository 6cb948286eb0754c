"""What the deadline scanner does about one deadline at a given moment (pure rules).

The scanner runs on an injected clock. For each open or overdue deadline it asks
`actions_for(watch, now, policy)` and records what it did (warned_at, overdue_at,
last_urged_at, escalated_at), so a second scan at the same moment does nothing more.

- before the due time, within `warn_before`: warn once ("due soon");
- past the due time: mark overdue once, and urge the entrusted court (催办) — except for
  the SUPPLEMENT deadline, which the requesting court missed: the matter is deemed
  withdrawn (委托执行规定 art. 8);
- while overdue: urge again every `reurge_every`; once overdue for `escalate_after`,
  escalate to the entrusted court's superior court (督办; CPL art. 240 lets the requesting
  court ask the superior court to order the entrusted court to act).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from delegation.deadlines import Step


class ScanAction(StrEnum):
    WARN_DUE_SOON = "WARN_DUE_SOON"
    MARK_OVERDUE = "MARK_OVERDUE"
    URGE = "URGE"
    ESCALATE = "ESCALATE"
    DEEM_WITHDRAWN = "DEEM_WITHDRAWN"


class WatchStatus(StrEnum):
    OPEN = "OPEN"
    OVERDUE = "OVERDUE"


@dataclass(frozen=True)
class SupervisionPolicy:
    """Configurable per deployment; the defaults are Rogatory's, not statute (except where noted)."""

    warn_before: timedelta = timedelta(days=2)
    reurge_every: timedelta = timedelta(days=7)
    # CPL art. 240 gives the entrusted court 15 days to act before the requesting court may
    # turn to its superior court; we escalate a matter overdue that long.
    escalate_after: timedelta = timedelta(days=15)

    def __post_init__(self) -> None:
        for name in ("warn_before", "reurge_every", "escalate_after"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True)
class DeadlineWatch:
    """What the scanner knows of one deadline."""

    step: Step
    due: datetime
    status: WatchStatus
    warned_at: datetime | None = None
    overdue_at: datetime | None = None
    last_urged_at: datetime | None = None
    escalated_at: datetime | None = None


def actions_for(watch: DeadlineWatch, now: datetime, policy: SupervisionPolicy) -> list[ScanAction]:
    if watch.status is WatchStatus.OPEN:
        return _open_deadline(watch, now, policy)
    return _overdue_deadline(watch, now, policy)


def _open_deadline(watch: DeadlineWatch, now: datetime, policy: SupervisionPolicy) -> list[ScanAction]:
    if now <= watch.due:
        due_soon = now >= watch.due - policy.warn_before
        return [ScanAction.WARN_DUE_SOON] if due_soon and watch.warned_at is None else []
    if watch.step is Step.SUPPLEMENT:
        return [ScanAction.MARK_OVERDUE, ScanAction.DEEM_WITHDRAWN]
    actions = [ScanAction.MARK_OVERDUE, ScanAction.URGE]
    if now - watch.due >= policy.escalate_after:
        actions.append(ScanAction.ESCALATE)  # the scanner was down for a while: catch up at once
    return actions


def _overdue_deadline(watch: DeadlineWatch, now: datetime, policy: SupervisionPolicy) -> list[ScanAction]:
    if watch.step is Step.SUPPLEMENT:
        return []  # deemed withdrawn when it went overdue; nothing more to do
    actions: list[ScanAction] = []
    if watch.last_urged_at is None or now - watch.last_urged_at >= policy.reurge_every:
        actions.append(ScanAction.URGE)
    if watch.escalated_at is None and now - watch.due >= policy.escalate_after:
        actions.append(ScanAction.ESCALATE)
    return actions
