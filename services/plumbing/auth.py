"""Who is calling: the principal comes from the credential, never from a request field.

Two credentials:

- **mutual TLS** (production): the client certificate, verified against the configured CA
  by the TLS handshake, names the caller (`urn:rogatory:court:gd0112`, services/plumbing/tls.py);
- **development tokens**: `authorization: Bearer dev:court:gd0112`, `dev:agency:bank-icbc` or
  `dev:admin:{name}`. They prove nothing and exist so court systems can be driven from a
  terminal and tests: accepted only while the service listens in plaintext, or under TLS
  when `ROGATORY_DEV_TOKENS=true` says so explicitly (Settings.accepts_dev_tokens).

When a call carries a certificate, the certificate is the caller, whatever a header says.
Either way the caller must exist: a court of the court table or an agency of the agency
table, else UNAUTHENTICATED `UNKNOWN_PRINCIPAL` before any handler runs. Admins are not
reference data: any name of the id grammar below is an admin (a CA-signed certificate is
the grant; a development token grants nothing anyway).
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum

from registry.errors import PermissionDenied, Unauthenticated

_ID = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"  # every principal id, from a token or a certificate
_DEV_TOKEN = re.compile(rf"^dev:(court|agency|admin):({_ID})$")
_PRINCIPAL_ID = re.compile(_ID)


class PrincipalKind(StrEnum):
    COURT = "court"
    AGENCY = "agency"
    ADMIN = "admin"


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    id: str

    @property
    def name(self) -> str:
        return {PrincipalKind.COURT: "courts", PrincipalKind.AGENCY: "agencies", PrincipalKind.ADMIN: "admins"}[
            self.kind
        ] + f"/{self.id}"


_current: ContextVar[Principal | None] = ContextVar("rogatory_principal", default=None)


def principal_from_metadata(metadata: Iterable[tuple[str, str | bytes]]) -> Principal | None:
    """The caller named by the `authorization` header, or None when there is none."""
    for key, value in metadata:
        if key.lower() != "authorization":
            continue
        text = value.decode() if isinstance(value, bytes) else value
        scheme, _, token = text.partition(" ")
        match = _DEV_TOKEN.match(token.strip()) if scheme.lower() == "bearer" else None
        if not match:
            raise Unauthenticated("unrecognised credential", reason="BAD_CREDENTIAL")
        return Principal(PrincipalKind(match.group(1)), match.group(2))
    return None


@dataclass(frozen=True)
class Authenticator:
    """Turns a call's credential into its principal, one way for every method of every service:
    `courts` and `agencies` are the ids the reference data knows; `dev_tokens` whether
    development tokens count here."""

    courts: Container[str]
    agencies: Container[str]
    dev_tokens: bool

    def principal_of(self, metadata: Iterable[tuple[str, str | bytes]], certificate: bytes | None) -> Principal | None:
        """The caller: the client certificate's name, else (when allowed) a development token;
        None without a credential. UNAUTHENTICATED for a credential that names nobody known."""
        principal = self._claimed(metadata, certificate)
        if principal is not None and not self.knows(principal):
            raise Unauthenticated(
                f"the credential names {principal.name}, which is no known {principal.kind}", reason="UNKNOWN_PRINCIPAL"
            )
        return principal

    def knows(self, principal: Principal) -> bool:
        if principal.kind is PrincipalKind.COURT:
            return principal.id in self.courts
        if principal.kind is PrincipalKind.AGENCY:
            return principal.id in self.agencies
        return True  # admins: any well-formed name (module docstring)

    def _claimed(self, metadata: Iterable[tuple[str, str | bytes]], certificate: bytes | None) -> Principal | None:
        if certificate is not None:
            return _certificate_principal(certificate)
        principal = principal_from_metadata(metadata)
        if principal is not None and not self.dev_tokens:
            raise Unauthenticated(
                "development tokens are not accepted here: use your client certificate", reason="DEV_TOKENS_OFF"
            )
        return principal


def _certificate_principal(certificate: bytes) -> Principal:
    from services.plumbing.tls import principal_name  # noqa: PLC0415 - cryptography only for mTLS calls

    named = principal_name(certificate)
    if named is None or named[0] not in PrincipalKind._value2member_map_ or not _PRINCIPAL_ID.fullmatch(named[1]):
        raise Unauthenticated("the client certificate names no court, agency or admin", reason="BAD_CERTIFICATE")
    return Principal(PrincipalKind(named[0]), named[1])


def bind(principal: Principal | None) -> object:
    return _current.set(principal)


def current_principal() -> Principal:
    principal = _current.get()
    if principal is None:
        raise Unauthenticated("this method needs a credential (authorization: Bearer …)", reason="NO_CREDENTIAL")
    return principal


def calling_court() -> str:
    """The id of the calling court; PERMISSION_DENIED for agencies and admins."""
    principal = current_principal()
    if principal.kind is not PrincipalKind.COURT:
        raise PermissionDenied(f"{principal.name} is not a court", reason="NOT_A_COURT")
    return principal.id


def dev_credentials(kind: str, principal_id: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying a development token, for clients, the demo and tests."""
    return (("authorization", f"Bearer dev:{kind}:{principal_id}"),)
