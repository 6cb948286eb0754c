"""Vehicle identifiers: Chinese number plates (GA 36-2018) and VINs (GB 16735 / ISO 3779).

A watch-list entry must name the vehicle exactly, because traffic police match it against
what their cameras and patrols read: a malformed plate or a mistyped VIN would never match
and the control would silently do nothing. So both are validated and normalised here.

Plates (GA 36-2018 机动车号牌):
- first character: a province-level abbreviation (plates use 蒙 for Inner Mongolia and 贵 for
  Guizhou, unlike court codes);
- second: the issuing authority's letter (A–Z without I and O);
- then five characters of digits and letters (no I, O), or four followed by a use
  character (挂 trailer, 学 learner, 警 police, 港/澳 cross-border, 领 consular);
- new-energy plates have six characters after the authority letter (eight in all):
  small vehicles `[DABCEFGHJK][A-HJ-NP-Z0-9]dddd`, large ones `ddddd[DABCEFGHJK]`
  (D/A/B/C/E battery-electric, F/G/H/J/K other new energy; the letters beyond D and F were
  added in 2022).
Written forms with a separator (`浙C·12345`, `浙C-12345`, spaces) and lowercase letters are
normalised to `浙C12345`.

VINs: 17 characters without I, O and Q; GB 16735 makes the 9th character a check digit for
every vehicle sold in China (computed as in ISO 3779 / 49 CFR 565). python-stdnum (2.2) has
no VIN module, so the check is written out below.
"""

from __future__ import annotations

import re
from enum import StrEnum

PROVINCE_ABBREVIATIONS = "京津沪渝冀晋蒙辽吉黑苏浙皖闽赣鲁豫鄂湘粤桂琼川贵云藏陕甘青宁新"
_LETTER = "A-HJ-NP-Z"  # no I, O
_ALNUM = f"{_LETTER}0-9"
_ENERGY = "DABCEFGHJK"
_PREFIX = f"[{PROVINCE_ABBREVIATIONS}][{_LETTER}]"
_ORDINARY = re.compile(f"{_PREFIX}[{_ALNUM}]{{5}}")
_SPECIAL_USE = re.compile(f"{_PREFIX}[{_ALNUM}]{{4}}[挂学警港澳领]")
_NEW_ENERGY = re.compile(f"{_PREFIX}(?:[{_ENERGY}][{_ALNUM}][0-9]{{4}}|[0-9]{{5}}[{_ENERGY}])")
_SEPARATORS = re.compile(r"[\s·•．.\-]")

VIN_LENGTH = 17
_VIN = re.compile(r"[A-HJ-NPR-Z0-9]{17}")
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}


class PlateKind(StrEnum):
    ORDINARY = "ORDINARY"
    NEW_ENERGY = "NEW_ENERGY"
    SPECIAL_USE = "SPECIAL_USE"  # trailer, learner, police, cross-border, consular


def normalize_plate(text: str) -> str:
    """Uppercase, without separators; not validated."""
    return _SEPARATORS.sub("", text).upper()


def plate_kind(plate: str) -> PlateKind | None:
    """The kind of a normalised plate, or None when it is not a valid plate."""
    if _ORDINARY.fullmatch(plate):
        return PlateKind.ORDINARY
    if _NEW_ENERGY.fullmatch(plate):
        return PlateKind.NEW_ENERGY
    if _SPECIAL_USE.fullmatch(plate):
        return PlateKind.SPECIAL_USE
    return None


def normalize_vin(text: str) -> str:
    return re.sub(r"[\s\-]", "", text).upper()


def vin_check_digit(vin: str) -> str:
    """The check character (position 9) for a 17-character VIN of valid characters."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


def vin_problem(vin: str) -> str | None:
    """Why a normalised VIN is invalid, or None when it is valid."""
    if len(vin) != VIN_LENGTH:
        return f"a VIN has {VIN_LENGTH} characters, got {len(vin)}"
    if not _VIN.fullmatch(vin):
        return "a VIN has only digits and the letters A–Z without I, O and Q"
    expected = vin_check_digit(vin)
    if vin[8] != expected:
        return f"check digit (9th character) should be {expected!r}, got {vin[8]!r}: a character is mistyped"
    return None
