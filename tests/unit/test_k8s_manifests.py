"""The rendered Kubernetes overlays give each service every setting production requires.

Each service refuses to start in production without its secrets; this renders every overlay
(k8s/overlays/*, with the same renderer `nox -s lint` uses) and runs the services' own
settings classes on the environment the Deployments declare, so an overlay that misses a
required variable fails here rather than in a crash-looping pod.
"""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Any

import pytest

from services.common.config import ServiceSettings
from services.devmesh.kustomize import render
from services.order.config import Settings as OrderSettings
from services.product.config import Settings as ProductSettings
from services.user.adapters.signing import SigningKey
from services.user.config import Settings as UserSettings

OVERLAYS = Path(__file__).resolve().parents[2] / "k8s" / "overlays"
OVERLAY_NAMES = ["dev", "staging", "production"]

# Stand-ins for what the secret manager holds for staging and production (External Secrets).
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
    "users-data-kek": "2026-11:" + base64.b64encode(bytes(range(32))).decode(),
    "orders-data-kek": "2026-11:" + base64.b64encode(bytes(range(32, 64))).decode(),
}


def rendered(overlay: str) -> list[dict[str, Any]]:
    return render(OVERLAYS / overlay)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def secret_value(objects: list[dict[str, Any]], name: str, key: str) -> str:
    """The overlay's own Secret value (dev's generator) or the vault stand-in."""
    generated = [o for o in objects if o["kind"] == "Secret" and o["metadata"]["name"] == name]
    if generated:
        return base64.b64decode(generated[0]["data"][key]).decode()
    external = find(objects, "ExternalSecret", name)
    assert key in {entry["secretKey"] for entry in external["spec"]["data"]}, (name, key)
    return SECRET_VALUES[key]


def container_env(overlay: str, service: str) -> dict[str, str]:
    objects = rendered(overlay)
    deployment = find(objects, "Deployment", service)
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for entry in container["env"]:
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[entry["name"]] = secret_value(objects, ref["name"], ref["key"])
    return env


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
@pytest.mark.parametrize(
    ("service", "settings_class"),
    [("user", UserSettings), ("product", ProductSettings), ("order", OrderSettings)],
)
def test_manifest_environment_satisfies_production_settings(
    overlay: str,
    service: str,
    settings_class: type[ServiceSettings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = container_env(overlay, service)
    assert env[f"{service.upper()}_ENVIRONMENT"] == "prod"
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = settings_class()
    assert settings.dev_mode is False
    assert settings.grpc_port == 50051


def test_a_manifest_without_a_required_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    env = container_env("production", "user")
    env.pop("USER_SMTP_HOST")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("USER_SMTP_HOST", raising=False)
    with pytest.raises(ValueError, match="SMTP_HOST"):
        UserSettings()


@pytest.mark.parametrize("service", ["user", "product", "order", "edge"])
def test_the_production_canary_runs_the_stable_pod_template(service: str) -> None:
    objects = rendered("production")
    stable = copy.deepcopy(find(objects, "Deployment", service)["spec"]["template"])
    canary = copy.deepcopy(find(objects, "Deployment", f"{service}-canary")["spec"]["template"])
    assert stable["metadata"]["labels"].pop("track") == "stable"
    assert canary["metadata"]["labels"].pop("track") == "canary"
    assert canary == stable
    assert find(objects, "Deployment", f"{service}-canary")["spec"]["replicas"] == 0


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_services_wait_for_the_schema_their_migration_job_applies(overlay: str) -> None:
    objects = rendered(overlay)
    for service in ("user", "order"):
        job = find(objects, "Job", f"{service}-migrate")
        job_args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        directory = job_args[job_args.index("--migrations-dir") + 1]
        pod = find(objects, "Deployment", service)["spec"]["template"]["spec"]
        (wait,) = pod["initContainers"]
        assert f"--migrations-dir {directory} status" in wait["args"][0]
        assert wait["image"] == job["spec"]["template"]["spec"]["containers"][0]["image"]
        database_secret = [e for e in wait["env"] if e["name"] == "DATABASE_URL"]
        job_secret = job["spec"]["template"]["spec"]["containers"][0]["env"]
        assert database_secret == job_secret


@pytest.mark.parametrize("overlay", OVERLAY_NAMES)
def test_every_service_is_headless_balanced_per_call_and_scaled_with_a_budget(
    overlay: str,
) -> None:
    objects = rendered(overlay)
    namespace = "marketplace"
    for service in ("user", "product", "order"):
        # Headless: the cluster DNS names every ready pod, the registry of Kubernetes.
        assert find(objects, "Service", service)["spec"].get("clusterIP") == "None"
        # The dev overlay runs one pod of each on a laptop cluster.
        least = 1 if overlay == "dev" else 2
        assert find(objects, "HorizontalPodAutoscaler", service)["spec"]["minReplicas"] >= least
        assert find(objects, "PodDisruptionBudget", service)["spec"]["maxUnavailable"] == 1
    peers = {
        ("user", "USER_PRODUCT_TARGET"): "product",
        ("order", "ORDER_PRODUCT_TARGET"): "product",
        ("order", "ORDER_USER_TARGET"): "user",
    }
    for (caller, variable), peer in peers.items():
        target = container_env(overlay, caller)[variable]
        # dns:/// resolves every pod; the channel's round_robin spreads calls over them.
        assert target == f"dns:///{peer}.{namespace}.svc.cluster.local:50051"
