"""Which driver errors the chassis treats as a store outage (UNAVAILABLE) and which not."""

from __future__ import annotations

from datetime import timedelta

import asyncpg
import pymongo.errors
import pytest
import redis.exceptions
from google.rpc import error_details_pb2

from services.common.dependencies import Dependency, unavailable_dependency
from services.common.errors import dependency_unavailable
from services.common.rpc_status import error_status


@pytest.mark.parametrize(
    ("error", "dependency"),
    [
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), Dependency.POSTGRESQL),
        (
            asyncpg.CannotConnectNowError("the database system is starting up"),
            Dependency.POSTGRESQL,
        ),
        (asyncpg.AdminShutdownError("terminating connection"), Dependency.POSTGRESQL),
        (asyncpg.TooManyConnectionsError("too many clients"), Dependency.POSTGRESQL),
        (asyncpg.InterfaceError("pool is closed"), Dependency.POSTGRESQL),
        (pymongo.errors.ServerSelectionTimeoutError("no servers"), Dependency.MONGODB),
        (pymongo.errors.AutoReconnect("connection reset"), Dependency.MONGODB),
        (pymongo.errors.NetworkTimeout("timed out"), Dependency.MONGODB),
        (redis.exceptions.ConnectionError("refused"), Dependency.REDIS),
        (redis.exceptions.TimeoutError("timed out"), Dependency.REDIS),
        (redis.exceptions.BusyLoadingError("loading"), Dependency.REDIS),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_connection_errors_of_each_driver_are_outages(
    error: Exception, dependency: Dependency
) -> None:
    assert unavailable_dependency(error) is dependency


@pytest.mark.parametrize(
    "error",
    [
        ValueError("a bug"),
        TimeoutError("raised by the service's own code, not by a driver"),
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.InterfaceError("cannot call Connection.fetch(): connection has been released"),
        pymongo.errors.DuplicateKeyError("E11000"),
        redis.exceptions.ResponseError("WRONGTYPE"),
    ],
    ids=lambda value: f"{type(value).__name__}:{value}"[:40],
)
def test_bugs_and_answers_of_a_healthy_store_are_not_outages(error: Exception) -> None:
    assert unavailable_dependency(error) is None


def test_an_outage_is_found_behind_a_later_error_and_inside_a_group() -> None:
    try:
        try:
            raise asyncpg.ConnectionDoesNotExistError("connection was closed")
        except asyncpg.PostgresError:
            raise RuntimeError("rollback failed too") from None
    except RuntimeError as error:
        chained = error
    assert unavailable_dependency(chained) is Dependency.POSTGRESQL
    group = ExceptionGroup("checkout", [ValueError("x"), pymongo.errors.AutoReconnect("reset")])
    assert unavailable_dependency(group) is Dependency.MONGODB


def test_the_status_names_the_kind_and_advises_a_retry() -> None:
    error = dependency_unavailable("mongodb", retry_after=timedelta(seconds=2))
    status = error_status(error, domain="product.marketplace.example.com")
    info, retry = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(info) and status.details[1].Unpack(retry)
    assert (status.code, info.reason, info.domain, dict(info.metadata)) == (
        14,
        "DEPENDENCY_UNAVAILABLE",
        "product.marketplace.example.com",
        {"dependency": "mongodb"},
    )
    assert retry.retry_delay.seconds == 2
