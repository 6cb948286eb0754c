"""Field rules as data: what each field of a matter's details must hold, in one table per kind.

The same table does two jobs, so they cannot disagree: `check_fields` validates a details
object against it (every violation at once), and the form a court system builds its screens
from (`delegation.forms`, GetMatterKind) is read from it — which fields are required,
optional or required only in some case, which values an enum field takes, lengths, formats
and the cases in which a field does not apply at all.

Pure domain: stdlib and the registry's text and enum rules only.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from registry.errors import Violations, parse_enum
from registry.text import check_text

#: Amounts are fen in a signed 64-bit column; anything near it is a typo, not a debt.
MAX_AMOUNT_FEN = 10**17 - 1
MAX_LIST_ITEMS = 50
MAX_PERCENT_PLACES = 6

_MOBILE = re.compile(r"(?:\+?86)?1[3-9][0-9]{9}")
_LANDLINE = re.compile(r"(?:\+?86)?0[1-9][0-9]{1,2}-?[0-9]{7,8}(?:-[0-9]{1,6})?")


class ValueType(StrEnum):
    """What a field holds, and so which checks it gets."""

    TEXT = "TEXT"  # free text: the text rule, presence, max_length, then any format
    CODE = "CODE"  # a number or code (account, credit code, plate…): presence, then its formats
    ENUM = "ENUM"  # one of `values`, by name
    ENUM_LIST = "ENUM_LIST"  # several of `values`, each at most once
    TEXT_LIST = "TEXT_LIST"  # 1 … MAX_LIST_ITEMS texts of at most max_length each
    AMOUNT_FEN = "AMOUNT_FEN"  # whole fen (0.01 元), 1 … MAX_AMOUNT_FEN
    PERCENT = "PERCENT"  # more than 0, at most 100, at most MAX_PERCENT_PLACES decimal places
    PHONE = "PHONE"  # a mainland mobile number or a landline with area code


class Requirement(StrEnum):
    REQUIRED = "REQUIRED"  # always (where the field applies)
    OPTIONAL = "OPTIONAL"
    CONDITIONAL = "CONDITIONAL"  # only when `required_when` holds, or one field of its `one_of` group


@dataclass(frozen=True)
class When:
    """A condition on another field of the same details: it holds one of `values` (for a list: contains one)."""

    field: str
    values: frozenset[str]

    def holds(self, details: object) -> bool:
        value = getattr(details, self.field)
        given = value if isinstance(value, tuple) else (value,)
        return any(str(item) in self.values for item in given)

    def decided(self, details: object, kind: type[StrEnum]) -> bool:
        """Whether the condition can be judged: the field it looks at holds known values."""
        value = getattr(details, self.field)
        known = {member.value for member in kind}
        return all(str(item) in known for item in (value if isinstance(value, tuple) else (value,)))


def when(field: str, *values: StrEnum | str) -> When:
    return When(field, frozenset(str(v) for v in values))


@dataclass(frozen=True)
class Format:
    """A pattern a non-empty value must match; `only_when`: the format applies in that case alone."""

    name: str
    description: str
    reason: str
    matches: Callable[[str], bool]
    only_when: When | None = None


def pattern(regex: str) -> Callable[[str], bool]:
    compiled = re.compile(regex)
    return lambda value: compiled.fullmatch(value) is not None


@dataclass(frozen=True)
class FieldRule:
    """One field of a details type: its name (the dataclass's and the protobuf message's) and its rules.

    `applies_when`: the field may be given only then (NOT_APPLICABLE otherwise); `required`
    and `required_when` hold where it applies. `one_of`: the fields sharing that group name
    are optional one by one, but at least one must be given (reported on the group's first
    field with `missing`).
    """

    name: str
    value_type: ValueType
    label: str
    required: bool = True
    required_when: When | None = None
    one_of: str = ""
    missing: str = "required"
    applies_when: When | None = None
    values: type[StrEnum] | None = None
    max_length: int = 0
    formats: tuple[Format, ...] = ()

    @property
    def requirement(self) -> Requirement:
        if self.one_of or (self.required and self.required_when is not None):
            return Requirement.CONDITIONAL
        return Requirement.REQUIRED if self.required else Requirement.OPTIONAL

    @property
    def max_items(self) -> int:
        if self.value_type is ValueType.ENUM_LIST and self.values is not None:
            return len(self.values)
        return MAX_LIST_ITEMS if self.value_type is ValueType.TEXT_LIST else 0


def check_fields(details: object, rules: Iterable[FieldRule], path: str, violations: Violations) -> None:
    """Every rule of `rules` on `details`, each violation at `path`.field.

    Fields that depend on another field (`applies_when`, `required_when`, `only_when`) are
    judged only once that field holds a known value; its own violation says what is wrong.
    """
    rules = tuple(rules)
    enums: dict[str, type[StrEnum]] = {rule.name: rule.values for rule in rules if rule.values is not None}
    for rule in rules:
        value = getattr(details, rule.name)
        where = f"{path}.{rule.name}"
        if rule.applies_when is not None:
            if not rule.applies_when.decided(details, enums[rule.applies_when.field]):
                continue
            if not rule.applies_when.holds(details):
                if _given(value):
                    violations.add(where, f"does not apply to {getattr(details, rule.applies_when.field)}", "NOT_APPLICABLE")
                continue
        required = rule.required and not rule.one_of
        if required and rule.required_when is not None:
            required = rule.required_when.holds(details)
        _check_value(rule, value, where, violations, required=required, details=details)
    for group in dict.fromkeys(rule.one_of for rule in rules if rule.one_of):
        members = [rule for rule in rules if rule.one_of == group and _applies(rule, details, enums)]
        if members and not any(_given(getattr(details, rule.name)) for rule in members):
            violations.add(f"{path}.{members[0].name}", members[0].missing, "REQUIRED")


def _applies(rule: FieldRule, details: object, enums: dict[str, type[StrEnum]]) -> bool:
    condition = rule.applies_when
    if condition is None:
        return True
    return condition.decided(details, enums[condition.field]) and condition.holds(details)


def _given(value: Any) -> bool:
    return value is not None and value != "" and value != ()


def _check_value(rule: FieldRule, value: Any, where: str, violations: Violations, *, required: bool, details: object) -> None:
    before = len(violations.items)
    if rule.value_type is ValueType.TEXT:
        check_text(value, where, violations, max_length=rule.max_length, required=required)
    elif rule.value_type is ValueType.CODE:
        if not value and required:
            violations.add(where, "required", "REQUIRED")
    elif rule.value_type is ValueType.ENUM:
        assert rule.values is not None
        parse_enum(rule.values, str(value), where, violations)
    elif rule.value_type is ValueType.ENUM_LIST:
        _check_enum_list(rule, value, where, violations)
    elif rule.value_type is ValueType.TEXT_LIST:
        check_text_list(value, where, violations, max_length=rule.max_length)
    elif rule.value_type is ValueType.AMOUNT_FEN:
        check_amount(value, where, violations, required=required)
    elif rule.value_type is ValueType.PERCENT:
        _check_percent(value, where, violations)
    elif rule.value_type is ValueType.PHONE:
        check_phone(value, where, violations, required=required)
    if value and len(violations.items) == before:
        for fmt in rule.formats:
            if (fmt.only_when is None or fmt.only_when.holds(details)) and not fmt.matches(value):
                violations.add(where, fmt.description, fmt.reason)
                break


def check_amount(value: int | None, path: str, violations: Violations, *, required: bool) -> None:
    """Amounts are whole fen (0.01 元), positive and plausible."""
    if value is None:
        if required:
            violations.add(path, "required", "REQUIRED")
    elif value <= 0:
        violations.add(path, "must be a positive number of fen", "NOT_POSITIVE")
    elif value > MAX_AMOUNT_FEN:
        violations.add(path, "implausibly large", "TOO_LARGE")


def normalize_phone(value: str) -> str:
    return re.sub(r"[\s()（）]", "", value)


def check_phone(value: str, path: str, violations: Violations, *, required: bool = True) -> None:
    """A mainland mobile number (13812345678) or a landline with area code (0577-12345678[-123])."""
    if not value:
        if required:
            violations.add(path, "required", "REQUIRED")
    elif not (_MOBILE.fullmatch(value) or _LANDLINE.fullmatch(value)):
        violations.add(path, "not a mainland mobile number or a landline with area code", "BAD_PHONE")


def check_text_list(items: tuple[str, ...], path: str, violations: Violations, *, max_length: int) -> None:
    if not items:
        violations.add(path, "at least one item is required", "REQUIRED")
    elif len(items) > MAX_LIST_ITEMS:
        violations.add(path, f"at most {MAX_LIST_ITEMS} items", "TOO_MANY")
    else:
        for i, item in enumerate(items):
            check_text(item, f"{path}[{i}]", violations, max_length=max_length)


def _check_enum_list(rule: FieldRule, items: tuple[StrEnum | str, ...], path: str, violations: Violations) -> None:
    assert rule.values is not None
    if not items:
        violations.add(path, f"name at least one {rule.label}", "REQUIRED")
    if len(items) > rule.max_items:  # more than every value once: one violation, not one per item
        violations.add(path, f"at most {rule.max_items} values, each once", "TOO_MANY")
        return
    for i, item in enumerate(items):
        parse_enum(rule.values, str(item), f"{path}[{i}]", violations)
    if len(set(items)) < len(items):
        violations.add(path, "each value at most once", "DUPLICATE")


def _check_percent(value: Decimal | None, path: str, violations: Violations) -> None:
    if value is None:
        return
    if not Decimal(0) < value <= Decimal(100):
        violations.add(path, "must be more than 0 and at most 100", "BAD_PERCENT")
    elif _decimal_places(value) > MAX_PERCENT_PLACES:
        # 1e-5000000 is in range, but written out it is megabytes in the row, the event and every answer.
        violations.add(path, f"at most {MAX_PERCENT_PLACES} decimal places", "BAD_PERCENT")


def _decimal_places(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0
