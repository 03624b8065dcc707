"""The gRPC adapter of the user service: requests to commands, results to responses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf import empty_pb2
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.common.clock import Clock
from services.common.identity import current_caller
from services.user import mappers
from services.user.domain import commands
from services.user.domain.emails import MailPolicy
from services.user.domain.model import ThrottlePolicy
from services.user.privacy_servicer import PeerRecords, PrivacyRpcs
from services.user.service_layer import (
    accounts,
    addresses,
    email_verification,
    passwords,
    profiles,
    roles,
    sessions,
    sign_in,
    suspension,
    wishlist,
)
from services.user.service_layer.ports import (
    PasswordHasher,
    ProductCatalog,
    Sleep,
    TokenIssuer,
    UnitOfWork,
)
from services.user.service_layer.throttling import DEFAULT_THROTTLE

type Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Dependencies:
    """The ports the handlers need, built once by the composition root."""

    uow: Callable[[], UnitOfWork]
    clock: Clock
    hasher: PasswordHasher
    authenticator: sign_in.Authenticator
    issuer: TokenIssuer
    refresh_ttl: timedelta
    mail: MailPolicy = field(default_factory=MailPolicy)
    throttle: ThrottlePolicy = DEFAULT_THROTTLE
    catalog: ProductCatalog | None = None
    sleep: Sleep = asyncio.sleep
    peers: PeerRecords | None = None


class UserServicer(PrivacyRpcs, user_service_pb2_grpc.UserServiceServicer):
    """UserService: every RPC of the contract."""

    def __init__(self, deps: Dependencies) -> None:
        self._deps = deps

    async def CreateUser(
        self, request: user_service_pb2.CreateUserRequest, context: Context
    ) -> user_pb2.User:
        """Register a new customer account."""
        command = mappers.create_user_command(request)
        user = await accounts.create_user(
            command,
            uow=self._deps.uow(),
            hasher=self._deps.hasher,
            mail=self._deps.mail,
            clock=self._deps.clock,
        )
        return mappers.user_to_proto(user)

    async def Login(
        self, request: user_service_pb2.LoginRequest, context: Context
    ) -> user_service_pb2.LoginResponse:
        """Exchange an email and password for a token pair."""
        command = mappers.login_command(request, context)
        tokens = await sign_in.login(
            command,
            uow=self._deps.uow(),
            authenticator=self._deps.authenticator,
            issuer=self._deps.issuer,
            refresh_ttl=self._deps.refresh_ttl,
            hasher=self._deps.hasher,
            throttle=self._deps.throttle,
            sleep=self._deps.sleep,
            clock=self._deps.clock,
        )
        return mappers.login_response(tokens)

    async def GetUser(
        self, request: user_service_pb2.GetUserRequest, context: Context
    ) -> user_pb2.User:
        """Return the caller's account, or any account to an admin."""
        command = mappers.get_user_command(request, current_caller())
        user = await accounts.get_user(command, uow=self._deps.uow(), clock=self._deps.clock)
        return mappers.user_to_proto(user)

    async def UpdateUser(
        self, request: user_service_pb2.UpdateUserRequest, context: Context
    ) -> user_pb2.User:
        """Change the caller's profile fields in the mask."""
        command = mappers.update_user_command(request, current_caller())
        user = await profiles.update_user(command, uow=self._deps.uow(), clock=self._deps.clock)
        return mappers.user_to_proto(user)

    async def ListUsers(
        self, request: user_service_pb2.ListUsersRequest, context: Context
    ) -> user_service_pb2.ListUsersResponse:
        """Search users (admins only)."""
        command = commands.ListUsers(
            caller=current_caller(),
            page_size=request.page_size,
            page_token=request.page_token,
            query=request.query,
            role=mappers.role_name(request.role) or None,
        )
        users, token = await accounts.list_users(
            command, uow=self._deps.uow(), clock=self._deps.clock
        )
        return user_service_pb2.ListUsersResponse(
            users=[mappers.user_to_proto(u) for u in users], next_page_token=token
        )

    async def SetUserRoles(
        self, request: user_service_pb2.SetUserRolesRequest, context: Context
    ) -> user_pb2.User:
        """Replace a user's roles (admins only)."""
        command = commands.SetUserRoles(
            caller=current_caller(),
            user_id=request.user_id,
            roles=tuple(mappers.role_name(r) for r in request.roles),
        )
        user = await roles.set_user_roles(command, uow=self._deps.uow(), clock=self._deps.clock)
        return mappers.user_to_proto(user)

    async def SuspendUser(
        self, request: user_service_pb2.SuspendUserRequest, context: Context
    ) -> user_pb2.User:
        """Suspend an account (admins only)."""
        command = commands.SuspendUser(
            caller=current_caller(), user_id=request.user_id, reason=request.reason
        )
        user = await suspension.suspend_user(command, uow=self._deps.uow(), clock=self._deps.clock)
        return mappers.user_to_proto(user)

    async def ReactivateUser(
        self, request: user_service_pb2.ReactivateUserRequest, context: Context
    ) -> user_pb2.User:
        """Lift a suspension (admins only)."""
        command = commands.ReactivateUser(caller=current_caller(), user_id=request.user_id)
        user = await suspension.reactivate_user(
            command, uow=self._deps.uow(), clock=self._deps.clock
        )
        return mappers.user_to_proto(user)

    async def VerifyEmail(
        self, request: user_service_pb2.VerifyEmailRequest, context: Context
    ) -> user_service_pb2.VerifyEmailResponse:
        """Confirm an email address with a mailed token."""
        user = await email_verification.verify_email(
            commands.VerifyEmail(token=request.token), uow=self._deps.uow(), clock=self._deps.clock
        )
        return user_service_pb2.VerifyEmailResponse(user=mappers.user_to_proto(user))

    async def ResendVerificationEmail(
        self, request: user_service_pb2.ResendVerificationEmailRequest, context: Context
    ) -> user_service_pb2.ResendVerificationEmailResponse:
        """Mail the caller a new verification link."""
        await email_verification.resend_verification(
            commands.CallerOnly(current_caller()),
            uow=self._deps.uow(),
            mail=self._deps.mail,
            clock=self._deps.clock,
        )
        return user_service_pb2.ResendVerificationEmailResponse()

    async def RefreshToken(
        self, request: user_service_pb2.RefreshTokenRequest, context: Context
    ) -> user_service_pb2.RefreshTokenResponse:
        """Rotate a refresh token into a new token pair."""
        tokens = await sessions.refresh(
            commands.RefreshTokens(request.refresh_token),
            uow=self._deps.uow(),
            issuer=self._deps.issuer,
            clock=self._deps.clock,
        )
        return mappers.tokens_response(tokens)

    async def Logout(
        self, request: user_service_pb2.LogoutRequest, context: Context
    ) -> user_service_pb2.LogoutResponse:
        """End the session of a refresh token."""
        await sessions.logout(
            commands.Logout(request.refresh_token), uow=self._deps.uow(), clock=self._deps.clock
        )
        return user_service_pb2.LogoutResponse()

    async def LogoutAll(
        self, request: user_service_pb2.LogoutAllRequest, context: Context
    ) -> user_service_pb2.LogoutAllResponse:
        """End every session of the caller."""
        ended = await sessions.logout_all(
            commands.CallerOnly(current_caller()), uow=self._deps.uow(), clock=self._deps.clock
        )
        return user_service_pb2.LogoutAllResponse(revoked_sessions=ended)

    async def ListSessions(
        self, request: user_service_pb2.ListSessionsRequest, context: Context
    ) -> user_service_pb2.ListSessionsResponse:
        """List the caller's live sessions."""
        live = await sessions.list_sessions(
            commands.CallerOnly(current_caller()), uow=self._deps.uow(), clock=self._deps.clock
        )
        return user_service_pb2.ListSessionsResponse(
            sessions=[mappers.session_to_proto(s, current) for s, current in live]
        )

    async def ChangePassword(
        self, request: user_service_pb2.ChangePasswordRequest, context: Context
    ) -> user_service_pb2.ChangePasswordResponse:
        """Replace the caller's password and end their other sessions."""
        command = commands.ChangePassword(
            caller=current_caller(),
            current_password=request.current_password,
            new_password=request.new_password,
            client_ip=mappers.client_ip(context),
        )
        await passwords.change_password(
            command,
            uow=self._deps.uow(),
            hasher=self._deps.hasher,
            sleep=self._deps.sleep,
            throttle=self._deps.throttle,
            clock=self._deps.clock,
        )
        return user_service_pb2.ChangePasswordResponse()

    async def RequestPasswordReset(
        self, request: user_service_pb2.RequestPasswordResetRequest, context: Context
    ) -> user_service_pb2.RequestPasswordResetResponse:
        """Mail a reset link if the address has an account; the answer is always the same."""
        await passwords.request_password_reset(
            commands.RequestPasswordReset(request.email),
            uow=self._deps.uow(),
            mail=self._deps.mail,
            clock=self._deps.clock,
        )
        return user_service_pb2.RequestPasswordResetResponse()

    async def ResetPassword(
        self, request: user_service_pb2.ResetPasswordRequest, context: Context
    ) -> user_service_pb2.ResetPasswordResponse:
        """Set a new password with a mailed token."""
        await passwords.reset_password(
            commands.ResetPassword(request.token, request.new_password),
            uow=self._deps.uow(),
            hasher=self._deps.hasher,
            clock=self._deps.clock,
        )
        return user_service_pb2.ResetPasswordResponse()

    async def GetPreferences(
        self, request: user_service_pb2.GetPreferencesRequest, context: Context
    ) -> user_pb2.Preferences:
        """Return a user's preferences with defaults."""
        preferences = await profiles.get_preferences(
            commands.GetPreferences(current_caller(), request.user_id),
            uow=self._deps.uow(),
            clock=self._deps.clock,
        )
        return mappers.preferences_to_proto(preferences)

    async def UpdatePreferences(
        self, request: user_service_pb2.UpdatePreferencesRequest, context: Context
    ) -> user_pb2.Preferences:
        """Change the preferences in the mask."""
        command = mappers.update_preferences_command(request, current_caller())
        preferences = await profiles.update_preferences(
            command, uow=self._deps.uow(), clock=self._deps.clock
        )
        return mappers.preferences_to_proto(preferences)

    async def ListWishlistItems(
        self, request: user_service_pb2.ListWishlistItemsRequest, context: Context
    ) -> user_service_pb2.ListWishlistItemsResponse:
        """List one page of a wishlist, newest first."""
        command = commands.ListWishlist(
            current_caller(), request.user_id, request.page_size, request.page_token
        )
        items, token = await wishlist.list_wishlist(
            command, uow=self._deps.uow(), clock=self._deps.clock
        )
        return user_service_pb2.ListWishlistItemsResponse(
            items=[mappers.wishlist_item_to_proto(i) for i in items], next_page_token=token
        )

    async def AddWishlistItem(
        self, request: user_service_pb2.AddWishlistItemRequest, context: Context
    ) -> user_pb2.WishlistItem:
        """Keep a product on the caller's wishlist."""
        if self._deps.catalog is None:
            raise RuntimeError("the product catalog is not configured")
        command = commands.WishlistChange(current_caller(), request.user_id, request.product_id)
        item = await wishlist.add_wishlist_item(
            command, uow=self._deps.uow(), catalog=self._deps.catalog, clock=self._deps.clock
        )
        return mappers.wishlist_item_to_proto(item)

    async def RemoveWishlistItem(
        self, request: user_service_pb2.RemoveWishlistItemRequest, context: Context
    ) -> empty_pb2.Empty:
        """Take a product off the caller's wishlist."""
        command = commands.WishlistChange(current_caller(), request.user_id, request.product_id)
        await wishlist.remove_wishlist_item(command, uow=self._deps.uow(), clock=self._deps.clock)
        return empty_pb2.Empty()

    async def ListAddresses(
        self, request: user_service_pb2.ListAddressesRequest, context: Context
    ) -> user_service_pb2.ListAddressesResponse:
        """List a user's address book."""
        command = commands.ListAddresses(caller=current_caller(), user_id=request.user_id)
        book = await addresses.list_addresses(command, uow=self._deps.uow(), clock=self._deps.clock)
        return user_service_pb2.ListAddressesResponse(
            addresses=[mappers.address_to_proto(a) for a in book]
        )

    async def GetAddress(
        self, request: user_service_pb2.GetAddressRequest, context: Context
    ) -> user_pb2.Address:
        """Return one address."""
        command = commands.GetAddress(
            caller=current_caller(), user_id=request.user_id, address_id=request.address_id
        )
        address = await addresses.get_address(command, uow=self._deps.uow(), clock=self._deps.clock)
        return mappers.address_to_proto(address)

    async def CreateAddress(
        self, request: user_service_pb2.CreateAddressRequest, context: Context
    ) -> user_pb2.Address:
        """Add an address to the caller's book."""
        command = mappers.create_address_command(request, current_caller())
        address = await addresses.create_address(
            command, uow=self._deps.uow(), clock=self._deps.clock
        )
        return mappers.address_to_proto(address)

    async def UpdateAddress(
        self, request: user_service_pb2.UpdateAddressRequest, context: Context
    ) -> user_pb2.Address:
        """Change the masked fields of an address."""
        command = mappers.update_address_command(request, current_caller())
        address = await addresses.update_address(
            command, uow=self._deps.uow(), clock=self._deps.clock
        )
        return mappers.address_to_proto(address)

    async def DeleteAddress(
        self, request: user_service_pb2.DeleteAddressRequest, context: Context
    ) -> empty_pb2.Empty:
        """Remove an address from the caller's book."""
        command = commands.DeleteAddress(
            caller=current_caller(), user_id=request.user_id, address_id=request.address_id
        )
        await addresses.delete_address(command, uow=self._deps.uow(), clock=self._deps.clock)
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
        address = await addresses.get_shipping_address(
            command, uow=self._deps.uow(), clock=self._deps.clock
        )
        return user_service_pb2.GetShippingAddressResponse(
            address=mappers.address_to_proto(address)
        )
