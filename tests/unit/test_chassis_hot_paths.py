"""The chassis's per-call costs: verified tokens remembered until expiry, sampled access logs."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

import argon2
import grpc
import jwt
import pytest
import pytest_asyncio
import structlog
from opentelemetry import trace as otel_trace
from opentelemetry.sdk.trace.sampling import Decision

from services.common.auth import StaticKeySource, TokenVerifier
from services.common.business_metrics import BusinessEventsInterceptor, RpcObserver
from services.common.errors import Unauthenticated
from services.common.interceptors import ErrorMappingInterceptor, RequestLoggingInterceptor
from services.common.logging import configure_logging
from services.common.reasons import ErrorReason
from services.common.tracing import sampler_from
from services.devmesh.bench import Bench, Load, Ratio, results, write_results
from services.user.adapters.passwords import (
    Argon2PasswordHasher,
    usable_cores,
    verify_on_this_thread,
)
from tests.support.tokens import AUDIENCE, ISSUER, TestTokens

SAMPLED = Decision.RECORD_AND_SAMPLE


class WithdrawableKeys(StaticKeySource):
    """The test's own keys, one of which can be withdrawn as a JWKS rotation would."""

    def __init__(self, tokens: TestTokens) -> None:
        super().__init__(tokens.ring.jwks())
        self.withdrawn: set[str] = set()

    async def get_key(self, kid: str) -> jwt.PyJWK:
        if kid in self.withdrawn:
            raise Unauthenticated(
                "token signed by an unknown key", reason=ErrorReason.TOKEN_INVALID
            )
        return await super().get_key(kid)


async def test_a_verified_token_is_remembered_and_still_expires() -> None:
    tokens = TestTokens()
    verifier = TokenVerifier(tokens.key_source(), issuer=ISSUER, audience=AUDIENCE)
    token = tokens.mint(ttl_seconds=1)
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # the remembered caller, no new verification
    await asyncio.sleep(1.1)
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    assert refused.value.reason == ErrorReason.TOKEN_EXPIRED


async def test_a_remembered_token_stops_working_when_its_key_is_withdrawn() -> None:
    tokens = TestTokens()
    keys = WithdrawableKeys(tokens)
    verifier = TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)
    token = tokens.mint()
    await verifier.verify(token)
    keys.withdrawn.add(jwt.get_unverified_header(token)["kid"])
    with pytest.raises(Unauthenticated) as refused:
        await verifier.verify(token)
    assert refused.value.reason == ErrorReason.TOKEN_INVALID


async def test_the_cache_is_bounded_and_bad_tokens_are_never_remembered() -> None:
    tokens = TestTokens()
    verifier = TokenVerifier(tokens.key_source(), issuer=ISSUER, audience=AUDIENCE, cache_size=2)
    minted = [tokens.mint() for _ in range(3)]
    callers = [await verifier.verify(token) for token in minted]
    # The oldest made room: verified again, an equal but new caller.
    again = await verifier.verify(minted[0])
    assert again == callers[0] and again is not callers[0]
    tampered = minted[1][:-4] + ("AAAA" if not minted[1].endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(Unauthenticated):
            await verifier.verify(tampered)


@pytest.fixture
def json_logs(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]

    yield lines
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest_asyncio.fixture
async def echo_target() -> AsyncIterator[str]:
    async def echo(request: bytes, context: grpc.aio.ServicerContext[Any, Any]) -> bytes:
        if request == b"fail":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return request

    handler = grpc.method_handlers_generic_handler(
        "test.Echo", {"Echo": grpc.unary_unary_rpc_method_handler(echo)}
    )
    server = grpc.aio.server(interceptors=[RequestLoggingInterceptor(sample_every=5)])
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_successes_are_sampled_per_request_and_failures_always_logged(
    json_logs: Any, echo_target: str
) -> None:
    configure_logging("test")  # in the test: capsys swaps stderr between the phases
    # Loggers that cached capsys's stream would write to it once it is closed, in the
    # tests that run after this one in the same session.
    structlog.configure(cache_logger_on_first_use=False)
    ids = [f"request-{i}" for i in range(40)]
    async with grpc.aio.insecure_channel(echo_target) as channel:
        call: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            "/test.Echo/Echo"
        )
        for request_id in ids:
            # Two calls of one request, as two services of the mesh would each see it.
            for _ in range(2):
                await call(b"ok", metadata=(("x-request-id", request_id),))
        for i in range(2):
            with pytest.raises(grpc.aio.AioRpcError):
                await call(b"fail", metadata=(("x-request-id", f"fail-{i}"),))
    finished = [line for line in json_logs() if line["msg"] == "rpc_finished"]
    successes = [line["request_id"] for line in finished if line["code"] == "OK"]
    # A request is logged whole or not at all, and only some requests are.
    assert successes and all(successes.count(request_id) == 2 for request_id in successes)
    assert len(set(successes)) < len(ids) / 2
    assert all(line["sampled_one_in"] == 5 for line in finished if line["code"] == "OK")
    failures = [line for line in finished if line["code"] == "NOT_FOUND"]
    assert [line["request_id"] for line in failures] == ["fail-0", "fail-1"]
    assert all(line["rpc"] == "/test.Echo/Echo" for line in finished)


def test_the_bench_writes_every_ratio_with_value_numerator_and_denominator(
    tmp_path: Any,
) -> None:
    ratio = Ratio("R1", "cached GetProduct / bare server", "calls/s")
    for service, bare in ((300.0, 1000.0), (320.0, 800.0), (310.0, 1000.0)):
        ratio.add(service, bare, Load(100, 100 / service, client_cpu_seconds=0.2))

    finished = Bench(mesh=None, calls=100)  # type: ignore[arg-type]  # no mesh: figures only
    finished.ratios["R1"] = ratio
    document = results(finished, {"skipped": "no replicas"})
    write_results(document, tmp_path / "latest.json")
    written = json.loads((tmp_path / "latest.json").read_text())
    assert written["R1"] == {"value": 0.31, "numerator": 310.0, "denominator": 1000.0}
    assert written["details"]["R1"]["values"] == [0.3, 0.4, 0.31]


class RecordingArgon2(argon2.PasswordHasher):
    """A cheap argon2id that notes the thread and the priority each hash runs at."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8192, parallelism=1)
        self.seen: list[tuple[int, int]] = []

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        thread = threading.get_native_id()
        self.seen.append((thread, os.getpriority(os.PRIO_PROCESS, thread)))
        return super().hash(password, salt=salt)


async def test_passwords_hash_on_a_few_low_priority_threads_off_the_loop() -> None:
    recording = RecordingArgon2()
    hasher = Argon2PasswordHasher(recording)
    hashes = await asyncio.gather(*(hasher.hash(f"password {i}") for i in range(8)))
    assert all([await hasher.verify(h, f"password {i}") for i, h in enumerate(hashes)])
    threads = {thread for thread, _ in recording.seen}
    assert threading.get_native_id() not in threads
    assert len(threads) <= usable_cores()
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert all(priority > own for _, priority in recording.seen)
    hasher.close()


class CallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str) -> None:
        self.method = method
        self.invocation_metadata = ()


async def test_each_interceptor_wraps_a_method_once_not_on_every_call() -> None:
    calls: list[str] = []

    async def behaviour(request: Any, context: Any) -> str:
        calls.append(request)
        return "answer"

    inner: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(behaviour)
    other: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(behaviour)

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        return inner if details.method.endswith("/A") else other

    interceptors = (ErrorMappingInterceptor(error_domain="test"),)
    for interceptor in interceptors:
        first = await interceptor.intercept_service(continuation, CallDetails("/pkg.S/A"))
        again = await interceptor.intercept_service(continuation, CallDetails("/pkg.S/A"))
        b = await interceptor.intercept_service(continuation, CallDetails("/pkg.S/B"))
        assert first is again and first is not inner  # built once, then reused
        assert b is not first
        assert first is not None and first.unary_unary is not None
        assert await first.unary_unary("ping", cast(Any, None)) == "answer"
    assert calls == ["ping"] * len(interceptors)


def test_the_trace_sampler_follows_the_standard_variables_and_the_parent() -> None:
    trace_id = 0x0000000000000000FFFFFFFFFFFFFFFF  # past any ratio below 1: never sampled alone
    assert sampler_from({}).should_sample(None, trace_id, "root").decision is SAMPLED
    ratio = sampler_from(
        {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
    )
    assert ratio.should_sample(None, trace_id, "root").decision is not SAMPLED
    sampled_parent = otel_trace.set_span_in_context(
        otel_trace.NonRecordingSpan(
            otel_trace.SpanContext(
                trace_id, 1, is_remote=True, trace_flags=otel_trace.TraceFlags(1)
            )
        )
    )
    # A caller's sampled trace is followed whole whatever the ratio.
    assert ratio.should_sample(sampled_parent, trace_id, "child").decision is SAMPLED
    bad = sampler_from({"OTEL_TRACES_SAMPLER": "nonsense", "OTEL_TRACES_SAMPLER_ARG": "7"})
    assert bad.should_sample(None, trace_id, "root").decision is SAMPLED  # the default


async def test_business_events_wrap_only_the_methods_they_observe() -> None:
    outcomes: list[tuple[str, Any]] = []
    observers = {
        "/pkg.S/Observed": RpcObserver(
            succeeded=lambda request, response: outcomes.append(("ok", response)),
            failed=lambda request, reason: outcomes.append(("failed", reason)),
        )
    }

    async def behaviour(request: Any, context: Any) -> str:
        return "answer"

    inner: grpc.RpcMethodHandler[Any, Any] = grpc.unary_unary_rpc_method_handler(behaviour)

    async def continuation(details: grpc.HandlerCallDetails) -> Any:
        return inner

    interceptor = BusinessEventsInterceptor(observers)
    unobserved = await interceptor.intercept_service(continuation, CallDetails("/pkg.S/Read"))
    assert unobserved is inner  # served by its own handler, no wrapper in between
    observed = await interceptor.intercept_service(continuation, CallDetails("/pkg.S/Observed"))
    assert observed is not inner and observed is not None and observed.unary_unary is not None
    assert await observed.unary_unary("request", cast(Any, None)) == "answer"
    assert outcomes == [("ok", "answer")]


@pytest.mark.parametrize(
    ("kind", "time_cost", "parallelism"),
    [(argon2.Type.ID, 2, 4), (argon2.Type.ID, 1, 1), (argon2.Type.I, 1, 2)],
)
def test_verifying_on_one_thread_agrees_with_argon2(
    kind: argon2.Type, time_cost: int, parallelism: int
) -> None:
    hasher = argon2.PasswordHasher(
        time_cost=time_cost, memory_cost=8192, parallelism=parallelism, type=kind
    )
    stored = hasher.hash("correct horse")
    assert hasher.verify(stored, "correct horse")
    assert verify_on_this_thread(stored, "correct horse")
    assert not verify_on_this_thread(stored, "correct horsf")
    assert not verify_on_this_thread(stored, "")
    # Another salt or digest: the same password no longer matches.
    head, salt, digest = stored.rsplit("$", 2)
    other_salt = argon2.PasswordHasher(memory_cost=8192).hash("x").rsplit("$", 2)[1]
    assert not verify_on_this_thread(f"{head}${other_salt}${digest}", "correct horse")
    flipped = digest[:-2] + ("AA" if not digest.endswith("AA") else "BA")
    assert not verify_on_this_thread(f"{head}${salt}${flipped}", "correct horse")
    for corrupt in ("", "not a hash", stored.replace("$argon2", "$bcrypt"), f"{head}$!!$!!"):
        with pytest.raises(argon2.exceptions.InvalidHashError):
            verify_on_this_thread(corrupt, "correct horse")


async def test_the_service_hasher_verifies_what_it_hashed_and_refuses_the_rest() -> None:
    hasher = Argon2PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=8192))
    stored = await hasher.hash("s3cret pass")
    assert await hasher.verify(stored, "s3cret pass")
    assert not await hasher.verify(stored, "s3cret pasS")
    assert not await hasher.verify("$argon2id$v=19$garbage", "s3cret pass")
    hasher.close()
