"""The offline kustomize renderer behind `nox -s lint`: what it does and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.devmesh.kustomize import KustomizeError, render

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "api", "labels": {"app": "api"}},
    "spec": {
        "selector": {"matchLabels": {"app": "api"}},
        "template": {
            "metadata": {"labels": {"app": "api"}},
            "spec": {
                "containers": [
                    {
                        "name": "api",
                        "image": "registry.local:5000/api",
                        "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                    },
                    {"name": "worker", "image": "worker"},
                ]
            },
        },
    },
}


def write(directory: Path, name: str, *documents: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(yaml.safe_dump_all(documents, sort_keys=False))


def test_an_overlay_patches_renames_images_and_namespaces(tmp_path: Path) -> None:
    write(tmp_path / "base", "api.yaml", DEPLOYMENT)
    write(tmp_path / "base", "kustomization.yaml", {"resources": ["api.yaml"]})
    patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api"},
        "spec": {
            "template": {
                "spec": {"containers": [{"name": "api", "env": [{"name": "B", "value": "3"}]}]}
            }
        },
    }
    write(tmp_path / "dev", "patch.yaml", patch)
    write(
        tmp_path / "dev",
        "kustomization.yaml",
        {
            "namespace": "shop",
            "resources": ["../base"],
            "labels": [{"pairs": {"team": "a"}, "includeTemplates": True}],
            "images": [
                {"name": "worker", "newTag": "1.2"},
                {
                    "name": "registry.local:5000/api",
                    "newName": "ghcr.io/x/api",
                    "digest": "sha256:abc",
                },
            ],
            "patches": [{"path": "patch.yaml"}],
        },
    )

    (deployment,) = render(tmp_path / "dev")

    assert deployment["metadata"]["namespace"] == "shop"
    assert deployment["metadata"]["labels"] == {"app": "api", "team": "a"}
    assert deployment["spec"]["template"]["metadata"]["labels"] == {"app": "api", "team": "a"}
    assert deployment["spec"]["selector"] == {"matchLabels": {"app": "api"}}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/x/api@sha256:abc"
    worker = deployment["spec"]["template"]["spec"]["containers"][1]
    assert worker["image"] == "worker:1.2"
    # Strategic merge by name: the patched entry first, as kustomize orders it.
    assert container["env"] == [{"name": "B", "value": "3"}, {"name": "A", "value": "1"}]


def test_fields_it_does_not_implement_are_refused(tmp_path: Path) -> None:
    write(tmp_path / "base", "api.yaml", DEPLOYMENT)
    write(tmp_path / "base", "kustomization.yaml", {"resources": ["api.yaml"], "namePrefix": "x-"})
    with pytest.raises(KustomizeError, match="namePrefix"):
        render(tmp_path / "base")


def test_generators_must_not_hash_names(tmp_path: Path) -> None:
    write(
        tmp_path / "base",
        "kustomization.yaml",
        {"configMapGenerator": [{"name": "settings", "literals": ["A=1"]}]},
    )
    with pytest.raises(KustomizeError, match="disableNameSuffixHash"):
        render(tmp_path / "base")


def test_a_patch_for_a_missing_object_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "base", "api.yaml", DEPLOYMENT)
    write(tmp_path / "base", "patch.yaml", {**DEPLOYMENT, "metadata": {"name": "other"}})
    write(
        tmp_path / "base",
        "kustomization.yaml",
        {"resources": ["api.yaml"], "patches": [{"path": "patch.yaml"}]},
    )
    with pytest.raises(KustomizeError, match="Deployment/other not found"):
        render(tmp_path / "base")
