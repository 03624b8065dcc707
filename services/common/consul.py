"""The Consul adapter of the registry port, with py-consul's asyncio client.

py-consul is the maintained fork of python-consul (which no longer works on Python 3.12).
Consul has no lease to keep alive: the agent runs the instance's own gRPC health check, lists
only passing instances, and deregisters one whose check stays critical (a dead process).
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import structlog

from services.common.registry import ServiceInstance

log = structlog.get_logger("registry")


def _client(url: str) -> Any:
    import consul
    import consul.aio

    parts = urlsplit(url)
    # py-consul 1.8 still hands aiohttp its deprecated `verify_ssl`/`ssl_context` arguments.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return consul.aio.Consul(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 8500,
            scheme=parts.scheme or "http",
        )


def _instance(entry: Mapping[str, Any]) -> ServiceInstance | None:
    service = entry.get("Service") or {}
    meta = service.get("Meta") or {}
    try:
        return ServiceInstance(
            service=str(service["Service"]),
            instance_id=str(service["ID"]),
            address=str(service.get("Address") or entry.get("Node", {}).get("Address", "")),
            grpc_port=int(service["Port"]),
            ops_port=int(meta.get("ops_port", 0)),
            replica=int(meta.get("replica", 0)),
            version=str(meta.get("version", "")),
        )
    except (KeyError, ValueError, TypeError):
        return None


class ConsulRegistry:
    """Registers with a gRPC health check; watches with blocking health queries."""

    def __init__(self, url: str, *, ttl_seconds: int = 10) -> None:
        self._url = url
        # The check runs every third of the TTL; a check critical for a minute deregisters.
        self._interval = f"{max(1, ttl_seconds // 3)}s"
        self._consul: Any = None

    def _agent(self) -> Any:
        if self._consul is None:
            self._consul = _client(self._url)
        return self._consul

    async def register(self, instance: ServiceInstance, *, health_service: str) -> None:
        """Register with Consul's own gRPC health check of `health_service`."""
        import consul

        # The agent has no mesh certificate: it checks the plaintext health-only port when
        # the instance serves one (it must, wherever the main port is mTLS).
        checked_port = instance.health_port or instance.grpc_port
        check = consul.Check.grpc(
            f"{instance.address}:{checked_port}/{health_service}",
            self._interval,
            timeout="2s",
            deregister="1m",
        )
        await self._agent().agent.service.register(
            instance.service,
            service_id=instance.instance_id,
            address=instance.address,
            port=instance.grpc_port,
            tags=["grpc"],
            meta={
                "ops_port": str(instance.ops_port),
                "replica": str(instance.replica),
                "version": instance.version,
            },
            check=check,
        )
        log.info("registered", service_id=instance.instance_id)

    async def deregister(self, instance: ServiceInstance) -> None:
        """Remove the instance from the agent, and with it its check."""
        await self._agent().agent.service.deregister(instance.instance_id)
        log.info("deregistered", service_id=instance.instance_id)

    async def instances(self, service: str) -> list[ServiceInstance]:
        """The instances of `service` whose health check passes."""
        _, entries = await self._agent().health.service(service, passing=True)
        return sorted(i for i in map(_instance, entries or []) if i is not None)

    async def watch(self, service: str) -> AsyncIterator[list[ServiceInstance]]:
        """Blocking queries: each answers as soon as the passing set changes (or after 30 s)."""
        index: str | None = None
        last: list[ServiceInstance] | None = None
        while True:
            try:
                index, entries = await self._agent().health.service(
                    service, passing=True, index=index, wait="30s"
                )
            except Exception as error:  # py-consul raises its own and aiohttp's errors
                log.warning("watch_failed", service=service, error=repr(error))
                index = None
                await asyncio.sleep(1.0)
                continue
            found = sorted(i for i in map(_instance, entries or []) if i is not None)
            if found != last:
                last = found
                yield found

    async def close(self) -> None:
        """Close the agent's HTTP session."""
        if self._consul is not None:
            await self._consul.close()
