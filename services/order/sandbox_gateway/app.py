"""The sandbox gateway's HTTP API: authorisations, captures, voids, refunds, idempotency.

It behaves as a real processor's test mode: test tokens pick the outcome (tok_visa
succeeds, tok_chargeDeclined and tok_insufficientFunds are declined, tok_timeout never
answers), every POST takes an Idempotency-Key header that replays the first outcome (a
reused key with another body is refused with 409), calls take a configurable latency and
fail at a configurable rate with 503 *before* doing anything, as a flaky load balancer
would. State lives in memory: restarting the gateway forgets every charge.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN_VISA = "tok_visa"
TOKEN_DECLINED = "tok_chargeDeclined"
TOKEN_INSUFFICIENT_FUNDS = "tok_insufficientFunds"
TOKEN_TIMEOUT = "tok_timeout"

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Charge:
    """One authorisation and what became of it."""

    authorization_id: str
    token: str
    amount_minor: int
    currency: str
    status: str = "authorized"  # authorized, captured, voided
    charge_id: str = ""
    refunded_minor: int = 0

    def to_json(self) -> dict[str, Any]:
        """The charge as the API shows it."""
        return {
            "authorization_id": self.authorization_id,
            "charge_id": self.charge_id,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "status": self.status,
            "refunded_minor": self.refunded_minor,
        }


@dataclass
class Stored:
    """The first outcome of an idempotency key."""

    fingerprint: str
    status: int
    body: dict[str, Any]


@dataclass
class GatewayState:
    """The processor's memory and its behaviour knobs."""

    api_key: str
    latency_seconds: float = 0.05
    failure_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    charges: dict[str, Charge] = field(default_factory=dict)
    by_charge_id: dict[str, Charge] = field(default_factory=dict)
    keys: dict[str, Stored] = field(default_factory=dict)
    # One lock per key: concurrent retries of one key wait for the first to finish.
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def create_app(state: GatewayState) -> web.Application:
    """The gateway's aiohttp application over `state`."""

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path == "/healthz":
            return await handler(request)
        header = request.headers.get("Authorization", "")
        if not hmac.compare_digest(header.encode(), f"Bearer {state.api_key}".encode()):
            return _error(401, "unauthorized", "send the API key as a bearer token")
        return await handler(request)

    async def idempotent(
        request: web.Request, operate: Callable[[dict[str, Any]], Awaitable[web.Response]]
    ) -> web.Response:
        await asyncio.sleep(state.latency_seconds)
        if state.failure_rate and state.rng.random() < state.failure_rate:
            return _error(503, "service_unavailable", "simulated failure; retry with the same key")
        key = request.headers.get("Idempotency-Key", "")
        if not 1 <= len(key) <= 255:
            return _error(400, "idempotency_key_missing", "send an Idempotency-Key header")
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(400, "invalid_json", "the body must be a JSON object")
        if not isinstance(body, dict):
            return _error(400, "invalid_json", "the body must be a JSON object")
        fingerprint = hashlib.sha256(
            (request.path + json.dumps(body, sort_keys=True)).encode()
        ).hexdigest()
        lock = state.locks.setdefault(key, asyncio.Lock())
        async with lock:
            stored = state.keys.get(key)
            if stored is None:
                response = await operate(body)
                payload = json.loads(response.text or "{}")
                # Server errors are not stored, so a retry can still succeed.
                if response.status < 500:
                    state.keys[key] = Stored(fingerprint, response.status, payload)
                return response
        if stored.fingerprint != fingerprint:
            return _error(409, "idempotency_key_reused", "this key was used for another request")
        return web.json_response(
            stored.body, status=stored.status, headers={"Idempotent-Replayed": "true"}
        )

    async def authorize(body: dict[str, Any]) -> web.Response:
        token = str(body.get("token", ""))
        amount = body.get("amount_minor")
        currency = str(body.get("currency", ""))
        if not isinstance(amount, int) or amount <= 0 or len(currency) != 3:
            return _error(400, "invalid_amount", "amount_minor > 0 and a currency are required")
        if token == TOKEN_TIMEOUT:
            await asyncio.Event().wait()  # hangs; only the caller's timeout ends the call
        if token == TOKEN_DECLINED:
            return _error(402, "card_declined", "the card was declined")
        if token == TOKEN_INSUFFICIENT_FUNDS:
            return _error(402, "insufficient_funds", "the card has insufficient funds")
        if token != TOKEN_VISA:
            return _error(402, "invalid_token", "unknown payment method token")
        charge = Charge(f"auth_{uuid.uuid4().hex}", token, amount, currency)
        state.charges[charge.authorization_id] = charge
        return web.json_response(charge.to_json(), status=201)

    async def post_authorize(request: web.Request) -> web.Response:
        return await idempotent(request, authorize)

    async def post_capture(request: web.Request) -> web.Response:
        async def capture(body: dict[str, Any]) -> web.Response:
            charge = state.charges.get(request.match_info["authorization_id"])
            if charge is None:
                return _error(404, "not_found", "no such authorization")
            amount = body.get("amount_minor")
            if charge.status != "authorized":
                return _error(409, "not_capturable", f"the authorization is {charge.status}")
            if not isinstance(amount, int) or not 0 < amount <= charge.amount_minor:
                return _error(400, "invalid_amount", "capture at most the authorized amount")
            charge.status = "captured"
            charge.charge_id = f"ch_{uuid.uuid4().hex}"
            charge.amount_minor = amount
            state.by_charge_id[charge.charge_id] = charge
            return web.json_response(charge.to_json(), status=201)

        return await idempotent(request, capture)

    async def post_void(request: web.Request) -> web.Response:
        async def void(body: dict[str, Any]) -> web.Response:
            charge = state.charges.get(request.match_info["authorization_id"])
            if charge is None:
                return _error(404, "not_found", "no such authorization")
            if charge.status not in ("authorized", "voided"):
                return _error(409, "not_voidable", f"the authorization is {charge.status}")
            charge.status = "voided"
            return web.json_response(charge.to_json())

        return await idempotent(request, void)

    async def post_refund(request: web.Request) -> web.Response:
        async def refund(body: dict[str, Any]) -> web.Response:
            charge = state.by_charge_id.get(request.match_info["charge_id"])
            if charge is None:
                return _error(404, "not_found", "no such charge")
            amount = body.get("amount_minor")
            if not isinstance(amount, int) or amount <= 0:
                return _error(400, "invalid_amount", "amount_minor must be positive")
            if charge.refunded_minor + amount > charge.amount_minor:
                return _error(409, "refund_exceeds_charge", "refunds cannot pass the charge")
            charge.refunded_minor += amount
            return web.json_response(
                {"refund_id": f"re_{uuid.uuid4().hex}", "charge": charge.to_json()}, status=201
            )

        return await idempotent(request, refund)

    async def get_idempotency_key(request: web.Request) -> web.Response:
        # Reconciliation after a crash: what did the call with this key answer, if it ran?
        stored = state.keys.get(request.match_info["key"])
        if stored is None:
            return _error(404, "not_found", "no call was made with this key")
        return web.json_response({"status": stored.status, "body": stored.body})

    async def list_charges(request: web.Request) -> web.Response:
        return web.json_response({"charges": [c.to_json() for c in state.charges.values()]})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application(middlewares=[authenticate])
    app.router.add_post("/v1/authorizations", post_authorize)
    app.router.add_post("/v1/authorizations/{authorization_id}/capture", post_capture)
    app.router.add_post("/v1/authorizations/{authorization_id}/void", post_void)
    app.router.add_post("/v1/charges/{charge_id}/refunds", post_refund)
    app.router.add_get("/v1/idempotency-keys/{key}", get_idempotency_key)
    app.router.add_get("/v1/charges", list_charges)
    app.router.add_get("/healthz", healthz)
    return app
