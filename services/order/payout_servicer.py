"""The gRPC face of payouts: requests to commands, results to responses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, override

import grpc
from marketplace.order.v1 import payout_pb2, payout_service_pb2, payout_service_pb2_grpc

from services.common.clock import Clock
from services.common.identity import current_caller
from services.order.mappers import payouts as payout_mappers
from services.order.service_layer import payouts
from services.order.service_layer.ports import PayoutUnitOfWorkFactory

type Context = grpc.aio.ServicerContext[Any, Any]


class PayoutServicer(payout_service_pb2_grpc.PayoutServiceServicer):
    """marketplace.order.v1.PayoutService."""

    def __init__(self, *, uow: PayoutUnitOfWorkFactory, clock: Clock, hold: timedelta) -> None:
        self._uow = uow
        self._clock = clock
        self._hold = hold

    @override
    async def GetSellerBalance(
        self, request: payout_service_pb2.GetSellerBalanceRequest, context: Context
    ) -> payout_pb2.SellerBalance:
        """Return a seller's available and pending balance per currency."""
        command = payout_mappers.get_balance_command(request, current_caller())
        balance = await payouts.get_balance(
            command, uow=self._uow, clock=self._clock, hold=self._hold
        )
        return payout_mappers.balance_to_proto(balance)

    @override
    async def ListLedgerEntries(
        self, request: payout_service_pb2.ListLedgerEntriesRequest, context: Context
    ) -> payout_service_pb2.ListLedgerEntriesResponse:
        """Return one page of a seller's ledger, newest first."""
        command = payout_mappers.list_ledger_command(request, current_caller())
        page, cursor = await payouts.list_ledger(command, uow=self._uow)
        return payout_service_pb2.ListLedgerEntriesResponse(
            entries=[payout_mappers.entry_to_proto(e, self._hold) for e in page],
            next_page_token=payout_mappers.page_token(command.seller_id, cursor),
        )

    @override
    async def ListPayouts(
        self, request: payout_service_pb2.ListPayoutsRequest, context: Context
    ) -> payout_service_pb2.ListPayoutsResponse:
        """Return one page of payouts, newest first."""
        command = payout_mappers.list_payouts_command(request, current_caller())
        page, cursor = await payouts.list_payouts(command, uow=self._uow)
        return payout_service_pb2.ListPayoutsResponse(
            payouts=[payout_mappers.payout_to_proto(p) for p in page],
            next_page_token=payout_mappers.page_token(command.seller_id, cursor),
        )

    @override
    async def RunPayouts(
        self, request: payout_service_pb2.RunPayoutsRequest, context: Context
    ) -> payout_service_pb2.RunPayoutsResponse:
        """Pay every seller their positive available balance; admins only."""
        command = payout_mappers.run_payouts_command(request, current_caller())
        run = await payouts.run_payouts(command, uow=self._uow, clock=self._clock, hold=self._hold)
        return payout_mappers.run_to_proto(run)
