"""The user service for tests: one settings factory, served in-process, and its helpers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.user.adapters.signing import KeyRing, SigningKey
from services.user.app import build_app
from services.user.config import Settings
from tests.support.inprocess import InProcessService, serve_in_process
from tests.support.servers import Backends

MIGRATIONS = Path("services/user/migrations")
PASSWORD = "correct horse battery"
INTERNAL_SECRET = "contract-test-internal-secret"
DEMO_PASSWORD = "demo-password-for-tests"


def user_settings(database_url: str, **overrides: Any) -> Settings:
    """Settings for a user server on free ports: the one factory every user test uses.

    The defaults keep tests fast: no shutdown notice, a short grace, and cheap argon2
    parameters (production keeps its own). `overrides` replace any of them.
    """
    values: dict[str, Any] = {
        "database_url": database_url,
        "environment": "test",
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "ops_port": 0,
        "internal_secret": INTERNAL_SECRET,
        "shutdown_notice_seconds": 0,
        "shutdown_grace_seconds": 1,
        "password_time_cost": 1,
        "password_memory_kib": 8192,
        "password_parallelism": 1,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class UserService:
    """The served user service, a stub to it, its signing keys and its database."""

    served: InProcessService
    stub: user_service_pb2_grpc.UserServiceAsyncStub
    ring: KeyRing
    settings: Settings
    db: asyncpg.Connection[asyncpg.Record]


@asynccontextmanager
async def running_user_service(
    backends: Backends, *, app_overrides: dict[str, Any] | None = None, **overrides: Any
) -> AsyncIterator[UserService]:
    """The user service on a fresh database; other user test modules start their own."""
    url = overrides.pop("database_url", None) or backends.database_url("users", MIGRATIONS)
    overrides.setdefault("seed_demo_accounts", True)
    overrides.setdefault("demo_password", DEMO_PASSWORD)
    settings = user_settings(url, **overrides)
    ring = (app_overrides or {}).get("key_ring") or KeyRing(SigningKey.generate())
    db = await asyncpg.connect(url)
    try:
        extra = {"key_ring": ring, **(app_overrides or {})}
        async with serve_in_process(settings, lambda: build_app(settings, **extra)) as served:
            stub = user_service_pb2_grpc.UserServiceStub(served.channel)
            yield UserService(served, stub, ring, settings, db)
    finally:
        await db.close()


def unique(prefix: str = "u") -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


def new_user_request(**overrides: str) -> user_service_pb2.CreateUserRequest:
    name = unique()
    fields = {
        "email": f"{name}@example.com",
        "username": name,
        "password": PASSWORD,
        "display_name": "Test User",
    }
    fields.update(overrides)
    return user_service_pb2.CreateUserRequest(**fields)


async def register_and_login(svc: UserService) -> tuple[user_pb2.User, str]:
    request = new_user_request()
    user = await svc.stub.CreateUser(request)
    tokens = await svc.stub.Login(
        user_service_pb2.LoginRequest(email=request.email, password=request.password)
    )
    return user, tokens.access_token


async def login(svc: UserService, email: str, password: str) -> str:
    response = await svc.stub.Login(user_service_pb2.LoginRequest(email=email, password=password))
    return response.access_token
