"""The service registry port: instances register with a lease, callers watch who is there.

Two adapters implement it: etcd (`services.common.etcd`, what the dev mesh and the tests run)
and Consul (`services.common.consul`, for deployments that run Consul). On Kubernetes there is
no registry setting: headless Services and the cluster DNS do this job.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Protocol

# Every instance is the key <prefix><service>/<instance id>, its value ServiceInstance's JSON.
KEY_PREFIX = "/marketplace/services/"


class RegistryKind(StrEnum):
    """Which registry an instance registers in (the REGISTRY_KIND setting)."""

    ETCD = "etcd"
    CONSUL = "consul"


@dataclass(frozen=True, order=True)
class ServiceInstance:
    """One running instance of a service, as the registry lists it."""

    service: str
    instance_id: str
    address: str
    grpc_port: int
    ops_port: int
    replica: int = 0
    version: str = ""
    # The plaintext health-only port (0: none); the main port demands a mesh certificate,
    # which a registry's own health checker (Consul's agent) does not have.
    health_port: int = 0

    @property
    def target(self) -> str:
        """host:port of its gRPC server."""
        return f"{self.address}:{self.grpc_port}"

    @property
    def key(self) -> str:
        """Its key in the registry."""
        return f"{KEY_PREFIX}{self.service}/{self.instance_id}"

    def to_json(self) -> str:
        """The registry value: address, ports, replica number and version."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> ServiceInstance:
        """Parse a registry value; unknown fields from newer versions are ignored."""
        data = json.loads(text)
        return cls(
            service=str(data["service"]),
            instance_id=str(data["instance_id"]),
            address=str(data["address"]),
            grpc_port=int(data["grpc_port"]),
            ops_port=int(data.get("ops_port", 0)),
            replica=int(data.get("replica", 0)),
            version=str(data.get("version", "")),
            health_port=int(data.get("health_port", 0)),
        )


def instance_id(service: str, replica: int, grpc_port: int) -> str:
    """A name unique across hosts and replicas, readable in logs."""
    return f"{service}-{replica}-{socket.gethostname()}-{grpc_port}"


class Registry(Protocol):
    """Where instances announce themselves and callers find them.

    An instance `register`s after its health turns SERVING and `deregister`s before it drains;
    the registration lives on a lease the adapter keeps alive, so an instance that dies
    without deregistering disappears when the lease (or Consul's health check) runs out.
    """

    async def register(self, instance: ServiceInstance, *, health_service: str) -> None:
        """Announce `instance` and keep its lease alive until `deregister` or `close`."""
        ...

    async def deregister(self, instance: ServiceInstance) -> None:
        """Withdraw `instance` at once, so callers stop picking it."""
        ...

    async def instances(self, service: str) -> list[ServiceInstance]:
        """The instances of `service` registered now, sorted."""
        ...

    def watch(self, service: str) -> AsyncIterator[list[ServiceInstance]]:
        """The instances of `service` now, then again after every change; never ends."""
        ...

    async def close(self) -> None:
        """Stop keep-alives and watches and release connections (leases then expire)."""
        ...


def make_registry(
    kind: RegistryKind | None, url: str | None, *, ttl_seconds: int = 10
) -> Registry | None:
    """The configured registry, or None when there is none (Kubernetes: DNS is the registry)."""
    if kind is None or not url:
        return None
    if kind is RegistryKind.ETCD:
        from services.common.etcd import EtcdRegistry

        return EtcdRegistry(url, ttl_seconds=ttl_seconds)
    from services.common.consul import ConsulRegistry

    return ConsulRegistry(url, ttl_seconds=ttl_seconds)


@asynccontextmanager
async def open_registry(
    kind: RegistryKind | None, url: str | None, *, ttl_seconds: int = 10
) -> AsyncIterator[Registry | None]:
    """`make_registry` for the block, closed after it (keep-alives stop, leases run out)."""
    registry = make_registry(kind, url, ttl_seconds=ttl_seconds)
    try:
        yield registry
    finally:
        if registry is not None:
            await registry.close()
