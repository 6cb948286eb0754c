"""How `make test` spreads the suite over pytest-xdist workers (`-n 2`).

Each module's tests run on one worker, in their order: module-scoped fixtures (a scenario
built on the shared stack, a stack of the module's own) are built once, as in a serial
run, and each worker keeps its own shared stacks (tests/e2e/conftest.py). Modules are
handed out heaviest first, so that no long module starts last while the other worker
idles: a module's weight is what it took on this machine (`MEASURED`, for the modules
that take longest), else an estimate from its folder and its number of tests. A stale
figure only changes the order, never what runs.
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

# Seconds a test takes, by folder (a whole run over the number of tests).
SECONDS_PER_TEST = {"tests/e2e": 1.0, "tests/integration": 0.2, "tests/property": 1.0, "tests/unit": 0.02}

# Seconds the slowest modules took on one worker of this machine, loaded (`make test` with
# `--durations=0`, summed per module); only their order matters.
MEASURED = {
    "tests/integration/test_audit_log.py": 98,
    "tests/e2e/test_faults.py": 97,
    "tests/e2e/test_admin_report_e2e.py": 81,
    "tests/property/test_rpc_properties.py": 74,
    "tests/integration/test_consumer_inbox.py": 58,
    "tests/integration/test_database_outage.py": 49,
    "tests/integration/test_deadline_calculator_agreement.py": 46,
    "tests/integration/test_nats_permissions.py": 34,
    "tests/e2e/test_input_validation_e2e.py": 33,
    "tests/e2e/test_launcher_e2e.py": 32,
    "tests/property/test_details_properties.py": 32,
    "tests/e2e/test_property_query_e2e.py": 30,
    "tests/integration/test_delegation_lifecycle_store.py": 25,
    "tests/integration/test_property_query_store.py": 23,
    "tests/unit/test_layers.py": 23,
    "tests/e2e/test_demo_e2e.py": 22,
    "tests/e2e/test_vehicle_control_e2e.py": 21,
}


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def weight(module: str, tests: int) -> float:
    if module in MEASURED:
        return MEASURED[module]
    folder = module.rsplit("/", 1)[0]
    return SECONDS_PER_TEST.get(folder, 0.1) * tests


class HeaviestModulesFirst(LoadScopeScheduling):
    """pytest-xdist's scope scheduling with a module as the scope, heaviest modules first."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        self._ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return module_of(nodeid)

    def _assign_work_unit(self, node: WorkerController) -> None:
        if not self._ordered:  # the queue is complete once the first unit is handed out
            by_weight = sorted(self.workqueue.items(), key=lambda unit: -weight(unit[0], len(unit[1])))
            self.workqueue = OrderedDict(by_weight)
            self._ordered = True
        super()._assign_work_unit(node)
