"""The privacy RPCs of UserService (data export, account deletion), mixed into its servicer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2
from marketplace.order.v1 import order_internal_service_pb2 as order_internal_pb2
from marketplace.product.v1 import product_service_pb2
from marketplace.user.v1 import export_pb2, user_service_pb2

from services.common.errors import Unavailable
from services.common.identity import current_caller
from services.user import mappers
from services.user.domain import commands
from services.user.domain.reasons import ErrorReason
from services.user.service_layer import deletion, export
from services.user.service_layer.ports import ExportSource

if TYPE_CHECKING:
    from services.user.servicer import Dependencies

type Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class PeerRecords:
    """The peers the data export asks for what they hold about a user."""

    products: ExportSource[product_service_pb2.ExportUserDataResponse]
    orders: ExportSource[order_internal_pb2.ExportUserDataResponse]


class PrivacyRpcs:
    """ExportMyData and DeleteMyAccount; the servicer provides `_deps`."""

    _deps: Dependencies

    async def DeleteMyAccount(
        self, request: user_service_pb2.DeleteMyAccountRequest, context: Context
    ) -> empty_pb2.Empty:
        """Delete the caller's account after checking their current password."""
        command = commands.DeleteAccount(
            caller=current_caller(),
            current_password=request.current_password,
            client_ip=mappers.client_ip(context),
        )
        await deletion.delete_account(
            command,
            uow=self._deps.uow(),
            hasher=self._deps.hasher,
            sleep=self._deps.sleep,
            throttle=self._deps.throttle,
            clock=self._deps.clock,
        )
        return empty_pb2.Empty()

    async def ExportMyData(
        self, request: user_service_pb2.ExportMyDataRequest, context: Context
    ) -> export_pb2.DataExport:
        """Everything the marketplace holds about the caller, from every service."""
        peers = self._deps.peers
        if peers is None:  # a user service served alone, in tests of other features
            raise Unavailable(
                "the data export is not configured here",
                reason=ErrorReason.ORDER_SERVICE_UNAVAILABLE,
            )
        result = await export.export_my_data(
            commands.CallerOnly(current_caller()),
            uow=self._deps.uow(),
            products=peers.products,
            orders=peers.orders,
            clock=self._deps.clock,
        )
        return mappers.export_to_proto(result)
