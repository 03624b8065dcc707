"""Service registration in Consul, the registry of the mesh outside Kubernetes.

Two calls of the agent's HTTP API (`PUT /v1/agent/service/register` and
`PUT /v1/agent/service/deregister/:id`) are all the chassis needs, so it speaks them with
aiohttp directly.
"""

from __future__ import annotations

import socket

import aiohttp
import structlog

log = structlog.get_logger("registry")


class ConsulRegistration:
    """Registers one running server with a gRPC health check, and deregisters it on shutdown.

    Consul then routes only to instances whose gRPC health check passes, and the chassis turns
    that check NOT_SERVING before it drains, so traffic leaves before the server stops.
    """

    def __init__(
        self,
        consul_url: str,
        *,
        name: str,
        address: str,
        port: int,
        health_service: str,
        check_interval: str = "5s",
    ) -> None:
        self._url = consul_url.rstrip("/")
        self.name = name
        self.service_id = f"{name}-{socket.gethostname()}-{port}"
        self._definition = {
            "ID": self.service_id,
            "Name": name,
            "Address": address,
            "Port": port,
            "Tags": ["grpc"],
            "Check": {
                "GRPC": f"{address}:{port}/{health_service}",
                "Interval": check_interval,
                "Timeout": "2s",
                "DeregisterCriticalServiceAfter": "1m",
            },
        }
        self._timeout = aiohttp.ClientTimeout(total=3)

    async def register(self) -> bool:
        """Register the instance; a registry that is down is logged, not fatal."""
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.put(
                    f"{self._url}/v1/agent/service/register", json=self._definition
                ) as response:
                    response.raise_for_status()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.error("consul_register_failed", service_id=self.service_id, error=str(error))
            return False
        log.info("consul_registered", service_id=self.service_id)
        return True

    async def deregister(self) -> None:
        """Remove the instance, so no new traffic is routed to it."""
        try:
            async with aiohttp.ClientSession(timeout=self._timeout) as session:
                async with session.put(
                    f"{self._url}/v1/agent/service/deregister/{self.service_id}"
                ) as response:
                    response.raise_for_status()
        except (aiohttp.ClientError, TimeoutError) as error:
            log.error("consul_deregister_failed", service_id=self.service_id, error=str(error))
        else:
            log.info("consul_deregistered", service_id=self.service_id)
