"""Tables every service has in its own database: the outbox, the inbox, the request log.

(The case replica of the delegation and assistance services is in services/contract/case_replica.py.)"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime, Index, LargeBinary
from sqlmodel import Field, SQLModel


class OutboxEvent(SQLModel, table=True):
    """A domain event written in the same transaction as the state change it records."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_unsent", "sent_at", "seq"),)

    seq: int | None = Field(default=None, primary_key=True)  # publication order
    event_id: str = Field(max_length=36, unique=True)
    event_type: str = Field(max_length=120)
    subject: str = Field(max_length=255)
    payload: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    occurred_at: datetime = Field(sa_type=DateTime(timezone=True))
    traceparent: str = Field(default="", max_length=64)
    tracestate: str = Field(default="", max_length=512)
    sent_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class InboxEntry(SQLModel, table=True):
    """An event a consumer has applied; its presence makes a redelivery a no-op."""

    __tablename__ = "inbox"

    consumer: str = Field(primary_key=True, max_length=120)
    event_id: str = Field(primary_key=True, max_length=36)
    processed_at: datetime = Field(sa_type=DateTime(timezone=True))


class RequestLogEntry(SQLModel, table=True):
    """A mutating call that carried a request_id (AIP-155), written in its write's transaction.

    `key` is the request_id in its scope (caller, method, parent: services/plumbing/idempotency.py),
    `fingerprint` what the call asked for, `resource` the resource it wrote.
    """

    __tablename__ = "request_log"
    __table_args__ = (Index("ix_request_log_created_at", "created_at"),)  # expiry (request_expiry.py)

    key: str = Field(primary_key=True, max_length=64)
    fingerprint: str = Field(max_length=32)
    resource: str = Field(max_length=200)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
