"""The gRPC face of returns: requests to commands, results to responses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, override

import grpc
from marketplace.order.v1 import return_pb2, return_service_pb2, return_service_pb2_grpc

from services.common.clock import Clock
from services.common.identity import current_caller
from services.common.metadata import request_metadata
from services.order.mappers import returns as return_mappers
from services.order.service_layer import returns
from services.order.service_layer.ports import ReturnUnitOfWorkFactory
from services.order.service_layer.refunds import ChangeRunner

type Context = grpc.aio.ServicerContext[Any, Any]


class ReturnServicer(return_service_pb2_grpc.ReturnServiceServicer):
    """marketplace.order.v1.ReturnService."""

    def __init__(
        self,
        *,
        uow: ReturnUnitOfWorkFactory,
        changes: ChangeRunner,
        clock: Clock,
        window: timedelta,
    ) -> None:
        self._uow = uow
        self._changes = changes
        self._clock = clock
        self._window = window

    @override
    async def CreateReturn(
        self, request: return_service_pb2.CreateReturnRequest, context: Context
    ) -> return_pb2.Return:
        """Ask to return delivered lines, once per idempotency key."""
        command = return_mappers.create_return_command(
            request, current_caller(), request_metadata(context).idempotency_key
        )
        created = await returns.create_return(
            command, uow=self._uow, clock=self._clock, window=self._window
        )
        return return_mappers.return_to_proto(created)

    @override
    async def ListReturns(
        self, request: return_service_pb2.ListReturnsRequest, context: Context
    ) -> return_service_pb2.ListReturnsResponse:
        """Return one page of an order's returns, oldest first."""
        command = return_mappers.list_returns_command(request, current_caller())
        page, cursor = await returns.list_returns(command, uow=self._uow, clock=self._clock)
        return return_service_pb2.ListReturnsResponse(
            returns=[return_mappers.return_to_proto(r) for r in page],
            next_page_token=return_mappers.page_token(command.order_id, cursor),
        )

    @override
    async def ListSellerReturns(
        self, request: return_service_pb2.ListSellerReturnsRequest, context: Context
    ) -> return_service_pb2.ListSellerReturnsResponse:
        """Return one page of a seller's returns, newest first."""
        command = return_mappers.list_seller_returns_command(request, current_caller())
        page, cursor = await returns.list_seller_returns(command, uow=self._uow, clock=self._clock)
        return return_service_pb2.ListSellerReturnsResponse(
            returns=[return_mappers.return_to_proto(r) for r in page],
            next_page_token=return_mappers.seller_page_token(command, cursor),
        )

    @override
    async def GetReturn(
        self, request: return_service_pb2.GetReturnRequest, context: Context
    ) -> return_pb2.Return:
        """Return one return."""
        command = return_mappers.get_return_command(request, current_caller())
        found = await returns.get_return(command, uow=self._uow, clock=self._clock)
        return return_mappers.return_to_proto(found)

    @override
    async def ApproveReturn(
        self, request: return_service_pb2.ApproveReturnRequest, context: Context
    ) -> return_pb2.Return:
        """Accept a requested return."""
        command = return_mappers.approve_return_command(request, current_caller())
        decided = await returns.decide_return(command, uow=self._uow, clock=self._clock)
        return return_mappers.return_to_proto(decided)

    @override
    async def RejectReturn(
        self, request: return_service_pb2.RejectReturnRequest, context: Context
    ) -> return_pb2.Return:
        """Refuse a requested return."""
        command = return_mappers.reject_return_command(request, current_caller())
        decided = await returns.decide_return(command, uow=self._uow, clock=self._clock)
        return return_mappers.return_to_proto(decided)

    @override
    async def ReceiveReturn(
        self, request: return_service_pb2.ReceiveReturnRequest, context: Context
    ) -> return_pb2.Return:
        """Record the items back and refund them once."""
        command = return_mappers.receive_return_command(request, current_caller())
        received = await returns.receive_return(
            command, uow=self._uow, changes=self._changes, clock=self._clock
        )
        return return_mappers.return_to_proto(received)
