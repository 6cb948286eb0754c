"""The deployment's page-token key (issue 15 point 10): from ROGATORY_PAGE_TOKEN_KEY, or generated
once into the data directory and shared by every process started on it."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from services.plumbing.config import PAGE_TOKEN_KEY_FILE, Settings


def settings(data_dir: Path, key: str = "") -> Settings:
    return Settings(ROGATORY_DATA_DIR=data_dir, ROGATORY_PAGE_TOKEN_KEY=key)  # type: ignore[call-arg]


def test_i15_p10_the_generated_key_survives_restarts_and_is_private(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"  # not there yet: made on first start
    first = settings(data_dir).page_token_secret()
    assert len(first) >= 32
    assert settings(data_dir).page_token_secret() == first  # the next start reads it back
    key_file = data_dir / PAGE_TOKEN_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in data_dir.iterdir()] == [PAGE_TOKEN_KEY_FILE]  # no candidate left behind
    assert settings(tmp_path / "elsewhere").page_token_secret() != first


def test_i15_p10_processes_starting_together_agree_on_one_key(tmp_path: Path) -> None:
    barrier, keys = threading.Barrier(8), []

    def start() -> None:
        barrier.wait()
        keys.append(settings(tmp_path).page_token_secret())

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


def test_i15_p10_the_configured_key_wins_and_must_be_long_enough(tmp_path: Path) -> None:
    assert settings(tmp_path, "s" * 32).page_token_secret() == b"s" * 32
    assert not (tmp_path / PAGE_TOKEN_KEY_FILE).exists()
    with pytest.raises(ValueError, match="at least 32"):
        settings(tmp_path, "short").page_token_secret()
    (tmp_path / PAGE_TOKEN_KEY_FILE).write_text("short\n")
    with pytest.raises(ValueError, match="page-token key"):
        settings(tmp_path).page_token_secret()
