"""Client-side balancing over the registry: one channel to every live instance of a peer.

`DiscoveredChannel` watches the registry for a service and keeps a grpc.aio channel over the
current address list (`ipv4:10.0.0.1:50051,10.0.0.2:50051`), balanced per call by gRPC's
round_robin policy (the service config of `services.common.channels`). When the set changes
it builds a new channel with the same factory and moves new calls to it; the old channel is
closed after a grace period, so calls already on it finish. Stubs built on it once keep
working across swaps: every method resolves the current channel at call time.

The channel factory takes the target only; TLS credentials (and, for multi-address targets,
the server name to verify) are the factory's business, so they plug in below this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import grpc
import structlog

from services.common.channels import channel_factory as settings_channel_factory
from services.common.channels import create_channel
from services.common.config import ServiceSettings
from services.common.registry import Registry, ServiceInstance, make_registry

log = structlog.get_logger("discovery")

type ChannelFactory = Callable[[str], grpc.aio.Channel]


def balanced_target(instances: Sequence[ServiceInstance]) -> str | None:
    """The gRPC target naming every instance, for round_robin to spread calls over.

    IP literals become one `ipv4:` (or `ipv6:`) target of all of them; a host name cannot
    be listed that way, so a set with names uses the first instance (logged).
    """
    if not instances:
        return None
    addresses = []
    for instance in instances:
        try:
            addresses.append((ipaddress.ip_address(instance.address), instance.grpc_port))
        except ValueError:
            log.warning("unbalanced_hostname_instance", instance=instance.instance_id)
            return instances[0].target
    if all(a.version == 4 for a, _ in addresses):
        return "ipv4:" + ",".join(f"{a}:{p}" for a, p in addresses)
    if all(a.version == 6 for a, _ in addresses):
        return "ipv6:" + ",".join(f"[{a}]:{p}" for a, p in addresses)
    return instances[0].target


class _Call:
    """A multicallable that picks the owner's current channel on every call."""

    def __init__(self, owner: DiscoveredChannel, kind: str, method: str, kwargs: Any) -> None:
        self._owner, self._kind, self._method, self._kwargs = owner, kind, method, kwargs

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._owner.multicallable(self._kind, self._method, self._kwargs)(*args, **kwargs)


class DiscoveredChannel(grpc.aio.Channel):
    """A grpc.aio.Channel over the registry's current instances of one service.

    Until the registry has named an instance, calls go to `fallback_target` (the fixed
    address setting), so a caller started before its peers registered still works.
    """

    def __init__(
        self,
        registry: Registry,
        service: str,
        *,
        fallback_target: str,
        channel_factory: ChannelFactory = create_channel,
        grace_seconds: float = 10.0,
        owns_registry: bool = False,
    ) -> None:
        self.service = service
        self._registry = registry
        self._owns_registry = owns_registry
        self._factory = channel_factory
        self._grace = grace_seconds
        self.target = fallback_target
        self._channel = channel_factory(fallback_target)
        self._calls: dict[tuple[str, str], Any] = {}
        self._retired: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self.swaps = 0

    async def start(self, wait_seconds: float = 2.0) -> DiscoveredChannel:
        """Start following the registry; wait (bounded) for its first answer."""
        self._watcher = asyncio.create_task(self._follow(), name=f"discovery-{self.service}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._first.wait(), wait_seconds)
        return self

    async def _follow(self) -> None:
        async for instances in self._registry.watch(self.service):
            self._first.set()
            target = balanced_target(instances)
            if target is None:
                # Nobody registered (all restarting): keep the last set rather than none.
                log.warning("no_instances", service=self.service, kept=self.target)
                continue
            if target != self.target:
                self._swap(target, len(instances))

    def _swap(self, target: str, count: int) -> None:
        old = self._channel
        self._channel, self.target = self._factory(target), target
        self._calls = {}
        self.swaps += 1
        log.info("peers_changed", service=self.service, instances=count, target=target)
        retire = asyncio.create_task(self._retire(old), name=f"retire-{self.service}")
        self._retired.add(retire)
        retire.add_done_callback(self._retired.discard)

    async def _retire(self, channel: grpc.aio.Channel) -> None:
        await asyncio.sleep(self._grace)
        await channel.close()

    def multicallable(self, kind: str, method: str, kwargs: Any) -> Any:
        """The current channel's multicallable for `method` (cached until the next swap)."""
        key = (kind, method)
        found = self._calls.get(key)
        if found is None:
            found = self._calls[key] = getattr(self._channel, kind)(method, **kwargs)
        return found

    def unary_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return _Call(self, "unary_unary", method, _named(args, kwargs))

    def unary_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return _Call(self, "unary_stream", method, _named(args, kwargs))

    def stream_unary(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return _Call(self, "stream_unary", method, _named(args, kwargs))

    def stream_stream(self, method: str, *args: Any, **kwargs: Any) -> Any:  # noqa: D102
        return _Call(self, "stream_stream", method, _named(args, kwargs))

    def get_state(self, try_to_connect: bool = False) -> grpc.ChannelConnectivity:  # noqa: D102
        return self._channel.get_state(try_to_connect)

    async def wait_for_state_change(self, last_observed_state: grpc.ChannelConnectivity) -> None:  # noqa: D102
        await self._channel.wait_for_state_change(last_observed_state)

    async def channel_ready(self) -> None:  # noqa: D102
        await self._channel.channel_ready()

    async def close(self, grace: float | None = None) -> None:
        """Stop following the registry and close the current and retired channels."""
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        for retire in list(self._retired):
            retire.cancel()
        await self._channel.close(grace)
        if self._owns_registry:
            await self._registry.close()

    async def __aenter__(self) -> DiscoveredChannel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.close()


def _named(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    names = ("request_serializer", "response_deserializer", "_registered_method")
    return {**dict(zip(names, args, strict=False)), **kwargs}


async def connect_peer(
    settings: ServiceSettings,
    service: str,
    target: str,
    *,
    channel_factory: ChannelFactory | None = None,
) -> grpc.aio.Channel:
    """The channel a composition root calls a peer service on; the caller closes it.

    With a registry configured it follows the registry's instances of `service` (`target`
    only until the first answer); without one it is a plain channel to `target` (on
    Kubernetes a `dns:///` name of a headless Service, balanced by round_robin too).
    """
    if channel_factory is None:
        # The service's mTLS credentials; the peer's certificate is checked against its
        # service name, since a balanced target is a list of addresses.
        channel_factory = functools.partial(settings_channel_factory(settings), server_name=service)
    registry = make_registry(
        settings.registry_kind, settings.registry_url, ttl_seconds=settings.registry_ttl_seconds
    )
    if registry is None:
        return channel_factory(target)
    return await DiscoveredChannel(
        registry,
        service,
        fallback_target=target,
        channel_factory=channel_factory,
        grace_seconds=settings.rpc_timeout_seconds * 2,
        owns_registry=True,
    ).start()
