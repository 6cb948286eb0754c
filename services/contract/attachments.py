"""Attachments on the wire: the delegation API's `Attachment` message, which the assistance
API reuses for a notice's documents, to and from the domain's `delegation.details.Attachment`."""

from __future__ import annotations

from collections.abc import Iterable

from rogatory.delegation.v1 import delegation_pb2 as pb

from delegation.details import Attachment
from services.plumbing.fields import enum_name


def attachment_to_proto(a: Attachment) -> pb.Attachment:
    return pb.Attachment(kind=pb.Attachment.Kind.Value(str(a.kind)), name=a.name, size_bytes=a.size_bytes, sha256=a.sha256)


def attachments_from_proto(items: Iterable[pb.Attachment]) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(kind=enum_name(pb.Attachment.Kind, a.kind), name=a.name, size_bytes=a.size_bytes, sha256=a.sha256)
        for a in items
    )
