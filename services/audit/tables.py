"""The audit log's table (sqlmodel), in the audit process's database; migration audit_0001
(registry_0003 created it in the registry's database, where the chain was kept before)."""

from __future__ import annotations

from sqlalchemy import BigInteger
from sqlmodel import Field, SQLModel


class AuditLogRow(SQLModel, table=True):
    __tablename__ = "audit_log"

    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})  # chain position, 1, 2, 3, …
    stream_seq: int = Field(unique=True, sa_type=BigInteger)  # type: ignore[call-overload]
    event_id: str = Field(max_length=120, unique=True)
    event_type: str = Field(max_length=120)
    subject: str = Field(max_length=255)
    occurred_at: str = Field(max_length=40)
    source: str = Field(max_length=120)
    payload_sha256: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
