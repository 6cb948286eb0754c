"""Hypothesis strategies built from protobuf descriptors: any field of any message, hostile values.

`messages(Descriptor)` fills every field by its type — strings from unicode incl. control
characters, empty and huge values, wrong resource names; integers at and beyond their
bounds; enums including numbers the enum does not define; repeated fields short or long;
one member of each oneof — so the same few lines exercise every request of every service.
`mutated(valid)` keeps a valid request and breaks a few of its fields, so the checks behind
the first violation are reached too.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
#: Resource-name shaped strings: almost right is where parsers break.
NAMES = [
    "",
    "-",
    "courts/",
    "courts/-",
    "courts/gd0112",
    "courts/ha0122",
    "courts/zj0326",
    "courts/nope",
    "courts/gd0112/cases/",
    "courts/gd0112/cases/2020-enf-1",
    "courts/gd0112/delegations/x",
    "courts/gd0112/delegations/../../x",
    "courts//delegations/x",
    "agencies/bank-icbc",
    "agencies/",
    "courts/gd0112/assistanceNotices/x",
    "courts/gd0112/seizures/x",
    "courts/\x00",
    "courts/广州",
    "courts/gd0112/cases/2020-enf-1/extra",
    'W/"1"',
    'W/"99999999999999999999"',
    'W/"-1"',
    '"7"',
]


def text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=20),
        st.sampled_from(NAMES),
        st.text(alphabet=st.characters(codec="utf-8"), min_size=100, max_size=3000),
        st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=10),
        st.just("x" * 70_000),
        st.from_regex(r"courts/[a-z0-9]{1,8}(/[a-zA-Z]{1,20}/[a-z0-9-]{1,70})?", fullmatch=True),
    )


def _integers(lo: int, hi: int) -> st.SearchStrategy[int]:
    edges = sorted({lo, hi, 0, 1, -1, hi // 2} & set(range(lo, hi + 1)) if hi - lo < 10 else {lo, hi, 0, 1, -1})
    return st.one_of(st.sampled_from(edges), st.integers(lo, hi), st.integers(max(lo, -1000), min(hi, 1000)))


def scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return text()
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(numbers), st.integers(*INT32))  # proto3 enums are open
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return _integers(*INT32)
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return _integers(*INT64)
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return _integers(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return _integers(0, 2**64 - 1)
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.floats(width=32 if t == FieldDescriptor.TYPE_FLOAT else 64)
    raise NotImplementedError(field.full_name)


def _is_repeated(field: FieldDescriptor) -> bool:
    # FieldDescriptor.label is deprecated in newer protobuf; is_repeated replaces it.
    repeated = getattr(field, "is_repeated", None)
    return bool(repeated) if repeated is not None else field.label == FieldDescriptor.LABEL_REPEATED


@st.composite
def messages(draw: st.DrawFn, descriptor: Descriptor, depth: int = 3) -> dict[str, Any]:
    """Keyword arguments for the message class of `descriptor` (a dict, so it can be edited)."""
    values: dict[str, Any] = {}
    chosen_oneofs = {o.name: draw(st.sampled_from([None, *o.fields])) for o in descriptor.oneofs}
    for field in descriptor.fields:
        oneof = field.containing_oneof
        if oneof is not None and chosen_oneofs.get(oneof.name) is not field:
            continue
        if oneof is None and not draw(st.booleans()):
            continue  # leave it unset: absence is input too
        values[field.name] = draw(field_value(field, depth))
    return values


def field_value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        if field.message_type.GetOptions().map_entry:
            return st.just({})
        if depth <= 0:
            one: st.SearchStrategy[Any] = st.just({})
        else:
            one = messages(field.message_type, depth - 1)
        return st.lists(one, max_size=3) if _is_repeated(field) else one
    one = scalar(field)
    if _is_repeated(field):
        return st.one_of(st.lists(one, max_size=4), st.lists(st.sampled_from(["a", "执行裁定书"]), min_size=51, max_size=300))
    return one


def build(cls: type[Message], values: dict[str, Any]) -> Message:
    """The message from `messages(...)` values; nested dicts become nested messages."""
    message = cls()
    _fill(message, values)
    return message


def _fill(message: Message, values: dict[str, Any]) -> None:
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        if field.message_type is not None and not field.message_type.GetOptions().map_entry:
            if _is_repeated(field):
                for item in value:
                    _fill(getattr(message, name).add(), item)
            else:
                sub = getattr(message, name)
                sub.SetInParent()
                _fill(sub, value)
        elif _is_repeated(field):
            getattr(message, name).extend(value)
        elif field.message_type is None:
            setattr(message, name, value)


@st.composite
def mutated(draw: st.DrawFn, valid: Message, max_changes: int = 3) -> Message:
    """`valid` with 1..max_changes fields (at any depth) cleared or replaced by arbitrary values."""
    message = type(valid)()
    message.CopyFrom(valid)
    for _ in range(draw(st.integers(1, max_changes))):
        target = message
        while True:  # walk down into a set sub-message now and then
            set_messages = [f for f, _ in target.ListFields() if f.message_type is not None and not _is_repeated(f)]
            if not set_messages or not draw(st.booleans()):
                break
            target = getattr(target, draw(st.sampled_from(set_messages)).name)
        field = draw(st.sampled_from(list(target.DESCRIPTOR.fields)))
        target.ClearField(field.name)
        if draw(st.integers(0, 4)) == 0:
            continue  # cleared
        _fill(target, {field.name: draw(field_value(field, 2))})
    return message
