"""AIP-122 resource names: parsing `collection/{id}/…` patterns with field-level errors."""

from __future__ import annotations

import re

from registry.errors import FieldViolation, InvalidArgument

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def parse_name(name: str, pattern: str, field: str = "name") -> dict[str, str]:
    """parse_name("courts/zj0326", "courts/{court}") → {"court": "zj0326"}."""
    parts, expected = name.split("/"), pattern.split("/")
    if len(parts) == len(expected):
        values: dict[str, str] = {}
        for part, want in zip(parts, expected, strict=True):
            if want.startswith("{"):
                if not (_ID.match(part) or part == "-"):
                    break
                values[want[1:-1]] = part
            elif part != want:
                break
        else:
            return values
    raise InvalidArgument.of([FieldViolation(field, f"must look like {pattern}, got {name!r}", "RESOURCE_NAME")])


def parse_parent(parent: str) -> str:
    """The one court a `parent` names where the `-` wildcard makes no sense (every Create
    method): `courts/{court}`; INVALID_ARGUMENT on `parent` otherwise, a missing one included."""
    court_id = parse_name(parent, "courts/{court}", "parent")["court"]
    if court_id == "-":
        raise InvalidArgument.of(
            [FieldViolation("parent", "name one court; '-' (any court) is not accepted here", "RESOURCE_NAME")]
        )
    return court_id
