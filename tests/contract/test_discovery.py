"""Client-side balancing over a real etcd: calls spread over every registered instance."""

from __future__ import annotations

import asyncio
import collections
import time
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest

from services.common.discovery import DiscoveredChannel, balanced_target
from services.common.etcd import EtcdRegistry
from services.common.registry import ServiceInstance

METHOD = "/test.Who/Am"


async def start_instance(service: str, replica: int) -> tuple[grpc.aio.Server, ServiceInstance]:
    """A gRPC server whose one method answers with its own replica number."""
    server = grpc.aio.server()
    answer = str(replica).encode()

    async def am(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return answer

    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Who", {"Am": grpc.unary_unary_rpc_method_handler(am)}
            )
        ]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    instance = ServiceInstance(service, f"{service}-{replica}", "127.0.0.1", port, 0, replica)
    return server, instance


@pytest.fixture()
async def registry(etcd_url: str) -> AsyncIterator[EtcdRegistry]:
    registry = EtcdRegistry(etcd_url, ttl_seconds=3)
    yield registry
    await registry.close()


async def spread(channel: grpc.aio.Channel, calls: int) -> collections.Counter[str]:
    who: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
        METHOD
    )  # built once, as a stub does: survives channel swaps
    counts: collections.Counter[str] = collections.Counter()
    for _ in range(calls):
        counts[(await who(b"", timeout=2)).decode()] += 1
    return counts


async def test_calls_spread_over_instances_and_reach_an_added_one_within_seconds(
    registry: EtcdRegistry,
) -> None:
    service = f"svc-{uuid.uuid4().hex[:8]}"
    servers = []
    for replica in (0, 1):
        server, instance = await start_instance(service, replica)
        servers.append(server)
        await registry.register(instance, health_service="")
    channel = await DiscoveredChannel(
        registry, service, fallback_target="127.0.0.1:1", grace_seconds=1
    ).start()
    try:
        counts = await spread(channel, 40)
        assert set(counts) == {"0", "1"}, counts  # round_robin: both, about evenly
        assert min(counts.values()) >= 10, counts

        server, added = await start_instance(service, 2)
        servers.append(server)
        await registry.register(added, health_service="")
        registered = time.monotonic()
        while "2" not in await spread(channel, 6):
            assert time.monotonic() - registered < 5, "the added instance got no call in 5 s"
        await registry.deregister(added)
        await asyncio.sleep(0.5)
        assert "2" not in await spread(channel, 20)
    finally:
        await channel.close()
        for server in servers:
            await server.stop(None)


def test_balanced_targets_name_every_ip_address_and_fall_back_to_one_host_name() -> None:
    def at(address: str, port: int) -> ServiceInstance:
        return ServiceInstance("s", f"s-{port}", address, port, 0)

    assert balanced_target([]) is None
    assert balanced_target([at("10.0.0.1", 1), at("10.0.0.2", 2)]) == "ipv4:10.0.0.1:1,10.0.0.2:2"
    assert balanced_target([at("::1", 1), at("fe80::2", 2)]) == "ipv6:[::1]:1,[fe80::2]:2"
    assert balanced_target([at("user-0.local", 1), at("10.0.0.2", 2)]) == "user-0.local:1"
