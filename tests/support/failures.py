"""The one helper that reads a failed RPC: its code and AIP-193 details."""

from __future__ import annotations

import grpc
import pytest

from services.common.rpc_status import RemoteError, remote_error


def rpc_failure(excinfo: pytest.ExceptionInfo[grpc.aio.AioRpcError]) -> RemoteError:
    """The code, message, reason, metadata and field violations of the failure caught."""
    return remote_error(excinfo.value)
