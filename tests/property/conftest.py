"""Hypothesis settings for the property tests (issue 6 point 8).

Deterministic (`derandomize`) so a CI failure is reproducible, no per-example deadline (the
gRPC properties go through a database), and modest example counts so `make test` stays fast.
`HYPOTHESIS_PROFILE=thorough` runs many more examples locally.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,  # no .hypothesis/ directory in the working tree; derandomize replays anyway
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("ci"),
    max_examples=2000,
    derandomize=False,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
