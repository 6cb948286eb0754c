"""Process configuration from environment variables (documented in README.md).

Standard OpenTelemetry variables (`OTEL_*`) are read by the OpenTelemetry SDK itself.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///{data_dir}/{service}.db"
PAGE_TOKEN_KEY_FILE = "page-token.key"
MIN_PAGE_TOKEN_KEY_LENGTH = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    # Where NATS is; empty means "start an embedded nats-server" (make run only).
    nats_url: str = Field(default="", alias="NATS_URL")
    # `{service}` and `{data_dir}` are substituted, so the SQLite default gives each
    # service its own file; a PostgreSQL URL gives each service its own schema.
    database_url: str = Field(default=DEFAULT_SQLITE_URL, alias="DATABASE_URL")
    # PostgreSQL schema prefix, so several deployments (or test runs) share a database.
    db_schema_prefix: str = Field(default="", alias="ROGATORY_DB_SCHEMA_PREFIX")
    data_dir: Path = Field(default=Path("var"), alias="ROGATORY_DATA_DIR")
    registry_addr: str = Field(default="127.0.0.1:50051", alias="REGISTRY_ADDR")
    delegation_addr: str = Field(default="127.0.0.1:50052", alias="DELEGATION_ADDR")
    assistance_addr: str = Field(default="127.0.0.1:50053", alias="ASSISTANCE_ADDR")
    # The audit process and the turnaround projector serve gRPC health only
    # (services/audit/main.py, services/delegation/projector.py).
    audit_addr: str = Field(default="127.0.0.1:50054", alias="AUDIT_ADDR")
    turnaround_addr: str = Field(default="127.0.0.1:50055", alias="TURNAROUND_ADDR")
    # Where each service serves Prometheus `/metrics`; empty: not served (`make run` serves
    # them on 9464, 9465, 9466, the audit process on 9467 and the projector on 9468).
    registry_metrics_addr: str = Field(default="", alias="REGISTRY_METRICS_ADDR")
    delegation_metrics_addr: str = Field(default="", alias="DELEGATION_METRICS_ADDR")
    assistance_metrics_addr: str = Field(default="", alias="ASSISTANCE_METRICS_ADDR")
    audit_metrics_addr: str = Field(default="", alias="AUDIT_METRICS_ADDR")
    turnaround_metrics_addr: str = Field(default="", alias="TURNAROUND_METRICS_ADDR")
    stream_name: str = Field(default="ROGATORY", alias="ROGATORY_STREAM")
    # Replicas of the JetStream stream: 1 on one server, 3 on a cluster.
    stream_replicas: int = Field(default=1, alias="ROGATORY_STREAM_REPLICAS")
    # Seconds a service waits for in-flight RPCs on SIGTERM before cancelling them.
    shutdown_grace: float = Field(default=10.0, alias="ROGATORY_SHUTDOWN_GRACE")
    log_level: str = Field(default="INFO", alias="ROGATORY_LOG_LEVEL")
    # `make run`: children's log lines at or above this level also go to the terminal (all of
    # them go to {data_dir}/log/{child}.log); OFF shows none.
    terminal_log_level: str = Field(default="WARNING", alias="ROGATORY_TERMINAL_LOG_LEVEL")
    # Seconds between deadline-scanner passes in the delegation service (0 turns it off,
    # e.g. when a separate `rogatory scan-deadlines` job runs it).
    scan_interval: float = Field(default=60.0, alias="ROGATORY_SCAN_INTERVAL")
    # Mutual TLS (services/plumbing/tls.py): the service's certificate and key, and the CA
    # whose client certificates name the callers. Without them the service listens in
    # plaintext (development); with a client CA, every call must present a certificate.
    tls_cert_file: str = Field(default="", alias="ROGATORY_TLS_CERT_FILE")
    tls_key_file: str = Field(default="", alias="ROGATORY_TLS_KEY_FILE")
    tls_client_ca_file: str = Field(default="", alias="ROGATORY_TLS_CLIENT_CA_FILE")
    # Accept development tokens (`authorization: Bearer dev:court:…`). Unset: yes in plaintext,
    # no under TLS (with or without a client CA); `true` under TLS is logged loudly at start-up.
    dev_tokens: bool | None = Field(default=None, alias="ROGATORY_DEV_TOKENS")
    # Seconds between the checks behind the health service (NOT_SERVING while the database
    # or NATS cannot be reached, or a consumer waits out an outage), and the bound on
    # connecting to PostgreSQL, so an RPC fails fast with UNAVAILABLE instead of hanging.
    health_interval: float = Field(default=2.0, gt=0, alias="ROGATORY_HEALTH_INTERVAL")
    db_connect_timeout: float = Field(default=3.0, gt=0, alias="ROGATORY_DB_CONNECT_TIMEOUT")
    # Seconds a database call of a service may take — waiting for a connection or the writer,
    # its statements and its commit — before the call answers UNAVAILABLE (DATABASE_TIMEOUT);
    # on PostgreSQL also the server-side statement_timeout, lock_timeout and
    # idle_in_transaction_session_timeout, on SQLite the busy timeout. An RPC's own deadline,
    # when sooner, cuts the call off first (DEADLINE_EXCEEDED). README "Timeouts".
    db_statement_timeout: float = Field(default=10.0, gt=0, alias="ROGATORY_DB_STATEMENT_TIMEOUT")
    # Deliveries of one event a consumer attempts before it moves the event to
    # `rogatory.v1.deadletter.{consumer}` and raises an alert (docs/events.md). Only the
    # event's own failures count: a database or NATS outage is waited out.
    max_deliveries: int = Field(default=5, ge=1, alias="ROGATORY_MAX_DELIVERIES")
    # Largest request a service accepts, in bytes (gRPC max receive message size); a bigger
    # one is refused with RESOURCE_EXHAUSTED before it is parsed. docs/api-limits.md.
    max_message_bytes: int = Field(default=4 * 1024 * 1024, ge=1024, alias="ROGATORY_MAX_MESSAGE_BYTES")
    # Seconds a service remembers a mutating call's request_id (AIP-155): a retry within it gets
    # the first answer; after it the request_id is forgotten (its request_log entry deleted by a
    # background pass, hourly) and the same request_id makes a new request. Default 7 days.
    request_id_retention: float = Field(default=7 * 24 * 3600.0, gt=0, alias="ROGATORY_REQUEST_ID_RETENTION")
    # Run Alembic migrations when a service starts (disable when a release job does it).
    migrate_on_start: bool = Field(default=True, alias="ROGATORY_MIGRATE_ON_START")
    # A CSV agency table (columns of registry/data/agencies.csv) used instead of the shipped
    # one by property queries; empty: the shipped table. The benchmark loads 1,000 banks.
    agencies_file: str = Field(default="", alias="ROGATORY_AGENCIES_FILE")
    # Seconds after which a property-query request an agency has not answered is sent to
    # it again (until the query's deadline); requests travel over core NATS.
    query_resend_seconds: float = Field(default=120.0, gt=0, alias="ROGATORY_QUERY_RESEND_SECONDS")
    # Seconds between background WAL checkpoints of a SQLite database (0: only SQLite's own,
    # inside a commit, every 10,000 pages); PostgreSQL ignores it.
    sqlite_checkpoint_seconds: float = Field(default=1.0, ge=0, alias="ROGATORY_SQLITE_CHECKPOINT_SECONDS")
    # The secret page tokens are signed with (services/plumbing/pagination.py), at least 32
    # characters. Empty: one is generated into `{data_dir}/page-token.key` on first start and
    # read from there after, so tokens survive restarts and replicas sharing the data directory
    # accept each other's. Replicas on different data directories (e.g. several hosts on one
    # PostgreSQL) must all be given the same value.
    page_token_key: str = Field(default="", alias="ROGATORY_PAGE_TOKEN_KEY", repr=False)

    def page_token_secret(self) -> bytes:
        """ROGATORY_PAGE_TOKEN_KEY, or the data directory's key (created on first use)."""
        if self.page_token_key:
            if len(self.page_token_key) < MIN_PAGE_TOKEN_KEY_LENGTH:
                raise ValueError(f"ROGATORY_PAGE_TOKEN_KEY must have at least {MIN_PAGE_TOKEN_KEY_LENGTH} characters")
            return self.page_token_key.encode()
        return _data_dir_key(self.data_dir.resolve() / PAGE_TOKEN_KEY_FILE)

    def address_of(self, service: str) -> str:
        return {
            "registry": self.registry_addr,
            "delegation": self.delegation_addr,
            "assistance": self.assistance_addr,
            "audit": self.audit_addr,
            "turnaround": self.turnaround_addr,
        }[service]

    @property
    def accepts_dev_tokens(self) -> bool:
        """Development tokens prove nothing: never by default once the service speaks TLS, a
        deployment's sign that it is not a developer's machine (issue 15 point 4)."""
        return self.dev_tokens if self.dev_tokens is not None else not self.tls_cert_file

    def metrics_address_of(self, service: str) -> str:
        return {
            "registry": self.registry_metrics_addr,
            "delegation": self.delegation_metrics_addr,
            "assistance": self.assistance_metrics_addr,
            "audit": self.audit_metrics_addr,
            "turnaround": self.turnaround_metrics_addr,
        }[service]

    def database_url_for(self, service: str) -> str:
        return self.database_url.format(service=service, data_dir=self.data_dir.resolve().as_posix())

    def schema_for(self, service: str) -> str:
        return f"{self.db_schema_prefix}{service}"


def _data_dir_key(path: Path) -> bytes:
    """The key in `path`, written first if there is none. Several processes may start at once:
    each writes a candidate to its own file and links it into place; the first link wins and
    every process reads the winner's, so all of them sign with the same key."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        candidate = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        descriptor = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
        try:
            with contextlib.suppress(FileExistsError):  # another process got there first: read its key
                os.link(candidate, path)  # atomic
        finally:
            candidate.unlink()
    key = path.read_text().strip()
    if len(key) < MIN_PAGE_TOKEN_KEY_LENGTH:
        raise ValueError(f"{path} holds no page-token key of at least {MIN_PAGE_TOKEN_KEY_LENGTH} characters")
    return key.encode()
