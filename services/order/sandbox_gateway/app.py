"""The sandbox gateway's HTTP API: authorisations, captures, voids, refunds, idempotency.

It behaves as a real processor's test mode: test tokens pick the outcome (tok_visa
succeeds, tok_chargeDeclined and tok_insufficientFunds are declined, tok_timeout never
answers), every POST takes an Idempotency-Key header that replays the first outcome (a
reused key with another body is refused with 409), calls take a configurable latency and
fail at a configurable rate with 503 *before* doing anything, as a flaky load balancer
would. Given a state file, charges and answered keys survive the gateway's restarts, as
a real processor's do. Lookups by key tell a call still being processed (409
request_in_progress) from one never received (404). The fake's control surface for fault
studies, `PUT /_sandbox/stalls/{operation}` with `{"seconds": s}` (and `DELETE` to end it),
makes authorize or capture stall after the request was received: the caller times out,
and the operation still completes later, as a slow processor's does.
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

from services.order.sandbox_gateway.store import GatewayStore

TOKEN_VISA = "tok_visa"
TOKEN_DECLINED = "tok_chargeDeclined"
TOKEN_INSUFFICIENT_FUNDS = "tok_insufficientFunds"
TOKEN_TIMEOUT = "tok_timeout"

OPERATIONS = frozenset({"authorize", "capture", "void", "refund"})

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
    # Keys whose call was received and is still running: a lookup answers "in progress".
    processing: set[str] = field(default_factory=set)
    # FAULT CONTROL of the fake: seconds an operation (authorize, capture, void, refund)
    # stalls after it was received and before it is done.
    stalls: dict[str, float] = field(default_factory=dict)
    # Where charges and keys are written through; None keeps them in memory only.
    store: GatewayStore | None = None
    # Charges changed by the call running now, written with its key.
    dirty: list[Charge] = field(default_factory=list)
    # Calls being processed, kept referenced while their callers may be gone.
    running: set[asyncio.Future[Any]] = field(default_factory=set)

    def load(self) -> None:
        """Read back what the store remembers (after a restart)."""
        if self.store is None:
            return
        for document in self.store.charges():
            charge = Charge(**document)
            self.charges[charge.authorization_id] = charge
            if charge.charge_id:
                self.by_charge_id[charge.charge_id] = charge
        for key, fingerprint, status, body in self.store.answered_keys():
            self.keys[key] = Stored(fingerprint, status, body)

    def touch(self, charge: Charge) -> None:
        """Note that the running call changed `charge`."""
        self.dirty.append(charge)

    def persist(self, key: str | None, stored: Stored | None) -> None:
        """Write the running call's changed charges and its answer in one transaction."""
        changed, self.dirty = self.dirty, []
        if self.store is None:
            return
        record = (key, stored.fingerprint, stored.status, stored.body) if key and stored else None
        self.store.write((c.to_json() | {"token": c.token} for c in changed), record)


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
        request: web.Request,
        operation: str,
        operate: Callable[[dict[str, Any]], Awaitable[web.Response]],
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
        if body.get("token") == TOKEN_TIMEOUT:
            # The request is lost on the way: never processed, never answered.
            await asyncio.Event().wait()
        # A processor finishes what it received even when the caller hangs up: the work
        # runs in its own task, which a dropped connection does not cancel.
        work = asyncio.ensure_future(_once(key, fingerprint, operation, lambda: operate(body)))
        state.running.add(work)
        work.add_done_callback(state.running.discard)
        response, stored = await asyncio.shield(work)
        if response is not None:
            return response
        assert stored is not None
        if stored.fingerprint != fingerprint:
            return _error(409, "idempotency_key_reused", "this key was used for another request")
        return web.json_response(
            stored.body, status=stored.status, headers={"Idempotent-Replayed": "true"}
        )

    async def _once(
        key: str,
        fingerprint: str,
        operation: str,
        operate: Callable[[], Awaitable[web.Response]],
    ) -> tuple[web.Response | None, Stored | None]:
        """Run the call unless the key already has an answer: (fresh response, stored answer)."""
        lock = state.locks.setdefault(key, asyncio.Lock())
        async with lock:
            stored = state.keys.get(key)
            if stored is not None:
                return None, stored
            state.processing.add(key)
            try:
                if stall := state.stalls.get(operation, 0.0):
                    await asyncio.sleep(stall)
                state.dirty.clear()
                response = await operate()
                payload = json.loads(response.text or "{}")
                # Server errors are not stored, so a retry can still succeed.
                if response.status < 500:
                    state.keys[key] = Stored(fingerprint, response.status, payload)
                    state.persist(key, state.keys[key])
                return response, None
            finally:
                state.processing.discard(key)

    async def authorize(body: dict[str, Any]) -> web.Response:
        token = str(body.get("token", ""))
        amount = body.get("amount_minor")
        currency = str(body.get("currency", ""))
        if not isinstance(amount, int) or amount <= 0 or len(currency) != 3:
            return _error(400, "invalid_amount", "amount_minor > 0 and a currency are required")
        if token == TOKEN_DECLINED:
            return _error(402, "card_declined", "the card was declined")
        if token == TOKEN_INSUFFICIENT_FUNDS:
            return _error(402, "insufficient_funds", "the card has insufficient funds")
        if token != TOKEN_VISA:
            return _error(402, "invalid_token", "unknown payment method token")
        charge = Charge(f"auth_{uuid.uuid4().hex}", token, amount, currency)
        state.charges[charge.authorization_id] = charge
        state.touch(charge)
        return web.json_response(charge.to_json(), status=201)

    async def post_authorize(request: web.Request) -> web.Response:
        return await idempotent(request, "authorize", authorize)

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
            state.touch(charge)
            return web.json_response(charge.to_json(), status=201)

        return await idempotent(request, "capture", capture)

    async def post_void(request: web.Request) -> web.Response:
        async def void(body: dict[str, Any]) -> web.Response:
            charge = state.charges.get(request.match_info["authorization_id"])
            if charge is None:
                return _error(404, "not_found", "no such authorization")
            if charge.status not in ("authorized", "voided"):
                return _error(409, "not_voidable", f"the authorization is {charge.status}")
            charge.status = "voided"
            state.touch(charge)
            return web.json_response(charge.to_json())

        return await idempotent(request, "void", void)

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
            state.touch(charge)
            return web.json_response(
                {"refund_id": f"re_{uuid.uuid4().hex}", "charge": charge.to_json()}, status=201
            )

        return await idempotent(request, "refund", refund)

    async def get_idempotency_key(request: web.Request) -> web.Response:
        # Reconciliation after a crash: what did the call with this key answer, if it ran?
        key = request.match_info["key"]
        stored = state.keys.get(key)
        if stored is None and key in state.processing:
            # Received and not done yet: the outcome is still unknown, ask again later.
            return _error(409, "request_in_progress", "the call with this key is still running")
        if stored is None:
            return _error(404, "not_found", "no call was made with this key")
        return web.json_response({"status": stored.status, "body": stored.body})

    async def list_charges(request: web.Request) -> web.Response:
        return web.json_response({"charges": [c.to_json() for c in state.charges.values()]})

    async def put_stall(request: web.Request) -> web.Response:
        operation = request.match_info["operation"]
        try:
            body = await request.json()
            seconds = float(body["seconds"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            return _error(400, "invalid_stall", 'send {"seconds": <number >= 0>}')
        if operation not in OPERATIONS or seconds < 0:
            return _error(400, "invalid_stall", f"operation is one of {sorted(OPERATIONS)}")
        state.stalls[operation] = seconds
        return web.json_response({"stalls": state.stalls})

    async def delete_stall(request: web.Request) -> web.Response:
        state.stalls.pop(request.match_info["operation"], None)
        return web.json_response({"stalls": state.stalls})

    async def get_stalls(request: web.Request) -> web.Response:
        return web.json_response({"stalls": state.stalls})

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
    # The fake's fault controls: not part of any real processor's API.
    app.router.add_get("/_sandbox/stalls", get_stalls)
    app.router.add_put("/_sandbox/stalls/{operation}", put_stall)
    app.router.add_delete("/_sandbox/stalls/{operation}", delete_stall)
    return app
