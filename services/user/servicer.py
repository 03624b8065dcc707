"""The gRPC adapter of the user service: requests to commands, results to responses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.common.auth import current_caller
from services.user import mappers
from services.user.service_layer import handlers
from services.user.service_layer.ports import PasswordHasher, TokenIssuer, UnitOfWork

type Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Dependencies:
    """The ports the handlers need, built once by the composition root."""

    uow: Callable[[], UnitOfWork]
    hasher: PasswordHasher
    authenticator: handlers.Authenticator
    issuer: TokenIssuer
    refresh_ttl: timedelta


class UserServicer(user_service_pb2_grpc.UserServiceServicer):
    """UserService; RPCs not overridden here answer UNIMPLEMENTED through the base class."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def CreateUser(
        self, request: user_service_pb2.CreateUserRequest, context: Context
    ) -> user_pb2.User:
        """Register a new customer account."""
        command = mappers.create_user_command(request)
        user = await handlers.create_user(command, uow=self._deps.uow(), hasher=self._deps.hasher)
        return mappers.user_to_proto(user)

    async def Login(
        self, request: user_service_pb2.LoginRequest, context: Context
    ) -> user_service_pb2.LoginResponse:
        """Exchange an email and password for a token pair."""
        command = mappers.login_command(request, context)
        tokens = await handlers.login(
            command,
            uow=self._deps.uow(),
            authenticator=self._deps.authenticator,
            issuer=self._deps.issuer,
            refresh_ttl=self._deps.refresh_ttl,
        )
        return mappers.login_response(tokens)

    async def GetUser(
        self, request: user_service_pb2.GetUserRequest, context: Context
    ) -> user_pb2.User:
        """Return the caller's account, or any account to an admin."""
        command = mappers.get_user_command(request, current_caller())
        user = await handlers.get_user(command, uow=self._deps.uow())
        return mappers.user_to_proto(user)


class UserInternalServicer(user_service_pb2_grpc.UserInternalServiceServicer):
    """UserInternalService; GetShippingAddress comes with the address book."""
