"""Mutual TLS: the services' server credentials and the principal a client certificate names.

With `ROGATORY_TLS_CERT_FILE` and `ROGATORY_TLS_KEY_FILE` a service listens with TLS; with
`ROGATORY_TLS_CLIENT_CA_FILE` as well it requires a client certificate signed by that CA,
and the caller is whoever the certificate names — a court, an agency or an admin — never a
request field. The name is a URI subject alternative name `urn:rogatory:{kind}:{id}`
(`urn:rogatory:court:gd0112`, `urn:rogatory:agency:bank-icbc`, `urn:rogatory:admin:ops`);
`rogatory certs` issues such certificates from a development CA (services/tools/certificates.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
from cryptography import x509

PRINCIPAL_URI_PREFIX = "urn:rogatory:"


def server_credentials(cert_file: str, key_file: str, client_ca_file: str = "") -> grpc.ServerCredentials:
    """TLS for a service; with `client_ca_file`, clients must present a certificate it signed."""
    key, cert = Path(key_file).read_bytes(), Path(cert_file).read_bytes()
    if not client_ca_file:
        return grpc.ssl_server_credentials([(key, cert)])
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=Path(client_ca_file).read_bytes(), require_client_auth=True
    )


def channel_credentials(ca_file: str, cert_file: str = "", key_file: str = "") -> grpc.ChannelCredentials:
    """What a court's, an agency's or an admin's client uses to call a service over mTLS."""
    client = (Path(key_file).read_bytes(), Path(cert_file).read_bytes()) if cert_file else (None, None)
    return grpc.ssl_channel_credentials(Path(ca_file).read_bytes(), private_key=client[0], certificate_chain=client[1])


def peer_certificate(context: Any) -> bytes | None:
    """The verified client certificate (PEM) of the call, if it came over mTLS."""
    auth_context = context.auth_context() or {}
    pem = auth_context.get("x509_pem_cert")
    return pem[0] if pem else None


def principal_name(pem: bytes) -> tuple[str, str] | None:
    """(kind, id) from the certificate's `urn:rogatory:{kind}:{id}` URI name, or None."""
    certificate = x509.load_pem_x509_certificate(pem)
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in names.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(PRINCIPAL_URI_PREFIX):
            kind, _, principal_id = uri.removeprefix(PRINCIPAL_URI_PREFIX).partition(":")
            if kind and principal_id:
                return kind, principal_id
    return None
