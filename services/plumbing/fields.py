"""Request and resource fields every service reads or writes the same way: protobuf enum
values handed to the domain by name, AIP-154 etags (`W/"<version>"`) and decimal numbers in
text (percentages).

Numbers a client writes are read in ASCII digits 0-9 only: int(), Decimal() and
str.isdigit() would also take every other script's decimal digits (٣, ３, ३), and Decimal
underscores (1_000), NaN and Infinity — numbers the client did not write as such."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from registry.errors import FieldViolation, InvalidArgument

_ETAG = re.compile(r'(?:W/)?"([0-9]{1,18})"')
#: Decimal notation: an optional sign, ASCII digits with an optional point, an optional exponent.
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


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


def parse_decimal(text: str, path: str, reason: str) -> Decimal | None:
    """`text` (spaces around it aside) as a Decimal, e.g. "12.5"; "" → None (not given).
    Anything but decimal notation in ASCII digits is InvalidArgument `reason` on `path`."""
    text = text.strip()
    if not text:
        return None
    if not _DECIMAL.fullmatch(text):
        raise InvalidArgument.of([FieldViolation(path, f"a decimal number in digits 0-9, such as 12.5; got {text!r}", reason)])
    return Decimal(text)
