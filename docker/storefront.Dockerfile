# The storefront (web/): built with Node from its lock, served as static files by unprivileged
# nginx on 8080 behind the edge, which routes the app's page loads to it.
# `docker build -f docker/storefront.Dockerfile .`
#
# Pinning by digest: see docker/service.Dockerfile (same procedure for every image).

FROM node:20.19.5-bookworm-slim AS build
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY web/index.html web/vite.config.ts web/tsconfig.json ./
COPY web/src ./src
RUN npm run build

FROM nginxinc/nginx-unprivileged:1.27.5-alpine
# checkov:skip=CKV_DOCKER_2: Kubernetes probes the container (/healthz); a HEALTHCHECK is ignored there
LABEL org.opencontainers.image.title="marketplace-storefront" \
      org.opencontainers.image.source="https://github.com/example/marketplace"
COPY docker/storefront.nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=build /web/dist /usr/share/nginx/html
USER 10001:10001
EXPOSE 8080
