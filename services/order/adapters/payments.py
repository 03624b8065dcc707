"""The payment gateway's HTTP adapter, and an in-process sandbox gateway for dev mode and tests."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog

from services.common.money import Money
from services.order.service_layer.ports import (
    Authorization,
    Capture,
    PaymentDeclined,
    PaymentError,
    PaymentGateway,
    PaymentTimeout,
    PaymentUnavailable,
)

# The port's names stay importable from here, beside the adapters that implement it.
__all__ = [
    "TOKEN_DECLINED",
    "TOKEN_INSUFFICIENT_FUNDS",
    "TOKEN_TIMEOUT",
    "TOKEN_VISA",
    "Authorization",
    "Capture",
    "HttpGateway",
    "PaymentDeclined",
    "PaymentError",
    "PaymentGateway",
    "PaymentTimeout",
    "PaymentUnavailable",
    "SandboxGateway",
]

log = structlog.get_logger("payments")

# Test card tokens the sandbox understands, as real processors' test modes do.
TOKEN_VISA = "tok_visa"
TOKEN_DECLINED = "tok_chargeDeclined"
TOKEN_INSUFFICIENT_FUNDS = "tok_insufficientFunds"
TOKEN_TIMEOUT = "tok_timeout"


@dataclass
class SandboxCharge:
    """One charge the sandbox processor holds."""

    charge_id: str
    token: str
    amount: Money
    status: str = "authorized"  # authorized, captured, voided
    capture_id: str = ""
    refunded_minor: int = 0


@dataclass
class _Outcome:
    operation: str
    params: tuple[object, ...]
    result: object = None
    error: PaymentError | None = None


@dataclass
class SandboxGateway:
    """A FAKE card processor for development and tests, modelled on real sandboxes.

    Tokens: tok_visa succeeds, tok_chargeDeclined and tok_insufficientFunds are declined,
    tok_timeout never answers (the call times out), any other token is declined as
    invalid_token. Each call takes `latency_seconds`. Idempotency keys behave as a real
    processor's: the same key replays the first outcome and never charges twice.
    Charges stay in memory so tests can count them.
    """

    latency_seconds: float = 0.15
    timeout_seconds: float = 5.0
    charges: list[SandboxCharge] = field(default_factory=list)
    _outcomes: dict[str, _Outcome] = field(default_factory=dict, repr=False)
    _running: set[str] = field(default_factory=set, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def authorize(self, amount: Money, token: str, idempotency_key: str) -> Authorization:
        """Hold `amount` on the card `token` stands for."""
        result = await self._call("authorize", (amount, token), idempotency_key)
        assert isinstance(result, Authorization)
        return result

    async def capture(self, authorization_id: str, amount: Money, idempotency_key: str) -> Capture:
        """Take `amount` of an authorisation."""
        result = await self._call("capture", (authorization_id, amount), idempotency_key)
        assert isinstance(result, Capture)
        return result

    async def void(self, authorization_id: str, idempotency_key: str) -> None:
        """Drop an authorisation that was not captured."""
        await self._call("void", (authorization_id,), idempotency_key)

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> None:
        """Return `amount` of a captured charge."""
        await self._call("refund", (charge_id, amount), idempotency_key)

    async def find_authorization(self, idempotency_key: str) -> Authorization | None:
        """The authorisation an earlier call with this key made, if it succeeded."""
        seen = self._known(idempotency_key)
        if seen is None or not isinstance(seen.result, Authorization):
            return None
        return seen.result

    async def find_capture(self, idempotency_key: str) -> Capture | None:
        """The capture an earlier call with this key made, if it succeeded."""
        seen = self._known(idempotency_key)
        if seen is None or not isinstance(seen.result, Capture):
            return None
        return seen.result

    def _known(self, key: str) -> _Outcome | None:
        if key in self._running and key not in self._outcomes:
            raise PaymentUnavailable("the gateway is still processing the call")
        return self._outcomes.get(key)

    def captured(self) -> list[SandboxCharge]:
        """The charges whose money was taken."""
        return [c for c in self.charges if c.status == "captured"]

    def captured_total(self, currency: str) -> Money:
        """The money captured in `currency`, net of refunds."""
        minor = sum(
            c.amount.minor - c.refunded_minor
            for c in self.captured()
            if c.amount.currency == currency
        )
        return Money(minor, currency)

    async def _call(self, operation: str, params: tuple[object, ...], key: str) -> object:
        try:
            async with asyncio.timeout(self.timeout_seconds):
                return await self._process(operation, params, key)
        except TimeoutError:
            log.warning("payment_gateway_timeout", operation=operation, idempotency_key=key)
            raise PaymentTimeout(f"the payment gateway did not answer {operation}") from None

    async def _process(self, operation: str, params: tuple[object, ...], key: str) -> object:
        await asyncio.sleep(self.latency_seconds)
        if operation == "authorize" and params[1] == TOKEN_TIMEOUT:
            await asyncio.Event().wait()  # the processor hangs; only the timeout ends the call
        # One lock per processor: a repeated key waits for the first call, then replays it.
        self._running.add(key)
        try:
            async with self._lock:
                seen = self._outcomes.get(key)
                if seen is not None:
                    if (seen.operation, seen.params) != (operation, params):
                        raise PaymentError(f"idempotency key {key} was used for another request")
                else:
                    seen = _Outcome(operation, params)
                    try:
                        seen.result = self._apply(operation, params)
                    except PaymentError as error:
                        seen.error = error
                    self._outcomes[key] = seen
        finally:
            self._running.discard(key)
        if seen.error is not None:
            raise seen.error
        return seen.result

    def _apply(self, operation: str, params: tuple[object, ...]) -> object:
        match operation:
            case "authorize":
                amount, token = params
                assert isinstance(amount, Money) and isinstance(token, str)
                return self._authorize(amount, token)
            case "capture":
                authorization_id, amount = params
                assert isinstance(authorization_id, str) and isinstance(amount, Money)
                charge = self._charge(authorization_id)
                if charge.status != "authorized" or amount.minor > charge.amount.minor:
                    raise PaymentError(f"charge {authorization_id} cannot be captured")
                charge.status = "captured"
                charge.capture_id = f"ch_{uuid.uuid4().hex}"
                return Capture(charge.capture_id, authorization_id, amount)
            case "void":
                charge = self._charge(str(params[0]))
                if charge.status != "authorized":
                    raise PaymentError(f"charge {charge.charge_id} cannot be voided")
                charge.status = "voided"
                return None
            case "refund":
                charge_id, amount = params
                assert isinstance(amount, Money)
                captured = next((c for c in self.charges if c.capture_id == charge_id), None)
                if captured is None:
                    raise PaymentError(f"no such charge {charge_id}")
                if captured.refunded_minor + amount.minor > captured.amount.minor:
                    raise PaymentError("refund exceeds the captured amount")
                captured.refunded_minor += amount.minor
                return None
        raise PaymentError(f"unknown operation {operation}")

    def _authorize(self, amount: Money, token: str) -> Authorization:
        if token == TOKEN_DECLINED:
            raise PaymentDeclined("card_declined")
        if token == TOKEN_INSUFFICIENT_FUNDS:
            raise PaymentDeclined("insufficient_funds")
        if token != TOKEN_VISA:
            raise PaymentDeclined("invalid_token")
        charge = SandboxCharge(f"auth_{uuid.uuid4().hex}", token, amount)
        self.charges.append(charge)
        return Authorization(charge.charge_id, amount)

    def _charge(self, authorization_id: str) -> SandboxCharge:
        for charge in self.charges:
            if charge.charge_id == authorization_id:
                return charge
        raise PaymentError(f"no such charge {authorization_id}")


class HttpGateway:
    """The payment gateway reached over HTTP (the sandbox gateway service, or a real one).

    Server errors and dropped connections are retried with the same idempotency key, which
    the gateway turns into a replay, never a second charge. A call that does not answer
    within the timeout raises PaymentTimeout: its outcome is unknown and is settled later
    by looking the key up.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        session: aiohttp.ClientSession,
        *,
        timeout_seconds: float,
        retries: int = 2,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._session = session
        self._timeout = timeout_seconds
        self._retries = retries

    async def authorize(self, amount: Money, token: str, idempotency_key: str) -> Authorization:
        """Hold `amount` on the card `token` stands for."""
        body = await self._post(
            "/v1/authorizations",
            {"amount_minor": amount.minor, "currency": amount.currency, "token": token},
            idempotency_key,
        )
        return Authorization(str(body["authorization_id"]), amount)

    async def capture(self, authorization_id: str, amount: Money, idempotency_key: str) -> Capture:
        """Take `amount` of an authorisation."""
        body = await self._post(
            f"/v1/authorizations/{authorization_id}/capture",
            {"amount_minor": amount.minor},
            idempotency_key,
        )
        return Capture(str(body["charge_id"]), authorization_id, amount)

    async def void(self, authorization_id: str, idempotency_key: str) -> None:
        """Drop an authorisation that was not captured."""
        await self._post(f"/v1/authorizations/{authorization_id}/void", {}, idempotency_key)

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> None:
        """Return `amount` of a captured charge."""
        await self._post(
            f"/v1/charges/{charge_id}/refunds", {"amount_minor": amount.minor}, idempotency_key
        )

    async def find_authorization(self, idempotency_key: str) -> Authorization | None:
        """The authorisation an earlier call with this key made, if it succeeded."""
        found = await self._lookup(idempotency_key)
        if found is None or "authorization_id" not in found:
            return None
        amount = Money(int(found["amount_minor"]), str(found["currency"]))
        return Authorization(str(found["authorization_id"]), amount)

    async def find_capture(self, idempotency_key: str) -> Capture | None:
        """The capture an earlier call with this key made, if it succeeded."""
        found = await self._lookup(idempotency_key)
        if found is None or not found.get("charge_id"):
            return None
        amount = Money(int(found["amount_minor"]), str(found["currency"]))
        return Capture(str(found["charge_id"]), str(found["authorization_id"]), amount)

    async def _lookup(self, key: str) -> dict[str, Any] | None:
        url = f"{self._base}/v1/idempotency-keys/{quote(key, safe='')}"
        try:
            async with asyncio.timeout(self._timeout):
                async with self._session.get(url, headers=self._headers) as response:
                    if response.status == 404:
                        return None
                    if response.status == 409:
                        # Received and still running: the outcome is not known yet.
                        raise PaymentUnavailable("the gateway is still processing the call")
                    if response.status != 200:
                        raise PaymentUnavailable(f"gateway lookup answered {response.status}")
                    stored = await response.json()
        except TimeoutError:
            raise PaymentTimeout("the payment gateway did not answer a lookup") from None
        except aiohttp.ClientError as error:
            raise PaymentUnavailable(f"the payment gateway is unreachable: {error}") from None
        if not 200 <= int(stored["status"]) < 300:
            return None
        body: dict[str, Any] = stored["body"]
        return body

    async def _post(self, path: str, payload: dict[str, Any], key: str) -> dict[str, Any]:
        headers = {**self._headers, "Idempotency-Key": key}
        last: PaymentError = PaymentUnavailable("the payment gateway did not answer")
        for attempt in range(self._retries + 1):
            try:
                async with asyncio.timeout(self._timeout):
                    async with self._session.post(
                        self._base + path, json=payload, headers=headers
                    ) as response:
                        body: dict[str, Any] = await response.json(content_type=None)
                        status = response.status
            except TimeoutError:
                log.warning("payment_gateway_timeout", path=path, idempotency_key=key)
                raise PaymentTimeout(f"the payment gateway did not answer {path}") from None
            except aiohttp.ClientError as error:
                last = PaymentUnavailable(f"the payment gateway is unreachable: {error}")
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            if status < 300:
                return body
            code = str(body.get("error", {}).get("code", ""))
            if status == 402:
                raise PaymentDeclined(code or "card_declined")
            if status >= 500:
                last = PaymentUnavailable(f"the payment gateway answered {status}")
                await asyncio.sleep(0.05 * (attempt + 1))
                continue
            raise PaymentError(f"the payment gateway refused {path}: {status} {code}")
        raise last
