"""The etcd adapter of the registry port, over etcd's v3 JSON gateway (HTTP, aiohttp).

The gateway is part of every etcd server (`/v3/lease/grant`, `/v3/kv/put`, `/v3/watch`...),
so the adapter needs no client library of its own: etcd3aio, the asyncio gRPC client, puts
its bundled copies of `google/api/*.proto` first on `sys.path`, over the
googleapis-common-protos this project's generated code imports. Bytes fields travel as
base64, int64 fields as strings, streams as one JSON object per line.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import structlog

from services.common.registry import KEY_PREFIX, ServiceInstance

log = structlog.get_logger("registry")

_REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=3)
# A watch stays open as long as etcd is up; only connecting is bounded.
_WATCH_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=3)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _range_end(prefix: str) -> str:
    """The first key after every key starting with `prefix` (etcd's prefix range)."""
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


def service_prefix(service: str) -> str:
    """The key prefix of one service's instances."""
    return f"{KEY_PREFIX}{service}/"


class EtcdError(RuntimeError):
    """etcd answered with an error, or not at all."""


class EtcdRegistry:
    """Registers instances on leases kept alive in the background, and watches prefixes.

    A lease that etcd lost (etcd restarted, or keep-alives were late for a whole TTL) is
    noticed by the next keep-alive, which answers TTL 0: the instance is registered again
    on a new lease, so a registry outage costs a few seconds of visibility, never the instance.
    """

    def __init__(self, url: str, *, ttl_seconds: int = 10) -> None:
        self._url = url.rstrip("/")
        self._ttl = max(2, ttl_seconds)
        self._session: aiohttp.ClientSession | None = None
        self._keepers: dict[str, asyncio.Task[None]] = {}
        self._leases: dict[str, int] = {}

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop that uses it.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            async with self._http().post(
                f"{self._url}{path}", json=body, timeout=_REQUEST_TIMEOUT
            ) as response:
                payload: dict[str, Any] = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise EtcdError(f"{path}: {error!r}") from error
        if response.status != 200 or "error" in payload or "code" in payload:
            raise EtcdError(f"{path}: HTTP {response.status} {payload}")
        return payload

    async def grant_lease(self) -> int:
        """A new lease of the registry's TTL."""
        granted = await self._call("/v3/lease/grant", {"TTL": self._ttl})
        return int(granted["ID"])

    async def keep_alive_once(self, lease: int) -> int:
        """Renew `lease`; the TTL left (0 when etcd no longer knows the lease)."""
        answer = await self._call("/v3/lease/keepalive", {"ID": lease})
        return int(answer.get("result", {}).get("TTL", 0))

    async def _put(self, instance: ServiceInstance) -> None:
        lease = await self.grant_lease()
        body = {"key": _b64(instance.key), "value": _b64(instance.to_json()), "lease": lease}
        await self._call("/v3/kv/put", body)
        self._leases[instance.key] = lease

    async def register(self, instance: ServiceInstance, *, health_service: str) -> None:
        """Put the instance on a fresh lease and keep the lease alive every third of its TTL.

        `health_service` is not needed here: callers and Envoy check health themselves.
        """
        await self._put(instance)
        self._keepers[instance.key] = asyncio.create_task(
            self._keep(instance), name=f"etcd-keepalive-{instance.instance_id}"
        )
        log.info("registered", key=instance.key, ttl_s=self._ttl)

    async def _keep(self, instance: ServiceInstance) -> None:
        interval = self._ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                lease = self._leases.get(instance.key)
                if lease is None or await self.keep_alive_once(lease) <= 0:
                    log.warning("lease_lost", key=instance.key)
                    await self._put(instance)
            except EtcdError as error:
                log.warning("keepalive_failed", key=instance.key, error=str(error))

    async def deregister(self, instance: ServiceInstance) -> None:
        """Stop the keep-alive and revoke the lease, which deletes the key at once."""
        keeper = self._keepers.pop(instance.key, None)
        if keeper is not None:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        lease = self._leases.pop(instance.key, None)
        if lease is None:
            return
        try:
            await self._call("/v3/lease/revoke", {"ID": lease})
        except EtcdError as error:
            # The lease still runs out on its own within the TTL.
            log.warning("deregister_failed", key=instance.key, error=str(error))
        else:
            log.info("deregistered", key=instance.key)

    async def _range(self, prefix: str) -> tuple[dict[str, ServiceInstance], int]:
        answer = await self._call(
            "/v3/kv/range", {"key": _b64(prefix), "range_end": _range_end(prefix)}
        )
        found: dict[str, ServiceInstance] = {}
        for kv in answer.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode()
            with contextlib.suppress(ValueError, KeyError, TypeError):
                found[key] = ServiceInstance.from_json(base64.b64decode(kv.get("value", "")))
        return found, int(answer["header"]["revision"])

    async def instances(self, service: str) -> list[ServiceInstance]:
        """The instances of `service` registered now."""
        found, _ = await self._range(service_prefix(service))
        return sorted(found.values())

    async def watch(self, service: str) -> AsyncIterator[list[ServiceInstance]]:
        """The instances now, then after every change; reconnects (and re-reads) after errors."""
        prefix = service_prefix(service)
        backoff = 0.2
        while True:
            try:
                found, revision = await self._range(prefix)
                yield sorted(found.values())
                async for changed in self._follow(prefix, found, revision):
                    backoff = 0.2
                    yield changed
            except EtcdError as error:
                log.warning("watch_failed", service=service, error=str(error))
            await asyncio.sleep(backoff)
            backoff = min(5.0, backoff * 2)

    async def _follow(
        self, prefix: str, found: dict[str, ServiceInstance], revision: int
    ) -> AsyncIterator[list[ServiceInstance]]:
        request = {
            "create_request": {
                "key": _b64(prefix),
                "range_end": _range_end(prefix),
                "start_revision": revision + 1,
            }
        }
        try:
            async with self._http().post(
                f"{self._url}/v3/watch", json=request, timeout=_WATCH_TIMEOUT
            ) as response:
                if response.status != 200:
                    raise EtcdError(f"/v3/watch: HTTP {response.status}")
                async for line in response.content:
                    if not line.strip():
                        continue
                    result = json.loads(line).get("result", {})
                    if result.get("canceled") or result.get("compact_revision"):
                        raise EtcdError(f"watch cancelled: {result}")
                    events = result.get("events", [])
                    for event in events:
                        kv = event["kv"]
                        key = base64.b64decode(kv["key"]).decode()
                        if event.get("type") == "DELETE":
                            found.pop(key, None)
                        else:
                            with contextlib.suppress(ValueError, KeyError, TypeError):
                                found[key] = ServiceInstance.from_json(
                                    base64.b64decode(kv.get("value", ""))
                                )
                    if events:
                        yield sorted(found.values())
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise EtcdError(f"/v3/watch: {error!r}") from error
        raise EtcdError("/v3/watch: etcd closed the stream")

    async def close(self) -> None:
        """Stop every keep-alive (the leases then expire) and close the HTTP session."""
        for keeper in self._keepers.values():
            keeper.cancel()
        for keeper in self._keepers.values():
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        self._keepers.clear()
        if self._session is not None:
            await self._session.close()
