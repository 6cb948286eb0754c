"""The text rule (registry/text.py) on every string field of every request, before its handler.

Domain commands check their own fields (length, presence) with the same rule; doing it here
as well means no field escapes it — a resource name, a filter, a field added to a proto
later — and a NUL never reaches a PostgreSQL text column as an INTERNAL error.
"""

from __future__ import annotations

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from registry.errors import FieldViolation, InvalidArgument
from registry.text import text_problem

_STRING = FieldDescriptor.TYPE_STRING
_MESSAGE = FieldDescriptor.TYPE_MESSAGE


def check_request_text(request: Message) -> None:
    """INVALID_ARGUMENT with one violation per string field that breaks the text rule."""
    found: list[FieldViolation] = []
    _walk(request, "", found)
    if found:
        raise InvalidArgument.of(found)


def _walk(message: Message, prefix: str, found: list[FieldViolation]) -> None:
    for field, value in message.ListFields():  # only the fields set: cheap on the hot path
        if field.type == _STRING:
            _check_strings(field, value, f"{prefix}{field.name}", found)
        elif field.type == _MESSAGE:
            _walk_messages(field, value, f"{prefix}{field.name}", found)


def _check_strings(field: FieldDescriptor, value: object, path: str, found: list[FieldViolation]) -> None:
    values = enumerate(value) if field.is_repeated else [(None, value)]  # type: ignore[call-overload]
    for index, text in values:
        if problem := text_problem(text):
            found.append(FieldViolation(path if index is None else f"{path}[{index}]", problem[1], problem[0]))


def _walk_messages(field: FieldDescriptor, value: object, path: str, found: list[FieldViolation]) -> None:
    if field.message_type.GetOptions().map_entry:
        _check_map(field, value, path, found)
    elif field.is_repeated:
        for index, item in enumerate(value):  # type: ignore[call-overload]
            _walk(item, f"{path}[{index}].", found)
    else:
        _walk(value, f"{path}.", found)  # type: ignore[arg-type]


def _check_map(field: FieldDescriptor, value: object, path: str, found: list[FieldViolation]) -> None:
    """Map keys are text a caller writes too; message values are walked like any other."""
    value_field = field.message_type.fields_by_name["value"]
    for key, item in value.items():  # type: ignore[attr-defined]
        if isinstance(key, str) and (problem := text_problem(key)):
            found.append(FieldViolation(path, f"a key {problem[1]}", problem[0]))  # the path does not echo it
            continue
        entry = f"{path}[{key!r}]"
        if value_field.type == _STRING and (problem := text_problem(item)):
            found.append(FieldViolation(entry, problem[1], problem[0]))
        elif value_field.type == _MESSAGE:
            _walk(item, f"{entry}.", found)
