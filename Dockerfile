# syntax=docker/dockerfile:1
#
# One image for all three Rogatory services; the module to run is the command:
#
#   docker run rogatory services.registry.main     (the default)
#   docker run rogatory services.delegation.main
#   docker run rogatory services.assistance.main
#
# Stage 1 builds a virtualenv with the project installed as a regular (non-editable)
# package: the domain packages, services/ (with its Alembic migrations and reference
# CSVs as package data) and the generated protobuf code under protos/rogatory, which
# pyproject.toml packages as `rogatory`. Stage 2 copies only that virtualenv, so no
# source tree, pip cache or build tooling ships.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the package is built from (see .dockerignore for the rest). The import check
# runs from / so it proves the installed package, not the source tree, is complete.
COPY pyproject.toml README.md ./
COPY protos/ protos/
COPY registry/ registry/
COPY delegation/ delegation/
COPY assistance/ assistance/
COPY services/ services/
COPY rogatory_client/ rogatory_client/
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --upgrade pip \
    && pip install . \
    && cd / \
    && python -c "import rogatory.registry.v1.registry_pb2, rogatory_client, services.registry.main, services.delegation.main, services.assistance.main, services.tools.healthcheck"

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ROGATORY_DATA_DIR=/app/var \
    HEALTHCHECK_ADDR=127.0.0.1:50051
# A fixed numeric uid/gid so orchestrators can verify runAsNonRoot and volumes can be
# chowned ahead of time.
RUN groupadd --system --gid 10001 rogatory \
    && useradd --system --uid 10001 --gid rogatory --home-dir /app --shell /usr/sbin/nologin rogatory \
    && mkdir -p /app/var \
    && chown -R rogatory:rogatory /app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER 10001:10001

# Documentation only; each service listens where its *_ADDR variable says.
EXPOSE 50051 50052 50053

# Standard gRPC health service; NOT_SERVING while draining on SIGTERM. Compose sets the
# port per service; HEALTHCHECK_ADDR does the same for `docker run`.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD python -m services.tools.healthcheck "$HEALTHCHECK_ADDR"

# exec form: python is PID 1's child under `init: true` (or PID 1 itself) and receives
# SIGTERM directly, which the service host turns into a graceful drain.
ENTRYPOINT ["python", "-m"]
CMD ["services.registry.main"]
