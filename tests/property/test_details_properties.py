"""Matter details and attachments under arbitrary field values: accepted, or violations on their own fields.

Each details type is built the way the wire layer builds it (names and text unparsed, amounts
as int64, percentages as Decimal) from arbitrary values, then validated: nothing but
`Violations` may come out, every violation names a field of the details and a reason, and
whatever is accepted is also accepted once more (normalising is idempotent).
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from delegation.details import (
    DETAILS_TYPES,
    MAX_ATTACHMENT_BYTES,
    MAX_ATTACHMENTS,
    MAX_FILE_NAME_LENGTH,
    MAX_LIST_ITEMS,
    MAX_TEXT_LENGTH,
    Attachment,
    AttachmentKind,
    MatterKind,
    Officer,
    check_attachments,
    check_details,
)
from registry.errors import Violations

#: What a file name must not contain besides separators: C0/C1 controls and bidi overrides.
UNSAFE = frozenset(map(chr, [*range(0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]))
INT64 = st.integers(-(2**63), 2**63 - 1)
#: Unicode incl. control characters, full-width forms and astral planes, sometimes huge.
TEXT = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=190, max_size=3000),
    st.sampled_from(["", " ", "\x00", "\u3000", "浙C·12345", "B-1234", "6222021001123456789", "91110000600037341L"]),
)


def enum_values(kind: type) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from([m.value for m in kind]), st.sampled_from(["", "0", "99", "freeze"]), st.text(max_size=10))


def value_for(details_type: type, field: dataclasses.Field) -> st.SearchStrategy[object]:  # type: ignore[type-arg]
    annotation = str(field.type)
    if field.name == "share_percent":
        awkward = ["100.0000001", "1e-5000000", "0.000001", "12.5000000", "1E+2", "-0", "0E-7"]
        return st.one_of(
            st.none(), st.decimals(allow_nan=False, allow_infinity=False), st.sampled_from([Decimal(a) for a in awkward])
        )
    if "int" in annotation:
        return st.one_of(st.none(), INT64) if "None" in annotation else INT64
    if "tuple" in annotation:
        item = enum_values(_enum_in(annotation)) if "Category" in annotation else TEXT
        return st.lists(item, max_size=MAX_LIST_ITEMS + 5).map(tuple) | st.lists(item, min_size=200, max_size=400).map(tuple)
    if "|" in annotation and annotation.split("|")[0].strip() not in ("str", "int"):
        return enum_values(_enum_in(annotation))
    return TEXT


def _enum_in(annotation: str) -> type:
    import delegation.details as details_module

    name = annotation.replace("tuple[", "").split("|")[0].strip(" ]")
    return getattr(details_module, name)


@st.composite
def any_details(draw: st.DrawFn) -> tuple[MatterKind, object]:
    kind = draw(st.sampled_from(list(MatterKind)))
    details_type = DETAILS_TYPES[kind]
    values = {f.name: draw(value_for(details_type, f)) for f in dataclasses.fields(details_type)}
    return kind, details_type(**values)


attachments = st.builds(
    Attachment,
    kind=enum_values(AttachmentKind),
    name=TEXT,
    size_bytes=st.one_of(INT64, st.sampled_from([0, 1, MAX_ATTACHMENT_BYTES, MAX_ATTACHMENT_BYTES + 1])),
    sha256=st.one_of(TEXT, st.text(alphabet="0123456789abcdefABCDEF", min_size=63, max_size=65)),
)
#: Names that look harmless but are not: right-to-left override, C1 controls, separators.
attachments = attachments | st.builds(
    Attachment,
    kind=st.just("RULING"),
    name=st.sampled_from(["invoice\u202efdp.exe", "a\x85b.pdf", "..\\x.pdf", "a/b.pdf", "ok.pdf", "\u2066x.pdf"]),
    size_bytes=st.just(1),
    sha256=st.just("ab" * 32),
)


def assert_only_own_violations(violations: Violations, path: str) -> None:
    for v in violations.items:
        assert v.field.startswith(path) and v.reason and v.description, v
        assert len(v.description) <= 300, v  # descriptions state the rule; they never echo a huge value


@given(any_details())
def test_details_of_every_kind_are_accepted_or_violations(kind_and_details: tuple[MatterKind, object]) -> None:
    kind, details = kind_and_details
    violations = Violations()
    check_details(kind, details, "delegation.deposits", violations)  # type: ignore[arg-type]
    assert_only_own_violations(violations, "delegation.deposits")
    assert len(violations.items) <= MAX_LIST_ITEMS + 10  # a refusal is bounded too: lists over the limit are one violation
    if not violations:  # accepted details are a fixed point of normalisation
        again = Violations()
        rebuilt = type(details)(**{f.name: getattr(details, f.name) for f in dataclasses.fields(details)})  # type: ignore[call-overload]
        check_details(kind, rebuilt, "delegation.deposits", again)
        assert not again and rebuilt == details
        percent = getattr(details, "share_percent", None)
        assert percent is None or len(format(percent, "f")) <= 12  # what is stored and sent stays small


@given(any_details(), st.sampled_from(list(MatterKind)))
def test_details_of_another_kind_are_one_kind_mismatch(kind_and_details: tuple[MatterKind, object], kind: MatterKind) -> None:
    own, details = kind_and_details
    violations = Violations()
    check_details(kind, details, "delegation.details", violations)  # type: ignore[arg-type]
    if own is not kind:
        assert [v.reason for v in violations.items] == ["KIND_MISMATCH"]


@given(st.lists(attachments, max_size=MAX_ATTACHMENTS + 3), st.integers(0, MAX_ATTACHMENTS + 1))
def test_attachment_descriptors_are_accepted_or_violations(items: list[Attachment], already: int) -> None:
    violations = Violations()
    check_attachments(tuple(items), "attachments", violations, already=already)
    assert_only_own_violations(violations, "attachments")
    if already + len(items) > MAX_ATTACHMENTS:
        assert [v.reason for v in violations.items] == ["TOO_MANY"]
        assert str(MAX_ATTACHMENTS) in violations.items[0].description
        return
    for i, a in enumerate(items):
        own = {v.field.removeprefix(f"attachments[{i}].") for v in violations.items if v.field.startswith(f"attachments[{i}].")}
        assert ("size_bytes" in own) == (not 1 <= a.size_bytes <= MAX_ATTACHMENT_BYTES)
        assert ("sha256" in own) == (len(a.sha256) != 64 or any(c not in "0123456789abcdef" for c in a.sha256))
        bad_name = not a.name or len(a.name) > MAX_FILE_NAME_LENGTH or any(c in "/\\" or c in UNSAFE for c in a.name)
        assert ("name" in own) == bad_name, (a.name, own)


@given(st.builds(Officer, name=TEXT, phone=TEXT))
def test_officers_are_accepted_or_violations(officer: Officer) -> None:
    violations = Violations()
    officer.validate("officer", violations)
    assert_only_own_violations(violations, "officer")


def test_limits_are_stated_in_the_violation() -> None:
    """Each limit is reported with its number, so a client knows what to send instead."""
    violations = Violations()
    too_long = Attachment("RULING", "a" * (MAX_FILE_NAME_LENGTH + 1), MAX_ATTACHMENT_BYTES + 1, "x" * 64)
    too_long.validate("a", violations)
    texts = {v.field: v.description for v in violations.items}
    assert str(MAX_FILE_NAME_LENGTH) in texts["a.name"]
    assert str(MAX_ATTACHMENT_BYTES) in texts["a.size_bytes"]
    assert "64 hexadecimal" in texts["a.sha256"]
    other = DETAILS_TYPES[MatterKind.OTHER](description="x" * (MAX_TEXT_LENGTH + 1))  # type: ignore[call-arg]
    check_details(MatterKind.OTHER, other, "d", violations := Violations())
    assert [(v.field, v.reason) for v in violations.items] == [("d.description", "TOO_LONG")]
    assert str(MAX_TEXT_LENGTH) in violations.items[0].description
