"""A development certificate authority for mutual TLS: `rogatory certs`.

Issues a CA, server certificates for the services and client certificates that name a
court, an agency or an admin (`urn:rogatory:{kind}:{id}`, read by services/plumbing/tls.py).
For development and tests: production certificates come from the courts' own PKI, with
the same URI name.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from services.plumbing.tls import PRINCIPAL_URI_PREFIX

VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class Issued:
    cert_pem: bytes
    key_pem: bytes

    def write(self, folder: Path, stem: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        cert, key = folder / f"{stem}.crt", folder / f"{stem}.key"
        cert.write_bytes(self.cert_pem)
        key.touch(mode=0o600, exist_ok=True)
        key.chmod(0o600)
        key.write_bytes(self.key_pem)
        return cert, key


@dataclass(frozen=True)
class Authority:
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, name: str = "Rogatory development CA") -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        certificate = (
            _builder(subject, subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )  # digital signature, cert and CRL signing
            .sign(key, hashes.SHA256())
        )
        return cls(certificate, key)

    @property
    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def server(self, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Issued:
        names: list[x509.GeneralName] = []
        for host in hosts:
            names.append(x509.IPAddress(_ip(host)) if _is_ip(host) else x509.DNSName(host))
        return self._issue(hosts[0], names, ExtendedKeyUsageOID.SERVER_AUTH)

    def client(self, kind: str, principal_id: str) -> Issued:
        """A certificate naming `courts/…`, `agencies/…` or `admins/…` by its URI name."""
        uri = f"{PRINCIPAL_URI_PREFIX}{kind}:{principal_id}"
        return self._issue(f"{kind}:{principal_id}", [x509.UniformResourceIdentifier(uri)], ExtendedKeyUsageOID.CLIENT_AUTH)

    def _issue(self, common_name: str, names: list[x509.GeneralName], usage: x509.ObjectIdentifier) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        certificate = (
            _builder(subject, self.certificate.subject, key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return Issued(certificate.public_bytes(serialization.Encoding.PEM), key_pem)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(host)
