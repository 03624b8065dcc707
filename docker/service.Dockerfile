# One image per service: `docker build -f docker/service.Dockerfile --build-arg SERVICE=user .`
# (user, product or order). It holds the chassis plus that service's own dependency group from
# uv.lock: no dev servers, no compilers, no other service's drivers.
#
# Base images are pinned by exact tag. To pin by digest as well (recommended; Dependabot's
# docker updater keeps FROM lines current, see .github/dependabot.yml), run
#   docker buildx imagetools inspect python:3.12.12-slim-bookworm --format '{{json .Manifest.Digest}}'
# and append @sha256:<digest> to each FROM line. The machines this repository is developed on
# cannot reach an image registry, so no digest was written here unverified.
FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

FROM python:3.12.12-slim-bookworm AS build
ARG SERVICE
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, in their own layer: they change far less often than the code.
COPY pyproject.toml uv.lock README.md ./
COPY gen/pyproject.toml gen/pyproject.toml
COPY clients/marketplace-client/pyproject.toml clients/marketplace-client/pyproject.toml
RUN test -n "${SERVICE}" \
    && uv sync --frozen --no-default-groups --group "${SERVICE}" \
        --no-install-project --no-install-workspace
COPY gen/ gen/
COPY clients/marketplace-client/ clients/marketplace-client/
COPY services/ services/
# --no-editable installs the code into the venv, so the runtime stage needs no source tree.
RUN uv sync --frozen --no-default-groups --group "${SERVICE}" --no-editable

FROM python:3.12.12-slim-bookworm
ARG SERVICE
# checkov:skip=CKV_DOCKER_2: Kubernetes probes the container (gRPC, HTTPS or the Job's exit code); a HEALTHCHECK is ignored there
LABEL org.opencontainers.image.title="marketplace-${SERVICE}" \
      org.opencontainers.image.source="https://github.com/example/marketplace"
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin marketplace
COPY --from=build /app/.venv /app/.venv
# Bytecode was compiled at build time; nothing is written at run time, so the root file
# system can be mounted read-only.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MARKETPLACE_SERVICE=${SERVICE}
WORKDIR /app
USER 10001:10001
EXPOSE 50051 9464
# The module is chosen at build time; Kubernetes manifests also name it in `args`.
CMD ["sh", "-c", "exec python -m \"services.${MARKETPLACE_SERVICE}\""]
