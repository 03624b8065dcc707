"""Who may call each RPC, read from the contract's `marketplace.options.v1.access` option."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2, descriptor_pool
from google.protobuf.descriptor import ServiceDescriptor
from marketplace.options.v1 import access_pb2

# The googleapis stubs type google.api.http as a plain FieldDescriptor, not an extension.
_HTTP: Any = annotations_pb2.http
# Always reachable: load balancers and operators use them without credentials.
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class Access(StrEnum):
    """The values of the contract's Access enum, without the ACCESS_ prefix."""

    PUBLIC = "PUBLIC"
    AUTHENTICATED = "AUTHENTICATED"
    INTERNAL = "INTERNAL"


def _access(value: access_pb2.Access.ValueType, method: str) -> Access:
    if value == access_pb2.ACCESS_UNSPECIFIED:
        raise ValueError(f"{method} does not set (marketplace.options.v1.access)")
    return Access(access_pb2.Access.Name(value).removeprefix("ACCESS_"))


def method_access(service: ServiceDescriptor) -> dict[str, Access]:
    """Each RPC of `service` by its full path (`/pkg.Service/Method`), with its access.

    Raises:
        ValueError: an RPC of the contract does not declare its access.
    """
    methods: dict[str, Access] = {}
    for method in service.methods:
        value = method.GetOptions().Extensions[access_pb2.access]
        methods[f"/{service.full_name}/{method.name}"] = _access(value, method.full_name)
    return methods


def method_callers(service: ServiceDescriptor) -> dict[str, frozenset[str]]:
    """The mesh identities each internal RPC of `service` admits, by full path.

    Raises:
        ValueError: an internal RPC names no caller, or another RPC names some.
    """
    found: dict[str, frozenset[str]] = {}
    for method in service.methods:
        options = method.GetOptions()
        callers = frozenset(options.Extensions[access_pb2.callers])
        internal = options.Extensions[access_pb2.access] == access_pb2.ACCESS_INTERNAL
        if internal and not callers:
            raise ValueError(f"{method.full_name} is internal but names no (callers)")
        if callers and not internal:
            raise ValueError(f"{method.full_name} names (callers) but is not internal")
        if internal:
            found[f"/{service.full_name}/{method.name}"] = callers
    return found


def contract_access(service_names: Iterable[str]) -> dict[str, Access]:
    """The access of every RPC of the named services, from their generated descriptors.

    The services' `_pb2` modules must be imported first; every app imports them to serve.
    """
    pool = descriptor_pool.Default()
    methods: dict[str, Access] = {}
    for name in service_names:
        methods.update(method_access(pool.FindServiceByName(name)))
    return methods


def contract_callers(service_names: Iterable[str]) -> dict[str, frozenset[str]]:
    """The admitted callers of every internal RPC of the named services."""
    pool = descriptor_pool.Default()
    callers: dict[str, frozenset[str]] = {}
    for name in service_names:
        callers.update(method_callers(pool.FindServiceByName(name)))
    return callers


@dataclass(frozen=True)
class ContractRpc:
    """One RPC of the contract as the edge and the API documents see it."""

    path: str
    access: Access
    # (HTTP method, path template) of its google.api.http rule and additional bindings.
    http: tuple[tuple[str, str], ...]
    # Whether a repeat is safe (idempotency_level NO_SIDE_EFFECTS or IDEMPOTENT): the edge
    # and the mesh's channels retry only these.
    idempotent: bool = False
    # Whether it only reads (idempotency_level NO_SIDE_EFFECTS).
    read_only: bool = False


def _bindings(rule: http_pb2.HttpRule) -> list[tuple[str, str]]:
    kind = rule.WhichOneof("pattern")
    found: list[tuple[str, str]] = []
    if kind == "custom":
        found.append((rule.custom.kind.upper(), rule.custom.path))
    elif kind is not None:
        found.append((kind.upper(), getattr(rule, kind)))
    for extra in rule.additional_bindings:
        found += _bindings(extra)
    return found


def contract_rpcs(files: descriptor_pb2.FileDescriptorSet) -> list[ContractRpc]:
    """Every RPC of the marketplace's contracts in a descriptor set, in declaration order.

    Raises:
        ValueError: an RPC of the contract does not declare its access.
    """
    rpcs: list[ContractRpc] = []
    for file in files.file:
        if not file.package.startswith("marketplace."):
            continue
        for service in file.service:
            for method in service.method:
                path = f"/{file.package}.{service.name}/{method.name}"
                options = method.options
                http = _bindings(options.Extensions[_HTTP]) if options.HasExtension(_HTTP) else []
                access = _access(options.Extensions[access_pb2.access], path)
                level = options.idempotency_level
                read_only = level == descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
                idempotent = read_only or level == descriptor_pb2.MethodOptions.IDEMPOTENT
                rpcs.append(ContractRpc(path, access, tuple(http), idempotent, read_only))
    return rpcs


@dataclass(frozen=True)
class AccessPolicy:
    """Which methods are public, and which only named services of the mesh may call.

    A method the policy does not list needs a token, so forgetting one fails closed; an
    internal method admits only the callers listed for it, so forgetting them does too.
    """

    methods: Mapping[str, Access] = field(default_factory=dict)
    # Internal methods by full path: the service names whose certificates may call them.
    callers: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def from_contract(cls, *service_names: str) -> AccessPolicy:
        """The policy the contract declares for the named services."""
        return cls(contract_access(service_names), contract_callers(service_names))

    def allowed_callers(self, method: str) -> frozenset[str]:
        """The services that may call the internal `method` (none for any other)."""
        return self.callers.get(method, frozenset())

    def is_public(self, method: str) -> bool:
        """Whether `method` may be called without a token."""
        return self.methods.get(method) is Access.PUBLIC or method.startswith(OPEN_PREFIXES)

    def is_internal(self, method: str) -> bool:
        """Whether only the mesh's own services may call `method`."""
        return self.methods.get(method) is Access.INTERNAL
