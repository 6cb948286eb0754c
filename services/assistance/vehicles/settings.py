"""The vehicle watch list's settings, read by its wiring (`wiring.py`) and by the one-pass
scanner command (`scanner.py`).

Configuration (environment variables; defaults and sources in assistance/vehicles.py,
`VehicleControlPolicy`):

| variable | default | meaning |
|---|---|---|
| `ROGATORY_VEHICLE_CONTROL_TERM_MONTHS` | 24 | how long a control stays on the watch list |
| `ROGATORY_VEHICLE_POST_SEIZURE_WORKING_DAYS` | 5 | seizure → listed for auction target |
| `ROGATORY_VEHICLE_SCAN_INTERVAL` | 60 | seconds between scanner passes; 0 turns it off |
| `ROGATORY_TEST_CLOCK_FILE` | unset | tests only: read "now" from this file (see `FileClock`) |
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from assistance.vehicles import VehicleControlPolicy


class VehicleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    term_months: int = Field(default=24, alias="ROGATORY_VEHICLE_CONTROL_TERM_MONTHS")
    post_seizure_working_days: int = Field(default=5, alias="ROGATORY_VEHICLE_POST_SEIZURE_WORKING_DAYS")
    scan_interval: float = Field(default=60.0, alias="ROGATORY_VEHICLE_SCAN_INTERVAL")
    test_clock_file: str = Field(default="", alias="ROGATORY_TEST_CLOCK_FILE")

    def policy(self) -> VehicleControlPolicy:
        return VehicleControlPolicy(term_months=self.term_months, post_seizure_working_days=self.post_seizure_working_days)

    def clock(self) -> Callable[[], datetime]:
        return FileClock(Path(self.test_clock_file)) if self.test_clock_file else (lambda: datetime.now(UTC))


class FileClock:
    """A clock for end-to-end tests of real processes: "now" is the ISO 8601 instant written in
    a file, so a test moves the service's time by rewriting it (like libfaketime's
    FAKETIME_TIMESTAMP_FILE). Never set in production; without the file, wall-clock time."""

    def __init__(self, path: Path):
        self.path = path

    def __call__(self) -> datetime:
        # Read on every call (tests only): a cache keyed on mtime could miss two quick rewrites.
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return datetime.now(UTC)
        return datetime.fromisoformat(text)
