"""The etcd adapter of the registry port against a real etcd: leases, keep-alive, watch."""

from __future__ import annotations

import asyncio
import base64
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from services.common.etcd import EtcdRegistry
from services.common.registry import KEY_PREFIX, ServiceInstance

# etcd's shortest lease: 3 x its election timeout in ticks (1 s by default).
TTL = 3


def instance(service: str, port: int, replica: int = 0) -> ServiceInstance:
    return ServiceInstance(
        service, f"{service}-{replica}", "127.0.0.1", port, port + 1, replica, "1"
    )


@pytest.fixture()
async def registry(etcd_url: str) -> AsyncIterator[EtcdRegistry]:
    registry = EtcdRegistry(etcd_url, ttl_seconds=TTL)
    yield registry
    await registry.close()


async def raw_value(etcd_url: str, key: str) -> str | None:
    body = {"key": base64.b64encode(key.encode()).decode()}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{etcd_url}/v3/kv/range", json=body) as response,
    ):
        kvs = (await response.json()).get("kvs", [])
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


async def wait_for(
    registry: EtcdRegistry, service: str, count: int, within: float
) -> list[ServiceInstance]:
    deadline = time.monotonic() + within
    while True:
        found = await registry.instances(service)
        if len(found) == count or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_an_instance_is_listed_under_its_key_and_kept_alive_past_its_ttl(
    registry: EtcdRegistry, etcd_url: str
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    one = instance(service, 40001)
    await registry.register(one, health_service="x")
    assert one.key == f"{KEY_PREFIX}{service}/{service}-0"
    value = await raw_value(etcd_url, one.key)
    assert value is not None
    assert ServiceInstance.from_json(value) == one
    await asyncio.sleep(TTL + 2)  # the keep-alive renews it
    assert await registry.instances(service) == [one]
    await registry.deregister(one)
    assert await registry.instances(service) == []  # revoked, not left to expire


async def test_watch_follows_registrations_and_deregistrations(
    registry: EtcdRegistry, etcd_url: str
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    seen: list[list[ServiceInstance]] = []
    changed = asyncio.Event()

    async def follow() -> None:
        async for instances in registry.watch(service):
            seen.append(instances)
            changed.set()

    watcher = asyncio.create_task(follow())
    try:
        await asyncio.wait_for(changed.wait(), 5)
        assert seen[-1] == []
        other = EtcdRegistry(etcd_url, ttl_seconds=TTL)
        first, second = instance(service, 40011, 0), instance(service, 40021, 1)
        await other.register(first, health_service="x")
        await other.register(second, health_service="x")
        await until(lambda: seen[-1] == [first, second], 3)
        await other.deregister(first)
        await until(lambda: seen[-1] == [second], 3)
        await other.close()  # keep-alives stop: the lease runs out
        await until(lambda: seen[-1] == [], TTL + 3)
    finally:
        watcher.cancel()


async def until(condition: Callable[[], bool], within: float) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the watch did not follow in time"
        await asyncio.sleep(0.05)


async def test_a_killed_process_disappears_when_its_lease_expires(
    registry: EtcdRegistry, etcd_url: str
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    script = textwrap.dedent(
        f"""
        import asyncio
        from services.common.etcd import EtcdRegistry
        from services.common.registry import ServiceInstance

        async def main():
            registry = EtcdRegistry({etcd_url!r}, ttl_seconds={TTL})
            await registry.register(
                ServiceInstance({service!r}, "doomed", "127.0.0.1", 40031, 40032), health_service="x"
            )
            print("registered", flush=True)
            await asyncio.sleep(600)

        asyncio.run(main())
        """
    )
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        while (await child.stdout.readline()).strip() != b"registered":  # after its log line
            assert child.returncode is None, "the registering process died"
        await asyncio.sleep(TTL)  # alive past one TTL: its keep-alive works
        assert len(await registry.instances(service)) == 1
        child.kill()
        killed = time.monotonic()
        assert await wait_for(registry, service, 0, TTL + 3) == []
        assert time.monotonic() - killed <= TTL + 2
    finally:
        if child.returncode is None:
            child.kill()
        await child.wait()


async def test_an_instance_whose_lease_was_lost_registers_again(
    registry: EtcdRegistry, etcd_url: str
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    one = instance(service, 40041)
    await registry.register(one, health_service="x")
    lease = (await registry.instances(service), registry._leases[one.key])[1]
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{etcd_url}/v3/lease/revoke", json={"ID": lease}),
    ):
        pass  # as if etcd had lost it (restarted without its data)
    assert await registry.instances(service) == []
    assert await wait_for(registry, service, 1, TTL + 2) == [one]
    await registry.deregister(one)
