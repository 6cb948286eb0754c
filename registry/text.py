"""The one rule for text a caller writes: names, notes, reasons, addresses, descriptions.

Text is checked, never rewritten (besides the trimming each field documents):

- no control characters (C0, DEL, C1) except tab, line feed and carriage return: a NUL cannot
  be stored by PostgreSQL and the others corrupt logs, CSV exports and terminals;
- no bidirectional controls (U+061C, U+200E/F, U+202A–U+202E, U+2066–U+2069): they make
  "invoice\u202efdp.exe" display as "invoiceexe.pdf" and a debtor's name read as another's;
- not only invisible characters: text made of zero-width, format and blank characters
  (U+200B, U+FEFF, U+3164, …) displays as nothing and cannot be searched for.

`text_problem` states the rule for one value; `check_text` adds length and presence for a
field; the gRPC layer applies `text_problem` to every string field of every request
(services/plumbing/request_text.py), so a field added later follows it too.
"""

from __future__ import annotations

import re
import unicodedata

from registry.errors import Violations

BAD_CHARACTER = "BAD_CHARACTER"
INVISIBLE_TEXT = "INVISIBLE_TEXT"

_ALLOWED_CONTROLS = "\t\n\r"
_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
#: Letters and marks that render as nothing, besides the format (Cf) and blank characters:
#: combining grapheme joiner, Hangul fillers, Khmer inherent vowels, Mongolian selectors,
#: Braille blank, variation selectors.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e\u180f\u2800\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))
    + "".join(chr(c) for c in range(0xE0100, 0xE01F0))
)


def _visible(char: str) -> bool:
    return not (char.isspace() or char in _INVISIBLE or unicodedata.category(char) in ("Cf", "Cc", "Zs", "Zl", "Zp"))


def text_problem(value: str) -> tuple[str, str] | None:
    """(reason, description) when `value` breaks the text rule; None when it follows it.

    Empty and blank (whitespace-only) text passes: whether a field may be empty is the
    field's own rule (`check_text`'s `required`)."""
    if not value or (value.isprintable() and _INVISIBLE.isdisjoint(value)):
        return None  # the common case, decided in C: no control, format or separator but ' ', nothing invisible
    if bad := _FORBIDDEN.search(value):
        code = f"U+{ord(bad.group()):04X}"
        return BAD_CHARACTER, f"must not contain control or bidirectional-control characters ({code} at {bad.start()})"
    if value.isspace() or any(_visible(c) for c in value):
        return None
    return INVISIBLE_TEXT, "has no visible character (only zero-width, format or blank characters)"


def check_text(value: str, path: str, violations: Violations, *, max_length: int, required: bool = True) -> None:
    """The text rule, then presence (REQUIRED) and length (TOO_LONG, in characters) of one field."""
    if problem := text_problem(value):
        violations.add(path, problem[1], problem[0])
    elif not value.strip():
        if required:
            violations.add(path, "required", "REQUIRED")
    elif len(value) > max_length:
        violations.add(path, f"at most {max_length} characters", "TOO_LONG")
