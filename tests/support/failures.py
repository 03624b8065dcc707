"""One way for tests to read a failed RPC: the chassis's own parser of rich errors."""

from __future__ import annotations

import grpc
import pytest

from services.common.rpc_status import RemoteError, remote_error


def rpc_failure(
    excinfo: pytest.ExceptionInfo[grpc.aio.AioRpcError] | grpc.aio.AioRpcError,
) -> RemoteError:
    """The code, message, ErrorInfo, BadRequest and RetryInfo of a failed call."""
    error = excinfo.value if isinstance(excinfo, pytest.ExceptionInfo) else excinfo
    return remote_error(error)


def violations_of(failure: RemoteError) -> dict[str, str]:
    """The BadRequest field violations of a failure, by field."""
    return {v.field: v.description for v in failure.violations}
