"""Who is calling, and how the channel is protected (docs/access.md).

- **Mutual TLS** (production): a client certificate whose URI name says who you are
  (`urn:rogatory:court:gd0112`), signed by the CA the services trust. `Credentials.mutual_tls`.
- **A development token** (`authorization: Bearer dev:court:gd0112`) over plaintext, which
  the services accept only while they listen without TLS (or with `ROGATORY_DEV_TOKENS=true`).
  `Credentials.dev_token`.

The caller is never a request field: a court acting for itself needs no `courts/…` in its
credential beyond its own name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import grpc

AUTHORIZATION = "authorization"
_PRINCIPAL = re.compile(r"^(court|agency|admin):[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, repr=False)
class Credentials:
    """A bearer token, a TLS configuration, or both (TLS with a token: tests of a TLS deployment)."""

    token: str = ""  # sent as `authorization: Bearer {token}` on every call
    root_certificates: bytes | None = None  # the CA that signed the services' certificates; None: plaintext
    private_key: bytes | None = None  # the client certificate's key (mutual TLS)
    certificate_chain: bytes | None = None  # the client certificate (mutual TLS)

    @classmethod
    def dev_token(cls, principal: str) -> Credentials:
        """A development token over plaintext: `court:gd0112`, `agency:bank-icbc`, `admin:ops`
        (a leading `dev:` is accepted too)."""
        name = principal.removeprefix("dev:")
        if not _PRINCIPAL.match(name):
            raise ValueError(f"principal {principal!r}: use court:ID, agency:ID or admin:NAME")
        return cls(token=f"dev:{name}")

    @classmethod
    def mutual_tls(cls, ca_file: str | Path, cert_file: str | Path, key_file: str | Path) -> Credentials:
        """The client certificate names the caller; `ca_file` is the CA the services' certificates are signed by."""
        return cls(
            root_certificates=Path(ca_file).read_bytes(),
            certificate_chain=Path(cert_file).read_bytes(),
            private_key=Path(key_file).read_bytes(),
        )

    @classmethod
    def tls(cls, ca_file: str | Path, token: str = "") -> Credentials:
        """TLS without a client certificate (the caller from `token`, where the services allow it)."""
        return cls(token=token, root_certificates=Path(ca_file).read_bytes())

    @property
    def secure(self) -> bool:
        return self.root_certificates is not None

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata every call carries: the token, if any."""
        return ((AUTHORIZATION, f"Bearer {self.token}"),) if self.token else ()

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """The TLS credentials of a secure channel (only when `secure`)."""
        if self.root_certificates is None:
            raise ValueError("plaintext credentials have no channel credentials")
        return grpc.ssl_channel_credentials(self.root_certificates, self.private_key, self.certificate_chain)

    def __repr__(self) -> str:  # never print a key
        parts = [f"token={self.token!r}"] if self.token else []
        if self.secure:
            parts.append("mutual TLS" if self.certificate_chain else "TLS")
        return f"Credentials({', '.join(parts) or 'none'})"
