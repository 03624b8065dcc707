"""The gRPC adapter of the user service: requests to commands, results to responses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import empty_pb2
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.common.auth import current_caller
from services.user import mappers
from services.user.domain import commands
from services.user.service_layer import address_book, handlers
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

    async def ListAddresses(
        self, request: user_service_pb2.ListAddressesRequest, context: Context
    ) -> user_service_pb2.ListAddressesResponse:
        """List a user's address book."""
        command = commands.ListAddresses(caller=current_caller(), user_id=request.user_id)
        addresses = await address_book.list_addresses(command, uow=self._deps.uow())
        return user_service_pb2.ListAddressesResponse(
            addresses=[mappers.address_to_proto(a) for a in addresses]
        )

    async def GetAddress(
        self, request: user_service_pb2.GetAddressRequest, context: Context
    ) -> user_pb2.Address:
        """Return one address."""
        command = commands.GetAddress(
            caller=current_caller(), user_id=request.user_id, address_id=request.address_id
        )
        address = await address_book.get_address(command, uow=self._deps.uow())
        return mappers.address_to_proto(address)

    async def CreateAddress(
        self, request: user_service_pb2.CreateAddressRequest, context: Context
    ) -> user_pb2.Address:
        """Add an address to the caller's book."""
        command = mappers.create_address_command(request, current_caller())
        address = await address_book.create_address(command, uow=self._deps.uow())
        return mappers.address_to_proto(address)

    async def UpdateAddress(
        self, request: user_service_pb2.UpdateAddressRequest, context: Context
    ) -> user_pb2.Address:
        """Change the masked fields of an address."""
        command = mappers.update_address_command(request, current_caller())
        address = await address_book.update_address(command, uow=self._deps.uow())
        return mappers.address_to_proto(address)

    async def DeleteAddress(
        self, request: user_service_pb2.DeleteAddressRequest, context: Context
    ) -> empty_pb2.Empty:
        """Remove an address from the caller's book."""
        command = commands.DeleteAddress(
            caller=current_caller(), user_id=request.user_id, address_id=request.address_id
        )
        await address_book.delete_address(command, uow=self._deps.uow())
        return empty_pb2.Empty()


class UserInternalServicer(user_service_pb2_grpc.UserInternalServiceServicer):
    """UserInternalService: what the order service asks about buyers."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def GetShippingAddress(
        self, request: user_service_pb2.GetShippingAddressRequest, context: Context
    ) -> user_service_pb2.GetShippingAddressResponse:
        """Check the buyer may buy and return their address (the default when unnamed)."""
        command = commands.GetShippingAddress(
            user_id=request.user_id, address_id=request.address_id
        )
        address = await address_book.get_shipping_address(command, uow=self._deps.uow())
        return user_service_pb2.GetShippingAddressResponse(
            address=mappers.address_to_proto(address)
        )
