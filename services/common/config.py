"""Typed settings read from the environment, shared by every service."""

from __future__ import annotations

from enum import StrEnum
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.registry import RegistryKind

# Only these well-known placeholders may appear outside production; a service started
# in production with one of them refuses to run.
DEV_INTERNAL_SECRET = "dev-internal-secret-not-for-production"


class Environment(StrEnum):
    """Where a service runs; dev and test allow demo data and placeholder secrets."""

    DEV = "dev"
    TEST = "test"
    PROD = "prod"


class ServiceSettings(BaseSettings):
    """Settings every service has; each service subclasses it with its own env prefix."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    environment: Environment = Environment.PROD
    grpc_host: str = "0.0.0.0"  # containers listen on every interface
    grpc_port: int = 50051
    ops_port: int = 9464
    log_level: str = "INFO"
    # On shutdown, health reports NOT_SERVING this long before the server stops taking
    # calls, so load balancers and Envoy's health checks move traffic away first.
    shutdown_notice_seconds: float = 2.0
    shutdown_grace_seconds: float = 10.0
    # ErrorInfo.domain of every error this service answers with (AIP-193: the service's name).
    error_domain: str = "marketplace.example.com"
    jwt_issuer: str = "marketplace"
    jwt_audience: str = "marketplace"
    # Where the user service publishes its signing keys; every service verifies tokens itself.
    jwks_url: str = "http://user:9464/.well-known/jwks.json"
    # Shared by the services of the mesh to call each other's internal RPCs.
    internal_secret: SecretStr = SecretStr(DEV_INTERNAL_SECRET)
    # Successful calls are logged for one request in this many (failed and slow calls
    # always are); 1 logs every call. The metrics count every call either way.
    access_log_sample_every: int = Field(default=100, ge=1)
    # The deadline of calls to other services, in seconds.
    rpc_timeout_seconds: float = 5.0
    # Outside Kubernetes, instances register in a registry (REGISTRY_KIND etcd or consul,
    # REGISTRY_URL e.g. "http://127.0.0.1:2379"), and callers find their peers there; unset
    # means no registry (on Kubernetes, headless Services and the cluster DNS do that job).
    registry_kind: RegistryKind | None = None
    registry_url: str | None = None
    # The registration's lease: kept alive every third of it, gone this long after a crash.
    registry_ttl_seconds: int = 10
    # The address other hosts reach this instance at, as registered.
    advertise_address: str = "127.0.0.1"
    # Which replica of the service this instance is (listed in the registry and mesh.json).
    replica: int = 0

    @property
    def dev_mode(self) -> bool:
        """Whether demo data and placeholder secrets are allowed."""
        return self.environment in (Environment.DEV, Environment.TEST)

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Self:
        if not self.dev_mode and self.internal_secret.get_secret_value() == DEV_INTERNAL_SECRET:
            raise ValueError("internal_secret must be set outside dev mode")
        return self
