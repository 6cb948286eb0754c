"""The deployment files: compose.yaml, Dockerfile and .dockerignore describe the production shape.

Docker is not needed: the files are parsed and checked against the brief ("Scale beyond one
machine") and against the environment variables the services really read
(services/plumbing/config.py), so a typo in compose.yaml fails here, not in production.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from services.plumbing.config import Settings
from services.tools.launcher import MODULES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"

NATS_NODES = ("nats-1", "nats-2", "nats-3")
# service -> (its listen-address variable, its gRPC port)
ROGATORY = {
    "registry": ("REGISTRY_ADDR", 50051),
    "delegation": ("DELEGATION_ADDR", 50052),
    "assistance": ("ASSISTANCE_ADDR", 50053),
    "audit": ("AUDIT_ADDR", 50054),
    "turnaround": ("TURNAROUND_ADDR", 50055),
}

_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any) -> Any:
    """Compose's `${NAME:-default}` interpolation with an empty environment: the defaults."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        op, arg = match.group("op"), match.group("arg")
        if op in (":-", "-"):
            return arg
        raise AssertionError(f"compose.yaml needs ${{{match.group('name')}}} to be set; give it a default")

    return _VARIABLE.sub(substitute, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(document, dict) and "services" in document
    return interpolate(document)


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): "" if value is None else str(value) for key, value in env.items()}


def published(service: dict[str, Any]) -> dict[int, int]:
    """container port -> host port."""
    result: dict[int, int] = {}
    for port in service.get("ports") or []:
        if isinstance(port, dict):
            result[int(port["target"])] = int(port.get("published", port["target"]))
        else:
            parts = str(port).split("/")[0].split(":")
            result[int(parts[-1])] = int(parts[-2]) if len(parts) > 1 else int(parts[-1])
    return result


def container_ports(service: dict[str, Any]) -> set[int]:
    return set(published(service)) | {int(str(p).split("/")[0]) for p in service.get("expose") or []}


def command(service: dict[str, Any]) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(part) for part in cmd]


def flag(args: list[str], *names: str) -> str | None:
    """The value of `--name value`, `--name=value` or `-name value`, else None."""
    for index, arg in enumerate(args):
        for name in names:
            if arg == name and index + 1 < len(args):
                return args[index + 1]
            if arg.startswith(f"{name}="):
                return arg.split("=", 1)[1]
    return None


def healthcheck_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    if isinstance(test, list):
        assert test[0] in ("CMD", "CMD-SHELL"), test
        return " ".join(test[1:])
    return test


def trace_ui_name(services: dict[str, dict[str, Any]]) -> str:
    endpoints = {environment(services[name]).get("OTEL_EXPORTER_OTLP_ENDPOINT") for name in ROGATORY}
    assert len(endpoints) == 1, f"all services should export to one trace backend: {endpoints}"
    host = urlsplit(endpoints.pop() or "").hostname
    assert host in services, f"OTEL_EXPORTER_OTLP_ENDPOINT names {host!r}, which is not a compose service"
    return host


def test_the_production_shape_is_all_there(services: dict[str, dict[str, Any]]) -> None:
    missing = {*ROGATORY, "postgres", *NATS_NODES} - set(services)
    assert not missing, f"compose.yaml lacks {sorted(missing)}"
    trace_ui_name(services)


def test_trace_ui_accepts_otlp_and_serves_a_ui(services: dict[str, dict[str, Any]]) -> None:
    name = trace_ui_name(services)
    trace_ui = services[name]
    assert "image" in trace_ui
    ports = container_ports(trace_ui)
    assert 4317 in ports, "OTLP/gRPC port 4317 must be reachable"
    assert published(trace_ui).get(16686) == 16686 or "jaeger" not in trace_ui["image"], "Jaeger UI on 16686"
    if "jaeger" in trace_ui["image"]:
        assert environment(trace_ui).get("COLLECTOR_OTLP_ENABLED") == "true"
    for service in ROGATORY:
        assert environment(services[service])["OTEL_EXPORTER_OTLP_ENDPOINT"] == f"http://{name}:4317"


@pytest.mark.parametrize("service", sorted(ROGATORY))
def test_rogatory_service_is_built_from_the_dockerfile(services: dict[str, dict[str, Any]], service: str) -> None:
    spec = services[service]
    build = spec["build"]
    if isinstance(build, str):
        build = {"context": build}
    context, dockerfile = build.get("context", "."), build.get("dockerfile", "Dockerfile")
    assert (ROOT / context / dockerfile).is_file()
    assert command(spec) == [MODULES[service]], "the image's entrypoint is `python -m`"
    assert spec.get("restart") == "unless-stopped"
    assert spec.get("stop_grace_period") == "30s"


@pytest.mark.parametrize("service", sorted(ROGATORY))
def test_rogatory_service_environment(services: dict[str, dict[str, Any]], compose: dict[str, Any], service: str) -> None:
    addr_var, port = ROGATORY[service]
    env = environment(services[service])

    nats_servers = env["NATS_URL"].split(",")
    assert sorted(nats_servers) == [f"nats://{node}:4222" for node in NATS_NODES]

    db = urlsplit(env["DATABASE_URL"])
    assert db.scheme == "postgresql+asyncpg"
    assert (db.hostname, db.port) == ("postgres", 5432)
    postgres_env = environment(services["postgres"])
    assert db.path.lstrip("/") == postgres_env["POSTGRES_DB"]
    assert db.username == postgres_env["POSTGRES_USER"]
    assert db.password == postgres_env["POSTGRES_PASSWORD"]

    assert env["ROGATORY_STREAM_REPLICAS"] == "3"
    assert env[addr_var] == f"0.0.0.0:{port}"
    assert env["OTEL_SERVICE_NAME"] == f"rogatory-{service}"
    assert published(services[service]).get(port) == port

    # The other services' addresses are theirs to set; setting them here would be a mistake.
    for other, (other_var, _) in ROGATORY.items():
        if other != service:
            assert other_var not in env


@pytest.mark.parametrize("service", sorted(ROGATORY))
def test_every_variable_set_on_a_service_is_one_it_reads(services: dict[str, dict[str, Any]], service: str) -> None:
    aliases = {field.alias for field in Settings.model_fields.values() if field.alias}
    assert {"NATS_URL", "DATABASE_URL", "ROGATORY_STREAM_REPLICAS", "REGISTRY_ADDR"} <= aliases
    unknown = {key for key in environment(services[service]) if not key.startswith("OTEL_")} - aliases
    assert not unknown, f"{service} sets {sorted(unknown)}, which Settings does not read (typo?)"


@pytest.mark.parametrize("service", sorted(ROGATORY))
def test_shutdown_grace_fits_in_the_stop_grace_period(services: dict[str, dict[str, Any]], service: str) -> None:
    env = environment(services[service])
    grace = float(env.get("ROGATORY_SHUTDOWN_GRACE", Settings.model_fields["shutdown_grace"].default))
    stop_after = int(services[service]["stop_grace_period"].removesuffix("s"))
    assert grace < stop_after, "in-flight RPCs and the outbox flush must finish before SIGKILL"


@pytest.mark.parametrize("service", sorted(ROGATORY))
def test_rogatory_service_waits_for_healthy_postgres_and_nats(services: dict[str, dict[str, Any]], service: str) -> None:
    depends_on = services[service]["depends_on"]
    assert isinstance(depends_on, dict), "long syntax, so the condition can be service_healthy"
    for dependency in ("postgres", *NATS_NODES):
        assert depends_on[dependency]["condition"] == "service_healthy", dependency
        assert "healthcheck" in services[dependency], f"{dependency} needs a healthcheck to become healthy"


@pytest.mark.parametrize("service", sorted(ROGATORY))
def test_rogatory_service_healthcheck_uses_grpc_health(services: dict[str, dict[str, Any]], service: str) -> None:
    _, port = ROGATORY[service]
    assert healthcheck_test(services[service]) == f"python -m services.tools.healthcheck 127.0.0.1:{port}"


def test_healthcheck_module_exists() -> None:
    spec = importlib.util.find_spec("services.tools.healthcheck")
    assert spec is not None and spec.origin and Path(spec.origin).is_file()


@pytest.mark.parametrize("node", NATS_NODES)
def test_nats_node_is_a_jetstream_cluster_member(services: dict[str, dict[str, Any]], node: str) -> None:
    spec = services[node]
    assert spec["image"] == "nats:2.10-alpine"
    args = command(spec)
    assert "-js" in args or "--jetstream" in args
    assert flag(args, "--server_name", "-n", "--name") == node
    assert flag(args, "--cluster_name") == "rogatory"
    assert flag(args, "--cluster") == "nats://0.0.0.0:6222"

    routes = (flag(args, "--routes") or "").split(",")
    others = [other for other in NATS_NODES if other != node]
    assert sorted(routes) == [f"nats://{other}:6222" for other in others]

    store_dir = flag(args, "--store_dir", "-sd")
    assert store_dir, "JetStream data must live on a volume"
    named_volumes = {str(v).split(":")[0]: str(v).split(":")[1] for v in spec.get("volumes", []) if isinstance(v, str)}
    assert store_dir in named_volumes.values()
    volume = next(name for name, path in named_volumes.items() if path == store_dir)
    assert not volume.startswith((".", "/")), "a named volume, not a bind mount"

    assert flag(args, "--http_port", "-m") == "8222"
    check = healthcheck_test(spec)
    assert check.startswith("wget -qO-") and "http://localhost:8222/healthz?js-enabled-only=true" in check


def test_nats_nodes_have_their_own_volumes(compose: dict[str, Any]) -> None:
    volumes = [str(compose["services"][node]["volumes"][0]).split(":")[0] for node in NATS_NODES]
    assert len(set(volumes)) == 3
    assert set(volumes) <= set(compose.get("volumes") or {})


def test_postgres(compose: dict[str, Any]) -> None:
    spec = compose["services"]["postgres"]
    assert spec["image"].startswith("postgres:16")
    env = environment(spec)
    assert env["POSTGRES_DB"] == "rogatory"
    assert env["POSTGRES_USER"] and env["POSTGRES_PASSWORD"], "defaults for user and password"
    assert "pg_isready" in healthcheck_test(spec)
    data = [str(v) for v in spec["volumes"] if str(v).endswith(":/var/lib/postgresql/data")]
    assert data and data[0].split(":")[0] in (compose.get("volumes") or {})


def test_user_and_password_are_overridable(compose: dict[str, Any]) -> None:
    raw = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "${POSTGRES_USER:-" in raw and "${POSTGRES_PASSWORD:-" in raw


def dockerfile_instructions() -> list[str]:
    """The Dockerfile's instructions, comments dropped and `\\` continuations joined."""
    instructions: list[str] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line.removesuffix(chr(92)).strip()}".strip()
        if not line.endswith(chr(92)):
            instructions.append(pending)
            pending = ""
    return instructions


def test_dockerfile() -> None:
    instructions = dockerfile_instructions()
    stages = [line for line in instructions if line.upper().startswith("FROM ")]
    assert len(stages) >= 2, "multi-stage"
    assert any("python:3.11-slim" in line for line in instructions)
    runs = " ".join(line for line in instructions if line.startswith("RUN "))
    assert re.search(r"pip install \.(\s|&|$)", runs) and "pip install -e" not in runs, "a regular, non-editable install"
    users = [line.split()[1] for line in instructions if line.upper().startswith("USER ")]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as a non-root user"
    assert any(line.startswith("HEALTHCHECK") and "python -m services.tools.healthcheck" in line for line in instructions)
    assert 'ENTRYPOINT ["python", "-m"]' in instructions


def test_dockerfile_copies_every_packaged_directory() -> None:
    copied = {
        part.rstrip("/")
        for line in dockerfile_instructions()
        if line.startswith("COPY ") and "--from=" not in line
        for part in line.split()[1:-1]
    }
    # pyproject.toml packages registry*, delegation*, assistance*, services* from . and
    # the generated `rogatory` package from protos/.
    assert {"pyproject.toml", "registry", "delegation", "assistance", "services", "protos"} <= copied


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    entries = {line.strip().rstrip("/").removeprefix("**/") for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".venv", "var", ".git", "__pycache__", "tests/artifacts"} <= entries


def test_prometheus_scrapes_every_service(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(compose["configs"]["prometheus-config"]["content"])
    targets = {t for job in config["scrape_configs"] for group in job["static_configs"] for t in group["targets"]}
    assert targets == {f"{service}:9464" for service in ROGATORY}
    for service in ROGATORY:
        env = environment(services[service])
        assert env[f"{service.upper()}_METRICS_ADDR"] == "0.0.0.0:9464"
        assert env["OTEL_METRICS_EXPORTER"] == "prometheus"  # Jaeger takes traces, not metrics
    assert services["prometheus"]["configs"][0]["target"] == "/etc/prometheus/prometheus.yml"
