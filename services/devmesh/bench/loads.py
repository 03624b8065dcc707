"""The load loops: a closed loop for rates, an open loop at a fixed rate for tails."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc


@dataclass(frozen=True)
class Load:
    """What one load loop measured: rate, latency and the client's own CPU."""

    calls: int
    seconds: float
    latencies_ms: Sequence[float] = ()
    client_cpu_seconds: float | None = None
    tool: str = "python"
    failures: int = 0

    @property
    def rate(self) -> float:
        """Successful calls per second."""
        return (self.calls - self.failures) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency at quantile q in milliseconds (0 without latencies)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def client_cpu_share(self) -> float | None:
        """The client's CPU seconds per wall second (1.0 = one core busy)."""
        if self.client_cpu_seconds is None or self.seconds <= 0:
            return None
        return self.client_cpu_seconds / self.seconds


async def run_load(calls: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> Load:
    """Run `call(i)` for i in range(calls), at most `concurrency` in flight (closed loop)."""
    latencies: list[float] = []
    failures: list[grpc.aio.AioRpcError] = []
    next_call = iter(range(calls))

    async def worker() -> None:
        for i in next_call:
            started = time.perf_counter()
            try:
                await call(i)
            except grpc.aio.AioRpcError as error:
                failures.append(error)  # not counted in the rate: an overloaded mesh says so
            latencies.append((time.perf_counter() - started) * 1000)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    if len(failures) == calls:
        raise failures[0]
    return Load(calls, seconds, latencies, time.process_time() - cpu, failures=len(failures))


async def run_paced(rate: float, seconds: float, call: Callable[[int], Awaitable[None]]) -> Load:
    """Start `call(i)` at a fixed rate whatever the answers do (an open loop, for tails)."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            await call(i)
        except grpc.aio.AioRpcError:
            failures += 1  # its latency counts: a failed read is as slow as it took
        latencies.append((time.perf_counter() - started) * 1000)

    total = int(rate * seconds)
    cpu, begun = time.process_time(), time.perf_counter()
    for i in range(total):
        delay = begun + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - begun
    return Load(total, seconds, latencies, time.process_time() - cpu, failures=failures)
