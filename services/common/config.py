"""Typed settings read from the environment, shared by every service."""

from __future__ import annotations

import socket
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.envelope import Keyring, configured_keyring
from services.common.registry import RegistryKind

if TYPE_CHECKING:  # an annotation only: the settings need no Redis client to load
    from services.common.streams import ConsumerTuning

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
    # A plaintext port serving grpc.health.v1 only (no API, no reflection), for probes that
    # cannot present a certificate (the kubelet's grpc probes); None: no such port.
    health_port: int | None = None
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
    # Signs page tokens, so that any replica accepts another's; the same in every instance
    # of a service. (Internal RPCs are authorised by the caller's mesh certificate.)
    internal_secret: SecretStr = SecretStr(DEV_INTERNAL_SECRET)
    # Successful calls are logged for one request in this many (failed and slow calls
    # always are); 1 logs every call. The metrics count every call either way.
    access_log_sample_every: int = Field(default=100, ge=1)
    # mTLS: this instance's certificate and key (served, and presented to the services it
    # calls) and the mesh CA that signs every peer's. Required unless `plaintext`.
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    tls_ca_file: Path | None = None
    # The SPIFFE trust domain of the mesh identities (spiffe://<domain>/service/<name>).
    mesh_trust_domain: str = "marketplace.local"
    # Plaintext gRPC, served and dialled: for dev tests that ask for it; refused outside
    # dev mode, like the placeholder secret.
    plaintext: bool = False
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

    @model_validator(mode="after")
    def _mtls_unless_plaintext_in_dev(self) -> Self:
        if self.plaintext:
            if not self.dev_mode:
                raise ValueError("plaintext gRPC is refused outside dev mode: set the TLS files")
            return self
        missing = [
            name
            for name in ("tls_cert_file", "tls_key_file", "tls_ca_file")
            if getattr(self, name) is None
        ]
        if missing:
            raise ValueError(f"mTLS needs {', '.join(missing)} (or plaintext=true, dev mode only)")
        return self


class SealedDataSettings(ServiceSettings):
    """The settings of a service that seals personal data at rest (envelope.py)."""

    # The key-encryption keys, as `id:base64key[,id:base64key...]` (32-byte keys, newest
    # first: the first wraps, the others still unwrap during a rotation; see the README).
    # Required outside dev mode; dev mode without one uses a fixed dev key.
    data_kek: SecretStr | None = None

    @model_validator(mode="after")
    def _data_kek_outside_dev_mode(self) -> Self:
        self.data_keyring()  # a missing or malformed keyring refuses to start, named
        return self

    def data_keyring(self) -> Keyring:
        """The KEKs that wrap the database's data keys (the dev keyring in dev mode)."""
        value = None if self.data_kek is None else self.data_kek.get_secret_value()
        variable = f"{self.model_config.get('env_prefix', '')}DATA_KEK"
        return configured_keyring(value, dev_mode=self.dev_mode, variable=variable)


class EventStreamSettings(ServiceSettings):
    """The settings of a service on the event streams in Redis (streams.py, user_stream.py).

    The env variables keep the service's prefix: ORDER_EVENT_BLOCK_MS, PRODUCT_EVENT_BLOCK_MS...
    Which streams a service consumes (`consume_user_events`, `consume_order_events`) stays
    in its own settings: not every service reads every stream.
    """

    # The stream the user service's outbox relay publishes its events to (user.deleted),
    # which the product and order services read.
    user_events_stream: str = "marketplace.user.events.v1"
    # This instance's name in the consumer groups; unique per replica.
    event_consumer_name: str = Field(default_factory=socket.gethostname)
    # How long one read of an event stream blocks waiting for new events.
    event_block_ms: int = Field(default=2000, ge=1)
    # Entries another consumer left unacknowledged this long are taken over.
    event_claim_idle_ms: int = Field(default=60_000, ge=1)

    def consumer_tuning(self) -> ConsumerTuning:
        """The pace of this instance's stream consumers."""
        return {"block_ms": self.event_block_ms, "claim_idle_ms": self.event_claim_idle_ms}
