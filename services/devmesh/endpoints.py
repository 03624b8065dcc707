"""The edge's endpoints from the registry: EDS files the dev mesh keeps equal to etcd.

Envoy reads each cluster's ClusterLoadAssignment from `<dir>/<cluster>.json` and reloads it
when a file is moved into the watched directory, so every change is written to a temporary
file in the same directory and renamed over the old one: Envoy never reads half a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from services.common.etcd import EtcdRegistry
from services.common.registry import ServiceInstance

ASSIGNMENT_TYPE = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
# The cluster that fetches the JWKS reaches the user service's ops (HTTP) port.
OPS_CLUSTERS = {"user": "user_ops"}


def assignment(cluster: str, addresses: Iterable[tuple[str, int]], version: int) -> str:
    """A DiscoveryResponse holding the cluster's endpoints, as Envoy's file EDS reads it."""
    endpoints = [
        {"endpoint": {"address": {"socket_address": {"address": host, "port_value": port}}}}
        for host, port in sorted(set(addresses))
    ]
    return json.dumps(
        {
            "version_info": str(version),
            "resources": [
                {
                    "@type": ASSIGNMENT_TYPE,
                    "cluster_name": cluster,
                    "endpoints": [{"lb_endpoints": endpoints}] if endpoints else [],
                }
            ],
        },
        indent=1,
    )


class EndpointFiles:
    """Writes the endpoint files of a directory atomically (a rename into the watched dir)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._version = 0
        self._lock = threading.Lock()

    def path(self, cluster: str) -> Path:
        """The file of `cluster`."""
        return self.directory / f"{cluster}.json"

    def write(self, cluster: str, addresses: Iterable[tuple[str, int]]) -> None:
        """Replace the cluster's endpoints."""
        with self._lock:
            self._version += 1
            text = assignment(cluster, addresses, self._version)
            temporary = self.directory / f".{cluster}.{os.getpid()}.tmp"
            temporary.write_text(text)
            os.replace(temporary, self.path(cluster))

    def publish(self, service: str, instances: Sequence[ServiceInstance]) -> None:
        """The service's cluster (gRPC ports) and, for the user service, its ops cluster."""
        self.write(service, [(i.address, i.grpc_port) for i in instances])
        if service in OPS_CLUSTERS:
            self.write(OPS_CLUSTERS[service], [(i.address, i.ops_port) for i in instances])


class EndpointPublisher:
    """A background thread following etcd and rewriting the files within a moment of a change."""

    def __init__(self, etcd_url: str, files: EndpointFiles, services: Sequence[str]) -> None:
        self._etcd_url = etcd_url
        self._files = files
        self._services = services
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = asyncio.Event()
        self._stop_asked = threading.Event()
        self._thread = threading.Thread(target=self._run, name="eds-publisher", daemon=True)
        self.published: dict[str, list[ServiceInstance]] = {}

    def start(self) -> EndpointPublisher:
        """Start following the registry."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop following; the files stay as they are."""
        self._stop_asked.set()
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # its loop already ended
                self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        if self._stop_asked.is_set():
            return
        registry = EtcdRegistry(self._etcd_url)
        followers = [asyncio.create_task(self._follow(registry, s)) for s in self._services]
        try:
            await self._stopped.wait()
        finally:
            for follower in followers:
                follower.cancel()
            for follower in followers:
                with contextlib.suppress(asyncio.CancelledError):
                    await follower
            await registry.close()

    async def _follow(self, registry: EtcdRegistry, service: str) -> None:
        async for instances in registry.watch(service):
            self.published[service] = instances
            self._files.publish(service, instances)
