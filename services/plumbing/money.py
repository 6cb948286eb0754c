"""`google.type.Money` ↔ whole fen (0.01 元): the one conversion every service uses.

A Money is validated, never normalised into another amount: `nanos` must lie within
±999,999,999 and carry the sign of `units` (google/type/money.proto), the currency is CNY
(or unset), the amount is a whole number of fen and fits the signed 64-bit columns amounts
are stored in. Each problem is a field violation with its own reason (docs/api-limits.md).
"""

from __future__ import annotations

from decimal import Decimal

from google.type import money_pb2

from registry.errors import FieldViolation, InvalidArgument

CURRENCY = "CNY"
NANOS_PER_UNIT = 1_000_000_000
NANOS_PER_FEN = 10_000_000
FEN_PER_YUAN = 100
#: Amounts are fen in a signed 64-bit column; anything near it is a typo, not a sum.
MAX_ABS_FEN = 10**17 - 1

MONEY_NANOS_RANGE = "MONEY_NANOS_RANGE"
MONEY_SIGN = "MONEY_SIGN"


def yuan_of(money: money_pb2.Money, field: str) -> Decimal:
    """The exact amount in yuan; INVALID_ARGUMENT when `nanos` is out of range or of the other sign."""
    problems = _structure(money, field)
    if problems:
        raise InvalidArgument.of(problems)
    return Decimal(_nanos(money)).scaleb(-9)  # exact: no rounding to the context's precision


def fen_of(money: money_pb2.Money, field: str) -> int:
    """The amount in whole fen: `yuan_of`'s checks, then currency, precision and magnitude."""
    problems = _structure(money, field)
    if money.currency_code not in ("", CURRENCY):
        problems.append(FieldViolation(f"{field}.currency_code", f"must be {CURRENCY}", "CURRENCY"))
    if problems:
        raise InvalidArgument.of(problems)
    fen, rest = divmod(_nanos(money), NANOS_PER_FEN)  # integers: exact whatever the magnitude
    if rest:
        raise InvalidArgument.of([FieldViolation(field, "must be a whole number of fen (0.01 元)", "PRECISION")])
    if abs(fen) > MAX_ABS_FEN:
        raise InvalidArgument.of([FieldViolation(field, f"at most {MAX_ABS_FEN:,} fen", "TOO_LARGE")])
    return fen


def money_from_fen(fen: int) -> money_pb2.Money:
    """`units` and `nanos` of the same sign, as google.type.Money requires (-150 fen: -1 元, -0.5 元)."""
    sign = -1 if fen < 0 else 1
    units, rest = divmod(abs(fen), FEN_PER_YUAN)
    return money_pb2.Money(currency_code=CURRENCY, units=sign * units, nanos=sign * rest * NANOS_PER_FEN)


def _structure(money: money_pb2.Money, field: str) -> list[FieldViolation]:
    if not -NANOS_PER_UNIT < money.nanos < NANOS_PER_UNIT:
        return [FieldViolation(field, "nanos must be between -999,999,999 and 999,999,999", MONEY_NANOS_RANGE)]
    if (money.units > 0 and money.nanos < 0) or (money.units < 0 and money.nanos > 0):
        return [FieldViolation(field, "units and nanos must have the same sign", MONEY_SIGN)]
    return []


def _nanos(money: money_pb2.Money) -> int:
    return money.units * NANOS_PER_UNIT + money.nanos
