"""Recognises failures to reach PostgreSQL, MongoDB or Redis, for every service in one place."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from enum import StrEnum
from types import TracebackType


class Dependency(StrEnum):
    """The kinds of backing store a service may lose; named in errors, never their address."""

    POSTGRESQL = "postgresql"
    MONGODB = "mongodb"
    REDIS = "redis"


# The driver exceptions that mean "the store cannot be reached or cannot serve now", as
# (module, class) pairs. They are looked up in sys.modules rather than imported: a driver a
# service never imported cannot have raised, and the chassis stays free of driver imports.
_CONNECTION_ERRORS: tuple[tuple[Dependency, str, str], ...] = (
    # SQLSTATE class 08 (connection exceptions), including a connection that went away.
    (Dependency.POSTGRESQL, "asyncpg.exceptions", "PostgresConnectionError"),
    (Dependency.POSTGRESQL, "asyncpg.exceptions", "CannotConnectNowError"),  # starting up
    (Dependency.POSTGRESQL, "asyncpg.exceptions", "AdminShutdownError"),  # shutting down
    (Dependency.POSTGRESQL, "asyncpg.exceptions", "CrashShutdownError"),
    (Dependency.POSTGRESQL, "asyncpg.exceptions", "TooManyConnectionsError"),
    # ServerSelectionTimeoutError, AutoReconnect, NetworkTimeout, NotPrimaryError and
    # WaitQueueTimeoutError all derive from it.
    (Dependency.MONGODB, "pymongo.errors", "ConnectionFailure"),
    # ConnectionError covers BusyLoadingError (a restarted server still loading its data).
    (Dependency.REDIS, "redis.exceptions", "ConnectionError"),
    (Dependency.REDIS, "redis.exceptions", "TimeoutError"),
    (Dependency.REDIS, "redis.exceptions", "ReadOnlyError"),  # a replica during failover
)

# Where each driver's code lives, to attribute plain OSError and TimeoutError (a refused
# connect, a query or an acquire past its timeout) to the driver they passed through.
_DRIVER_PACKAGES: tuple[tuple[Dependency, str], ...] = (
    (Dependency.POSTGRESQL, "asyncpg"),
    (Dependency.MONGODB, "pymongo"),
    (Dependency.REDIS, "redis"),
)


def unavailable_dependency(error: BaseException) -> Dependency | None:
    """The store whose outage caused `error`, or None when `error` is something else.

    Looks through exception groups and the chain of causes, since a rollback that fails on
    the dead connection, or a task group, may wrap the original failure.
    """
    for candidate in _chain(error):
        found = _classify(candidate)
        if found is not None:
            return found
    return None


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)


def _classify(error: BaseException) -> Dependency | None:
    for dependency, module_name, class_name in _CONNECTION_ERRORS:
        cls = _class(module_name, class_name)
        if cls is not None and isinstance(error, cls):
            return dependency
    interface_error = _class("asyncpg.exceptions", "InterfaceError")
    if interface_error is not None and isinstance(error, interface_error):
        # Only a closed pool or connection is an outage; other interface errors are misuse.
        text = str(error)
        return Dependency.POSTGRESQL if "closed" in text or "closing" in text else None
    if isinstance(error, OSError):  # TimeoutError and ConnectionRefusedError are OSErrors
        return _driver_in(error.__traceback__)
    return None


def _class(module_name: str, class_name: str) -> type | None:
    module = sys.modules.get(module_name)
    cls = getattr(module, class_name, None) if module is not None else None
    return cls if isinstance(cls, type) else None


def _driver_in(traceback: TracebackType | None) -> Dependency | None:
    """The driver of the innermost driver frame the error was raised through, if any."""
    found: Dependency | None = None
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        for dependency, package in _DRIVER_PACKAGES:
            if module == package or module.startswith(package + "."):
                found = dependency
        traceback = traceback.tb_next
    return found
