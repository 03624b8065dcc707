"""The gRPC face of shipping profiles and tax rates: requests to commands, results to responses."""

from __future__ import annotations

from typing import Any, override

import grpc
from google.protobuf import empty_pb2
from marketplace.order.v1 import pricing_pb2, pricing_service_pb2, pricing_service_pb2_grpc

from services.common.clock import Clock
from services.common.identity import current_caller
from services.order.mappers import pricing as mappers
from services.order.service_layer import pricing
from services.order.service_layer.ports import PricingUnitOfWorkFactory

type Context = grpc.aio.ServicerContext[Any, Any]


class PricingServicer(pricing_service_pb2_grpc.PricingServiceServicer):
    """marketplace.order.v1.PricingService."""

    def __init__(self, *, uow: PricingUnitOfWorkFactory, clock: Clock) -> None:
        self._uow = uow
        self._clock = clock

    @override
    async def GetShippingProfile(
        self, request: pricing_service_pb2.GetShippingProfileRequest, context: Context
    ) -> pricing_pb2.ShippingProfile:
        """Return the caller's shipping profile."""
        profile = await pricing.get_shipping_profile(current_caller(), uow=self._uow)
        return mappers.shipping_profile_to_proto(profile)

    @override
    async def UpdateShippingProfile(
        self, request: pricing_service_pb2.UpdateShippingProfileRequest, context: Context
    ) -> pricing_pb2.ShippingProfile:
        """Set the caller's shipping profile."""
        command = mappers.update_shipping_profile_command(request, current_caller())
        profile = await pricing.update_shipping_profile(command, uow=self._uow, clock=self._clock)
        return mappers.shipping_profile_to_proto(profile)

    @override
    async def ListTaxRates(
        self, request: pricing_service_pb2.ListTaxRatesRequest, context: Context
    ) -> pricing_service_pb2.ListTaxRatesResponse:
        """Return one page of tax rates."""
        caller = current_caller()
        after, size = mappers.tax_rates_page(request)
        page = await pricing.list_tax_rates(caller, after=after, limit=size, uow=self._uow)
        return pricing_service_pb2.ListTaxRatesResponse(
            tax_rates=[mappers.tax_rate_to_proto(r) for r in page],
            next_page_token=mappers.tax_rates_token(page, size),
        )

    @override
    async def UpdateTaxRate(
        self, request: pricing_service_pb2.UpdateTaxRateRequest, context: Context
    ) -> pricing_pb2.TaxRate:
        """Set a country's tax rate."""
        command = mappers.set_tax_rate_command(request, current_caller())
        rate = await pricing.set_tax_rate(command, uow=self._uow, clock=self._clock)
        return mappers.tax_rate_to_proto(rate)

    @override
    async def DeleteTaxRate(
        self, request: pricing_service_pb2.DeleteTaxRateRequest, context: Context
    ) -> empty_pb2.Empty:
        """Delete a country's tax rate."""
        caller = current_caller()
        country = mappers.delete_tax_rate_country(request)
        await pricing.delete_tax_rate(caller, country, uow=self._uow)
        return empty_pb2.Empty()
