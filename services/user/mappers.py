"""Mapping between the user service's protobuf messages and its domain objects."""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from marketplace.order.v1 import order_internal_service_pb2 as order_internal_pb2
from marketplace.product.v1 import product_service_pb2
from marketplace.user.v1 import export_pb2, user_pb2, user_service_pb2

from services.common.identity import Caller, Role
from services.common.metadata import request_metadata
from services.user.domain import commands
from services.user.domain.addresses import Address, AddressFields
from services.user.domain.model import Preferences, SessionView, User, UserState, WishlistItem
from services.user.service_layer.export import DataExport

_ROLES = {
    Role.CUSTOMER: user_pb2.ROLE_CUSTOMER,
    Role.SELLER: user_pb2.ROLE_SELLER,
    Role.ADMIN: user_pb2.ROLE_ADMIN,
}
_STATES = {
    UserState.ACTIVE: user_pb2.USER_STATE_ACTIVE,
    UserState.SUSPENDED: user_pb2.USER_STATE_SUSPENDED,
    # Never shown: the repository hands no deleted account out.
    UserState.DELETED: user_pb2.USER_STATE_UNSPECIFIED,
}


def _timestamp(value: Any) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def user_to_proto(user: User) -> user_pb2.User:
    """The User message of an account; never carries the password hash."""
    return user_pb2.User(
        user_id=str(user.id),
        email=user.email,
        username=user.username,
        display_name=user.display_name,
        roles=sorted(_ROLES[r] for r in user.roles),
        email_verified=user.email_verified,
        state=_STATES[user.state],
        bio=user.bio,
        avatar_url=user.avatar_url,
        phone_number=user.phone_number,
        create_time=_timestamp(user.created_at),
        update_time=_timestamp(user.updated_at),
    )


def create_user_command(request: user_service_pb2.CreateUserRequest) -> commands.CreateUser:
    """The CreateUser command of a request."""
    return commands.CreateUser(
        email=request.email,
        username=request.username,
        password=request.password,
        display_name=request.display_name,
    )


def client_ip(context: grpc.aio.ServicerContext[Any, Any]) -> str | None:
    """The address of the client: Envoy's external address, else the gRPC peer."""
    return request_metadata(context).client_address


def login_command(
    request: user_service_pb2.LoginRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> commands.Login:
    """The Login command of a request, with the client's user agent and address."""
    metadata = request_metadata(context)
    return commands.Login(
        email=request.email,
        password=request.password,
        user_agent=metadata.user_agent,
        client_ip=metadata.client_address,
    )


def get_user_command(request: user_service_pb2.GetUserRequest, caller: Caller) -> commands.GetUser:
    """The GetUser command of a request by `caller`."""
    return commands.GetUser(user_id=request.user_id, caller=caller)


def login_response(tokens: commands.IssuedTokens) -> user_service_pb2.LoginResponse:
    """The LoginResponse carrying a token pair."""
    return user_service_pb2.LoginResponse(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        token_type=tokens.token_type,
    )


def address_fields(address: user_pb2.Address) -> AddressFields:
    """The writable fields of an Address message."""
    return AddressFields(
        recipient_name=address.recipient_name,
        line1=address.line1,
        line2=address.line2,
        city=address.city,
        region=address.region,
        postal_code=address.postal_code,
        country_code=address.country_code,
        phone_number=address.phone_number,
        is_default_shipping=address.is_default_shipping,
    )


def address_to_proto(address: Address) -> user_pb2.Address:
    """The Address message of an address-book entry."""
    f = address.fields
    return user_pb2.Address(
        address_id=str(address.id),
        user_id=str(address.user_id),
        recipient_name=f.recipient_name,
        line1=f.line1,
        line2=f.line2,
        city=f.city,
        region=f.region,
        postal_code=f.postal_code,
        country_code=f.country_code,
        phone_number=f.phone_number,
        is_default_shipping=f.is_default_shipping,
    )


def create_address_command(
    request: user_service_pb2.CreateAddressRequest, caller: Caller
) -> commands.CreateAddress:
    """The CreateAddress command of a request by `caller`."""
    return commands.CreateAddress(
        caller=caller, user_id=request.user_id, fields=address_fields(request.address)
    )


def update_address_command(
    request: user_service_pb2.UpdateAddressRequest, caller: Caller
) -> commands.UpdateAddress:
    """The UpdateAddress command of a request by `caller`."""
    return commands.UpdateAddress(
        caller=caller,
        user_id=request.address.user_id,
        address_id=request.address.address_id,
        fields=address_fields(request.address),
        paths=tuple(request.update_mask.paths),
    )


_ROLE_NAMES: dict[int, str] = {int(value): role.value for role, value in _ROLES.items()}
_CHANNELS = {
    "email": user_pb2.NOTIFICATION_CHANNEL_EMAIL,
    "sms": user_pb2.NOTIFICATION_CHANNEL_SMS,
    "push": user_pb2.NOTIFICATION_CHANNEL_PUSH,
}
_CHANNEL_NAMES: dict[int, str] = {int(value): name for name, value in _CHANNELS.items()}


def role_name(role: int) -> str:
    """The stored name of a Role enum value; "" for ROLE_UNSPECIFIED and unknown values."""
    return _ROLE_NAMES.get(int(role), "")


def tokens_response(tokens: commands.IssuedTokens) -> user_service_pb2.RefreshTokenResponse:
    """The RefreshTokenResponse carrying a token pair."""
    return user_service_pb2.RefreshTokenResponse(
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        expires_in=tokens.expires_in,
        token_type=tokens.token_type,
    )


def session_to_proto(session: SessionView, current: bool) -> user_pb2.Session:
    """The Session message of a live session."""
    return user_pb2.Session(
        session_id=str(session.id),
        user_agent=session.user_agent,
        client_ip=session.client_ip or "",
        create_time=_timestamp(session.created_at),
        last_use_time=_timestamp(session.last_used_at),
        current=current,
    )


def update_user_command(
    request: user_service_pb2.UpdateUserRequest, caller: Caller
) -> commands.UpdateUser:
    """The UpdateUser command of a request by `caller`."""
    user = request.user
    return commands.UpdateUser(
        caller=caller,
        user_id=user.user_id,
        fields=commands.ProfileFields(
            display_name=user.display_name,
            bio=user.bio,
            avatar_url=user.avatar_url,
            phone_number=user.phone_number,
        ),
        paths=tuple(request.update_mask.paths),
    )


def preferences_to_proto(preferences: Preferences) -> user_pb2.Preferences:
    """The Preferences message."""
    return user_pb2.Preferences(
        user_id=str(preferences.user_id),
        language=preferences.language,
        currency_code=preferences.currency_code,
        marketing_opt_in=preferences.marketing_opt_in,
        notification_channels=[_CHANNELS[c] for c in preferences.notification_channels],
    )


def update_preferences_command(
    request: user_service_pb2.UpdatePreferencesRequest, caller: Caller
) -> commands.UpdatePreferences:
    """The UpdatePreferences command of a request by `caller`."""
    prefs = request.preferences
    return commands.UpdatePreferences(
        caller=caller,
        user_id=prefs.user_id,
        language=prefs.language,
        currency_code=prefs.currency_code,
        marketing_opt_in=prefs.marketing_opt_in,
        # Unknown and UNSPECIFIED values map to "" and fail validation as unknown channels.
        notification_channels=tuple(
            _CHANNEL_NAMES.get(int(c), "") for c in prefs.notification_channels
        ),
        paths=tuple(request.update_mask.paths),
    )


def wishlist_item_to_proto(item: WishlistItem) -> user_pb2.WishlistItem:
    """The WishlistItem message."""
    return user_pb2.WishlistItem(product_id=item.product_id, add_time=_timestamp(item.added_at))


def export_to_proto(
    export: DataExport[
        product_service_pb2.ExportUserDataResponse, order_internal_pb2.ExportUserDataResponse
    ],
) -> export_pb2.DataExport:
    """The export document: the user service's sections, then the peers' as they sent them."""
    return export_pb2.DataExport(
        export_time=_timestamp(export.exported_at),
        account=user_to_proto(export.user),
        addresses=[address_to_proto(a) for a in export.addresses],
        preferences=preferences_to_proto(export.preferences),
        wishlist_items=[wishlist_item_to_proto(i) for i in export.wishlist],
        sessions=[session_to_proto(s, current) for s, current in export.sessions],
        reviews=export.products.reviews,
        listings=export.products.listings,
        orders=export.orders.orders,
        returns=export.orders.returns,
        cart=export.orders.cart,
    )
