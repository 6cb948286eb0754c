"""A small, strict subset of AIP-160 filters: `field = value` terms joined by AND.

Values are double-quoted strings, integers (ASCII digits) or bare enum names. A number
must lie in its field's range (`IntRange`: the column's and the domain's, int64 at most), so
none reaches SQL as an overflow. Anything else is an INVALID_ARGUMENT `BAD_FILTER` on
`filter` that says what is accepted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import NoReturn, TypeVar

from registry.errors import FieldViolation, InvalidArgument

E = TypeVar("E", bound=StrEnum)
MAX_FILTER_LENGTH = 1000
_TERM = re.compile(r'\s*([a-z_][a-z0-9_]*)\s*(=|:)\s*("(?:[^"\\]|\\.)*"|-?[0-9]+|[A-Z][A-Z0-9_]*)\s*')
_INTEGER = re.compile(r"-?[0-9]{1,20}")


@dataclass(frozen=True)
class IntRange:
    """The integers a filter field takes, both ends included."""

    low: int
    high: int


INT64 = IntRange(-(2**63), 2**63 - 1)  # what `int` means: the widest column a number can meet


def parse_filter(text: str, allowed: Mapping[str, type | IntRange]) -> dict[str, str | int]:
    """Parses `text` into {field: value}; `allowed` maps each field to str, int (int64) or an IntRange."""
    if not text.strip():
        return {}
    if len(text) > MAX_FILTER_LENGTH:
        _fail(f"at most {MAX_FILTER_LENGTH} characters")
    result: dict[str, str | int] = {}
    for term in re.split(r"\s+AND\s+", text.strip()):
        match = _TERM.fullmatch(term)
        if not match:
            _fail(f'cannot parse {term!r}; use field = "value" terms joined by AND over {", ".join(allowed)}')
        field, _op, raw = match.groups()
        if field not in allowed:
            _fail(f"unknown field {field!r}; filterable fields are {', '.join(allowed)}")
        if field in result:
            _fail(f"field {field!r} given twice")
        result[field] = _value(field, raw, allowed[field])
    return result


def _value(field: str, raw: str, kind: type | IntRange) -> str | int:
    text = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
    if kind is str:
        return text
    bounds = INT64 if kind is int else kind
    assert isinstance(bounds, IntRange), f"filter field {field}: str, int or IntRange"
    if not _INTEGER.fullmatch(text) or not bounds.low <= int(text) <= bounds.high:
        _fail(f"{field} takes a whole number from {bounds.low} to {bounds.high}")
    return int(text)


def _fail(description: str) -> NoReturn:
    raise InvalidArgument.of([FieldViolation("filter", description, "BAD_FILTER")])


def enum_term(kind: type[E], terms: dict[str, str | int], field: str) -> E | None:
    """The filter term `field` as a member of `kind`; None when absent, BAD_FILTER when no member."""
    if field not in terms:
        return None
    try:
        return kind(str(terms[field]))
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise InvalidArgument.of([FieldViolation("filter", f"{field} must be one of {allowed}", "BAD_FILTER")]) from None
