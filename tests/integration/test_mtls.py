"""Mutual TLS: the client certificate is the caller (issue 6). The tests make their own CA,
start the delegation service with TLS and a client CA, and call it as different parties."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from rogatory.delegation.v1 import delegation_pb2 as dg
from rogatory.delegation.v1 import delegation_pb2_grpc

from services.delegation.main import wire as wire_delegation
from services.plumbing.auth import dev_credentials
from services.plumbing.config import Settings
from services.plumbing.host import ServiceHost
from services.plumbing.nats_server import EmbeddedNatsServer
from services.plumbing.tls import channel_credentials
from services.tools import healthcheck
from services.tools.certificates import Authority

OVERDUE_OF_GD0112 = dg.ListOverdueDelegationsRequest(parent="courts/gd0112")  # gd0112, its superiors and admins only


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    authority = Authority.create()
    (folder / "ca.crt").write_bytes(authority.cert_pem)
    authority.server().write(folder, "server")
    for kind, principal_id in (
        ("court", "gd0112"),
        ("court", "gd01"),
        ("court", "zj0326"),
        ("admin", "ops"),
        ("agency", "bank-icbc"),
        ("admin", "healthcheck"),
        ("court", "xx9999"),  # signed by our CA, but no such court
        ("agency", "bank-nowhere"),
    ):
        authority.client(kind, principal_id).write(folder, f"{kind}-{principal_id}")
    stranger = Authority.create("Someone else's CA")
    (folder / "stranger-ca.crt").write_bytes(stranger.cert_pem)
    stranger.client("court", "gd0112").write(folder, "forged-gd0112")
    return folder


async def start(tmp_path: Path, nats_url: str, **tls: str) -> ServiceHost:
    settings = Settings(
        NATS_URL=nats_url, ROGATORY_DATA_DIR=tmp_path, DELEGATION_ADDR="127.0.0.1:0", ROGATORY_SCAN_INTERVAL=0, **tls
    )  # type: ignore[call-arg]
    host = ServiceHost("delegation", settings)
    await host.start(wire_delegation)
    return host


@pytest.fixture
async def mtls_service(tmp_path: Path, nats_server: EmbeddedNatsServer, pki: Path) -> AsyncIterator[ServiceHost]:
    host = await start(
        tmp_path,
        nats_server.url,
        ROGATORY_TLS_CERT_FILE=str(pki / "server.crt"),
        ROGATORY_TLS_KEY_FILE=str(pki / "server.key"),
        ROGATORY_TLS_CLIENT_CA_FILE=str(pki / "ca.crt"),
    )
    try:
        yield host
    finally:
        await host.stop()


async def call_as(host: ServiceHost, pki: Path, client: str | None, *, ca: str = "ca.crt", token: str = "") -> grpc.StatusCode:
    return (await answer_to(host, pki, client, ca=ca, token=token))[0]


async def answer_to(
    host: ServiceHost, pki: Path, client: str | None, *, ca: str = "ca.crt", token: str = ""
) -> tuple[grpc.StatusCode, str]:
    """The status code and ErrorInfo reason ("" for OK) of a call over TLS."""
    credentials = channel_credentials(
        str(pki / ca), str(pki / f"{client}.crt") if client else "", str(pki / f"{client}.key") if client else ""
    )
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    async with grpc.aio.secure_channel(host.address, credentials) as channel:
        try:
            await delegation_pb2_grpc.DelegationServiceStub(channel).ListOverdueDelegations(
                OVERDUE_OF_GD0112, metadata=metadata, timeout=10
            )
        except grpc.aio.AioRpcError as error:
            return error.code(), reason_of(error)
    return grpc.StatusCode.OK, ""


def reason_of(error: grpc.aio.AioRpcError) -> str:
    details = dict(error.trailing_metadata() or ()).get("grpc-status-details-bin")
    if details is None:
        return ""
    info = error_details_pb2.ErrorInfo()
    for detail in status_pb2.Status.FromString(details).details:
        if detail.Unpack(info):
            return info.reason
    return ""


async def test_the_certificate_names_the_caller(mtls_service: ServiceHost, pki: Path) -> None:
    assert await call_as(mtls_service, pki, "court-gd0112") == grpc.StatusCode.OK
    assert await call_as(mtls_service, pki, "court-gd01") == grpc.StatusCode.OK  # its superior court
    assert await call_as(mtls_service, pki, "admin-ops") == grpc.StatusCode.OK
    assert await call_as(mtls_service, pki, "court-zj0326") == grpc.StatusCode.PERMISSION_DENIED
    assert await call_as(mtls_service, pki, "agency-bank-icbc") == grpc.StatusCode.PERMISSION_DENIED


async def test_a_header_cannot_override_the_certificate(mtls_service: ServiceHost, pki: Path) -> None:
    claimed = "dev:court:gd0112"  # zj0326 pretends to be gd0112
    assert await call_as(mtls_service, pki, "court-zj0326", token=claimed) == grpc.StatusCode.PERMISSION_DENIED


async def test_no_certificate_or_a_foreign_one_cannot_connect(mtls_service: ServiceHost, pki: Path) -> None:
    assert await call_as(mtls_service, pki, None) == grpc.StatusCode.UNAVAILABLE  # the handshake asks for one
    assert await call_as(mtls_service, pki, "forged-gd0112") == grpc.StatusCode.UNAVAILABLE  # not signed by our CA


async def test_plaintext_is_refused_by_a_tls_service(mtls_service: ServiceHost) -> None:
    async with grpc.aio.insecure_channel(mtls_service.address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await delegation_pb2_grpc.DelegationServiceStub(channel).ListOverdueDelegations(
                OVERDUE_OF_GD0112, metadata=dev_credentials("court", "gd0112"), timeout=5
            )
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_i15_p5_a_certificate_naming_no_known_court_or_agency_is_unauthenticated(
    mtls_service: ServiceHost, pki: Path
) -> None:
    for client in ("court-xx9999", "agency-bank-nowhere"):
        assert await answer_to(mtls_service, pki, client) == (grpc.StatusCode.UNAUTHENTICATED, "UNKNOWN_PRINCIPAL")


async def test_i15_p4_tls_without_a_client_ca_refuses_development_tokens(
    tmp_path: Path, nats_server: EmbeddedNatsServer, pki: Path
) -> None:
    host = await start(
        tmp_path, nats_server.url, ROGATORY_TLS_CERT_FILE=str(pki / "server.crt"), ROGATORY_TLS_KEY_FILE=str(pki / "server.key")
    )
    try:
        for token in ("dev:admin:anyone", "dev:court:gd0112"):
            assert await answer_to(host, pki, None, token=token) == (grpc.StatusCode.UNAUTHENTICATED, "DEV_TOKENS_OFF")
        assert await answer_to(host, pki, None) == (grpc.StatusCode.UNAUTHENTICATED, "NO_CREDENTIAL")
    finally:
        await host.stop()


async def test_i15_p4_development_tokens_under_tls_only_when_asked_for_and_loudly(
    tmp_path: Path, nats_server: EmbeddedNatsServer, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="services.plumbing.host")
    host = await start(
        tmp_path,
        nats_server.url,
        ROGATORY_TLS_CERT_FILE=str(pki / "server.crt"),
        ROGATORY_TLS_KEY_FILE=str(pki / "server.key"),
        ROGATORY_DEV_TOKENS="true",
    )
    try:
        assert await answer_to(host, pki, None, token="dev:admin:anyone") == (grpc.StatusCode.OK, "")
        assert await answer_to(host, pki, None, token="dev:court:zj0326") == (
            grpc.StatusCode.PERMISSION_DENIED,
            "NOT_SUPERVISING_COURT",
        )
    finally:
        await host.stop()
    warnings = [
        r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "ROGATORY_DEV_TOKENS" in r.getMessage()
    ]
    assert warnings and "development tokens" in warnings[0].lower(), [r.getMessage() for r in caplog.records]


async def test_dev_tokens_can_be_turned_off_without_mtls(tmp_path: Path, nats_server: EmbeddedNatsServer) -> None:
    host = await start(tmp_path, nats_server.url, ROGATORY_DEV_TOKENS="false")
    try:
        async with grpc.aio.insecure_channel(host.address) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await delegation_pb2_grpc.DelegationServiceStub(channel).ListOverdueDelegations(
                    OVERDUE_OF_GD0112, metadata=dev_credentials("court", "gd0112")
                )
    finally:
        await host.stop()
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_the_container_probe_speaks_mtls(mtls_service: ServiceHost, pki: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROGATORY_TLS_CERT_FILE", str(pki / "server.crt"))
    monkeypatch.setenv("ROGATORY_TLS_CLIENT_CA_FILE", str(pki / "ca.crt"))
    assert not await asyncio.to_thread(healthcheck.check, mtls_service.address)  # no client certificate: refused
    monkeypatch.setenv("ROGATORY_HEALTHCHECK_CERT_FILE", str(pki / "admin-healthcheck.crt"))
    monkeypatch.setenv("ROGATORY_HEALTHCHECK_KEY_FILE", str(pki / "admin-healthcheck.key"))
    assert await asyncio.to_thread(healthcheck.check, mtls_service.address)
