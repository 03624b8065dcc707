"""The Kubernetes manifests give each service every setting production requires.

Each service refuses to start in production without its secrets; this runs the services'
own settings classes on the environment the manifests declare, so a manifest that misses a
required variable fails here rather than in a crash-looping pod.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.config import ServiceSettings
from services.order.config import Settings as OrderSettings
from services.product.config import Settings as ProductSettings
from services.user.adapters.signing import SigningKey
from services.user.config import Settings as UserSettings

K8S = Path(__file__).resolve().parents[2] / "k8s"

# Stand-ins for what the marketplace-secrets Secret holds in a real cluster.
SECRET_VALUES = {
    "internal-secret": "a-real-secret-from-the-vault",
    "users-database-url": "postgresql://users@db:5432/marketplace_users",
    "orders-database-url": "postgresql://orders@db:5432/marketplace_orders",
    "jwt-signing-key": SigningKey.generate().to_pem(),
    "mongo-url": "mongodb://mongo:27017",
    "redis-url": "redis://redis:6379/0",
    "smtp-host": "smtp.example.com",
    "smtp-username": "mailer",
    "smtp-password": "mailer-password",
    "payment-gateway-url": "https://gateway.example.com",
    "payment-gateway-api-key": "sk_live_from_the_vault",
}


def container_env(service: str) -> dict[str, str]:
    documents = list(yaml.safe_load_all((K8S / f"{service}.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        else:
            env[entry["name"]] = SECRET_VALUES[entry["valueFrom"]["secretKeyRef"]["key"]]
    return env


@pytest.mark.parametrize(
    ("service", "settings_class"),
    [("user", UserSettings), ("product", ProductSettings), ("order", OrderSettings)],
)
def test_manifest_environment_satisfies_production_settings(
    service: str, settings_class: type[ServiceSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(service)
    assert env[f"{service.upper()}_ENVIRONMENT"] == "prod"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = settings_class()
    assert settings.dev_mode is False
    assert settings.grpc_port == 50051


def test_a_manifest_without_a_required_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    env = container_env("user")
    env.pop("USER_SMTP_HOST")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("USER_SMTP_HOST", raising=False)
    with pytest.raises(ValueError, match="SMTP_HOST"):
        UserSettings()
