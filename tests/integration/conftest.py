"""Fixtures shared by the delegation integration tests (a moved clock, handlers on a real DB)."""

from tests.integration.test_delegation_lifecycle_store import clock, handlers  # noqa: F401 - re-exported fixtures
