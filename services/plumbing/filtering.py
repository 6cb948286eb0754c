"""A small, strict subset of AIP-160 filters: `field = value` terms joined by AND.

Values are double-quoted strings, integers or bare enum names. Anything else is an
INVALID_ARGUMENT on `filter` that says what is accepted.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import TypeVar

from registry.errors import FieldViolation, InvalidArgument

E = TypeVar("E", bound=StrEnum)
MAX_FILTER_LENGTH = 1000
_TERM = re.compile(r'\s*([a-z_][a-z0-9_]*)\s*(=|:)\s*("(?:[^"\\]|\\.)*"|-?\d+|[A-Z][A-Z0-9_]*)\s*')


def parse_filter(text: str, allowed: dict[str, type]) -> dict[str, str | int]:
    """Parses `text` into {field: value}; `allowed` maps each field to str or int."""
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


def _value(field: str, raw: str, kind: type) -> str | int:
    if raw.startswith('"'):
        value: str | int = re.sub(r"\\(.)", r"\1", raw[1:-1])
    elif raw.lstrip("-").isdigit():
        value = int(raw)
    else:
        value = raw
    if kind is int:
        try:
            return int(value)
        except ValueError:
            _fail(f"{field} takes a number")
    return str(value)


def _fail(description: str) -> None:
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
