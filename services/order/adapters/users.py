"""The user service, reached over its internal gRPC API: may this buyer buy, and where to."""

from __future__ import annotations

import uuid

import grpc
import structlog
from marketplace.user.v1 import user_pb2
from marketplace.user.v1.error_reason_pb2 import ErrorReason as UserErrorReason
from marketplace_client import MarketplaceError, UserInternalClient

from services.common.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.order.domain.model import ShippingAddress
from services.order.domain.reasons import ErrorReason
from services.order.mappers.orders import address_from_message
from services.order.service_layer.ports import Buyers

__all__ = ["USER_SERVICE_UNAVAILABLE", "Buyers", "GrpcBuyers"]

log = structlog.get_logger("users")

USER_SERVICE_UNAVAILABLE = ErrorReason.USER_SERVICE_UNAVAILABLE


def _user_reason(value: UserErrorReason.ValueType) -> str:
    """The wire string of a user service reason: its enum value's name without the prefix."""
    return UserErrorReason.Name(value).removeprefix("ERROR_REASON_")


# The user service's answers the buyer checks tell apart, from its contract.
_USER_SUSPENDED = _user_reason(UserErrorReason.ERROR_REASON_USER_SUSPENDED)
_USER_NOT_FOUND = _user_reason(UserErrorReason.ERROR_REASON_USER_NOT_FOUND)
_ADDRESS_NOT_FOUND = _user_reason(UserErrorReason.ERROR_REASON_ADDRESS_NOT_FOUND)
_NO_DEFAULT_SHIPPING_ADDRESS = _user_reason(
    UserErrorReason.ERROR_REASON_NO_DEFAULT_SHIPPING_ADDRESS
)


class GrpcBuyers:
    """Buyers backed by marketplace.user.v1.UserInternalService.GetShippingAddress.

    Called through the typed client on the chassis channel `channel`.
    """

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._users = UserInternalClient(channel, timeout=timeout)

    async def check_buyer(self, buyer_id: uuid.UUID) -> None:
        """Succeed when the buyer's account exists and is not suspended.

        The user service has no separate "may this user buy" RPC; GetShippingAddress with
        an empty address id checks the account (NOT_FOUND USER_NOT_FOUND, FAILED_PRECONDITION
        USER_SUSPENDED) before it looks for a default address, so its NOT_FOUND
        NO_DEFAULT_SHIPPING_ADDRESS still proves an active account: the order carries its
        own address and needs no default.
        """
        try:
            await self._get(buyer_id, "")
        except _Refused as refused:
            if refused.reason != _NO_DEFAULT_SHIPPING_ADDRESS:
                raise refused.error from None

    async def shipping_address(self, buyer_id: uuid.UUID, address_id: uuid.UUID) -> ShippingAddress:
        """The buyer's address book entry `address_id`, after the same checks."""
        try:
            address = await self._get(buyer_id, str(address_id))
        except _Refused as refused:
            raise refused.error from None
        return address_from_message(address)

    async def _get(self, buyer_id: uuid.UUID, address_id: str) -> user_pb2.Address:
        try:
            return await self._users.get_shipping_address(str(buyer_id), address_id)
        except MarketplaceError as error:
            raise _refusal(error) from None


class _Refused(Exception):
    """The user service's answer, with its reason kept for check_buyer's one exception."""

    def __init__(self, reason: str, error: DomainError) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error = error


def _refusal(remote: MarketplaceError) -> _Refused:
    """Translate the user service's answer into an error for the buyer."""
    code, reason = remote.code, remote.reason
    if code == grpc.StatusCode.FAILED_PRECONDITION and reason == _USER_SUSPENDED:
        return _Refused(
            reason,
            FailedPrecondition(
                "your account is suspended and cannot place orders; contact support",
                reason=ErrorReason.BUYER_SUSPENDED,
            ),
        )
    if code == grpc.StatusCode.NOT_FOUND and reason == _USER_NOT_FOUND:
        # A valid token whose account is gone (or never existed in this user service).
        return _Refused(
            reason,
            FailedPrecondition(
                "your account was not found; sign in again", reason=ErrorReason.BUYER_NOT_FOUND
            ),
        )
    if code == grpc.StatusCode.NOT_FOUND and reason == _ADDRESS_NOT_FOUND:
        return _Refused(
            reason,
            NotFound(
                "your address book has no such address; check address_id",
                reason=ErrorReason.ADDRESS_NOT_FOUND,
            ),
        )
    if code == grpc.StatusCode.NOT_FOUND and reason == _NO_DEFAULT_SHIPPING_ADDRESS:
        return _Refused(
            reason,
            FailedPrecondition(
                "you have no default shipping address; send shipping_address or address_id",
                reason=ErrorReason.NO_DEFAULT_SHIPPING_ADDRESS,
            ),
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return _Refused(
            reason,
            InvalidArgument([FieldViolation("address_id", remote.message or "is invalid")]),
        )
    # Anything else is the user service being down, slow or misconfigured: the buyer may
    # retry later, and our logs say which.
    log.warning("user_service_call_failed", code=code.name, reason=reason, details=remote.message)
    return _Refused(
        reason,
        Unavailable(
            "the account service is unavailable; try again later",
            reason=USER_SERVICE_UNAVAILABLE,
        ),
    )
