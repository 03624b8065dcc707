"""The one way tests read a failed RPC: its status and AIP-193 details, via remote_error."""

from __future__ import annotations

from collections.abc import Awaitable

import grpc
import pytest

from services.common.rpc_status import RemoteError, remote_error


def rpc_failure(
    excinfo: pytest.ExceptionInfo[grpc.aio.AioRpcError] | grpc.aio.AioRpcError,
) -> RemoteError:
    """The code, message, ErrorInfo, BadRequest and RetryInfo of a failed call."""
    error = excinfo.value if isinstance(excinfo, pytest.ExceptionInfo) else excinfo
    return remote_error(error)


async def failure_of(call: Awaitable[object]) -> RemoteError:
    """Await a call that must fail and return what it answered."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return rpc_failure(error)


def violated_fields(failure: RemoteError) -> list[str]:
    """The fields a failure's BadRequest names, in order."""
    return [violation.field for violation in failure.violations]


def violations_of(failure: RemoteError) -> dict[str, str]:
    """The BadRequest field violations of a failure, by field."""
    return {v.field: v.description for v in failure.violations}
