"""A court acting on one of its enforcement cases: the checks every court command starts with.

Shared by delegations and assistance notices (and later the vehicle watch list): a court
names itself as `courts/{court}`, names one of its cases as `courts/{court}/cases/{case}`,
and may act only on a case the registry has registered for it. The rule is about cases,
so it lives in the registry package beside `registry.cases`.
"""

from __future__ import annotations

from registry.courts import CourtCatalog
from registry.errors import FailedPrecondition, PermissionDenied, Violations


def court_id_of(name: str, field: str, courts: CourtCatalog, violations: Violations) -> str | None:
    """The id of a known court named `courts/{court}`, or None after recording why not."""
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "courts" or not parts[1]:
        violations.add(field, f"must be a court resource name, courts/{{court}}, got {name!r}", "RESOURCE_NAME")
        return None
    if courts.get(parts[1]) is None:
        violations.add(field, f"unknown court {name!r}", "UNKNOWN_COURT")
        return None
    return parts[1]


def court_of_case_name(name: str) -> str | None:
    """`courts/gd0112/cases/2020-enf-1` → "gd0112"; None when the name is not a case name."""
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "courts" or parts[2] != "cases" or not parts[1] or not parts[3]:
        return None
    return parts[1]


def check_case_name(name: str, field: str, violations: Violations) -> None:
    if court_of_case_name(name) is None:
        violations.add(field, f"must be a case resource name, courts/{{court}}/cases/{{case}}, got {name!r}", "RESOURCE_NAME")


def check_case_access(court_id: str, case_name: str, case_court_id: str | None) -> None:
    """Raises unless `case_name` is a registered case of `court_id`.

    `case_court_id` is the owning court as the service's case replica knows it, None when the
    replica has not seen the case (yet: replication is asynchronous, so a retry may succeed).
    Ownership is judged first, from the name when the replica does not know the case, so a
    court probing another court's case names cannot learn which of them exist.
    """
    owner = case_court_id or court_of_case_name(case_name)
    if owner != court_id:
        raise PermissionDenied(
            f"{case_name} is not a case of courts/{court_id}",
            reason="NOT_CASE_OWNER",
            metadata={"case": case_name, "court": f"courts/{court_id}"},
        )
    if case_court_id is None:
        raise FailedPrecondition(
            f"case {case_name} is not registered, or its registration has not reached this service yet; retry shortly",
            reason="CASE_NOT_REGISTERED",
            metadata={"case": case_name},
        )
