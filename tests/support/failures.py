"""The one way tests read a failed RPC: its status and AIP-193 details, via remote_error."""

from __future__ import annotations

from collections.abc import Awaitable

import grpc
import pytest

from services.common.rpc_status import RemoteError, remote_error


async def rpc_failure(call: Awaitable[object]) -> RemoteError:
    """Await a call that must fail and return what it answered."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return remote_error(error.value)


def violated_fields(failure: RemoteError) -> list[str]:
    """The fields a failure's BadRequest names, in order."""
    return [violation.field for violation in failure.violations]
