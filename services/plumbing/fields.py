"""Request and resource fields every service reads or writes the same way: protobuf enum
values handed to the domain by name, and AIP-154 etags (`W/"<version>"`)."""

from __future__ import annotations

import re
from typing import Any

from registry.errors import FieldViolation, InvalidArgument

_ETAG = re.compile(r'(?:W/)?"([0-9]{1,18})"')


def enum_name(enum: Any, value: int) -> str:
    """The value's name, "" for 0, or the number as text so validation can reject it."""
    if value == 0:
        return ""
    try:
        return str(enum.Name(value))
    except ValueError:
        return str(value)


def etag_of(version: int) -> str:
    return f'W/"{version}"'


def parse_etag(etag: str) -> int | None:
    """`W/"7"` (or `"7"`) → 7; "" → None (AIP-154: the etag is optional)."""
    if not etag:
        return None
    match = _ETAG.fullmatch(etag.strip())
    if not match:
        raise InvalidArgument.of([FieldViolation("etag", f'not an etag of this service, e.g. W/"3"; got {etag!r}', "BAD_ETAG")])
    return int(match.group(1))
