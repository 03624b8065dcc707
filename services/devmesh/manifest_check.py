"""Render every overlay under k8s/overlays and check what kubernetes-validate cannot.

`python -m services.devmesh.manifest_check OUT` writes `OUT/<overlay>.yaml` (every object,
for checkov) and `OUT/builtin/<overlay>.yaml` (built-in kinds only, for
`kubernetes-validate --strict`), validates the custom resources against the strict schemas
in k8s/schemas, refuses custom kinds without a schema, and, where `kubectl` is on the PATH,
requires `kubectl kustomize` to render the same objects.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from services.devmesh.kustomize import Object, differences_from_kubectl, render

REPO_ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = REPO_ROOT / "k8s" / "overlays"
SCHEMAS = REPO_ROOT / "k8s" / "schemas"
# API groups whose kinds ship with Kubernetes (kubernetes-validate has their schemas).
BUILTIN_GROUPS = {
    "v1",
    "apps/v1",
    "batch/v1",
    "autoscaling/v2",
    "policy/v1",
    "networking.k8s.io/v1",
    "rbac.authorization.k8s.io/v1",
}


def _schema_errors(obj: Object) -> list[str]:
    """Errors of a custom resource against its schema in k8s/schemas."""
    name = f"{obj['apiVersion'].replace('/', '_')}_{obj['kind']}.json"
    path = SCHEMAS / name
    where = f"{obj['kind']}/{obj['metadata']['name']}"
    if not path.exists():
        return [f"{where}: no schema k8s/schemas/{name} for this custom resource"]
    validator = Draft202012Validator(json.loads(path.read_text()))
    return [
        f"{where}: {'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
        for error in validator.iter_errors(obj)
    ]


def check(out: Path) -> list[str]:
    """Render and check every overlay into `out`; the problems found (empty when none)."""
    problems: list[str] = []
    (out / "builtin").mkdir(parents=True, exist_ok=True)
    kubectl = shutil.which("kubectl")
    overlays = sorted(p for p in OVERLAYS.iterdir() if (p / "kustomization.yaml").exists())
    if not overlays:
        return ["no overlays under k8s/overlays"]
    for overlay in overlays:
        objects = render(overlay)
        builtin = [o for o in objects if o["apiVersion"] in BUILTIN_GROUPS]
        for obj in objects:
            if obj["apiVersion"] not in BUILTIN_GROUPS:
                problems += [f"{overlay.name}: {e}" for e in _schema_errors(obj)]
        (out / f"{overlay.name}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        (out / "builtin" / f"{overlay.name}.yaml").write_text(
            yaml.safe_dump_all(builtin, sort_keys=False)
        )
        compared = ", kubectl absent: not compared with kubectl kustomize"
        if kubectl:
            differences = differences_from_kubectl(overlay, kubectl)
            problems += [f"{overlay.name}: {d}" for d in differences]
            compared = ", differs from kubectl kustomize" if differences else ", as kubectl"
        custom = len(objects) - len(builtin)
        print(f"{overlay.name}: {len(objects)} objects ({custom} custom resources){compared}")
    return problems


def main() -> int:
    """Check the overlays into the directory given as the only argument."""
    problems = check(Path(sys.argv[1]))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
