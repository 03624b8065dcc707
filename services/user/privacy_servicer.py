"""The privacy RPCs of UserService (data export, account deletion), mixed into its servicer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import empty_pb2
from marketplace.user.v1 import user_service_pb2

from services.common.identity import current_caller
from services.user import mappers
from services.user.domain import commands
from services.user.service_layer import deletion

if TYPE_CHECKING:
    from services.user.servicer import Dependencies

type Context = grpc.aio.ServicerContext[Any, Any]


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
