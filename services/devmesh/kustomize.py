"""Render the kustomize overlays under k8s/ offline, for `nox -s lint` and the manifest tests.

No kustomize binary installs from the registries these machines reach (PyPI's `kustomize` is
an unrelated library, `pykustomize` needs Python 3.14), so this renders the subset of the
kustomization format the repository uses and refuses every other field, so a kustomization
can never silently mean more than what was rendered here. Where `kubectl` is on the PATH,
`nox -s lint` also renders each overlay with `kubectl kustomize` and requires the same objects.

Supported: `resources` (files and directories), `components`, `namespace`, `labels`
(`pairs`, `includeTemplates`), `images`, `replicas`, `configMapGenerator` and
`secretGenerator` (`files`, `literals`), `generatorOptions.disableNameSuffixHash` (required:
hash suffixes would need every reference rewritten), and strategic-merge `patches` (by
`path` or inline `patch`, optionally with a `target` kind/name).
"""

from __future__ import annotations

import base64
import copy
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

type Object = dict[str, Any]

KUSTOMIZATION_KEYS = {
    "apiVersion",
    "kind",
    "resources",
    "components",
    "namespace",
    "labels",
    "images",
    "replicas",
    "configMapGenerator",
    "secretGenerator",
    "generatorOptions",
    "patches",
}
CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "ClusterIssuer",
    "ClusterSecretStore",
    "CustomResourceDefinition",
    "PersistentVolume",
    "PriorityClass",
    "StorageClass",
}
WORKLOADS_WITH_TEMPLATE = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}
# Strategic-merge keys of the lists the repository's patches touch.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "name",
}


class KustomizeError(ValueError):
    """A kustomization uses something this renderer does not implement, or is inconsistent."""


def _load_yaml_documents(path: Path) -> list[Object]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _kustomization(directory: Path) -> Object:
    path = directory / "kustomization.yaml"
    if not path.exists():
        raise KustomizeError(f"{directory} has no kustomization.yaml")
    data: Object = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - KUSTOMIZATION_KEYS
    if unknown:
        raise KustomizeError(f"{path}: unsupported fields {sorted(unknown)}")
    return data


def _inside(root: Path, relative: str) -> Path:
    """Resolve a path of a kustomization; like kustomize, never outside its own tree."""
    path = (root / relative).resolve()
    return path


def render(directory: Path) -> list[Object]:
    """Build the kustomization in `directory` into a list of Kubernetes objects."""
    return _build(directory.resolve(), is_component=False)


def _build(
    directory: Path, *, is_component: bool, inherited: list[Object] | None = None
) -> list[Object]:
    data = _kustomization(directory)
    kind = data.get("kind", "Kustomization")
    if (kind == "Component") != is_component:
        raise KustomizeError(
            f"{directory}: a {kind} used as {'component' if is_component else 'resource'}"
        )
    objects: list[Object] = list(inherited or [])
    for entry in data.get("resources", []):
        path = _inside(directory, entry)
        if path.is_dir():
            objects.extend(_build(path, is_component=False))
        else:
            objects.extend(_load_yaml_documents(path))
    hash_disabled = bool(data.get("generatorOptions", {}).get("disableNameSuffixHash"))
    for generator in data.get("configMapGenerator", []):
        objects.append(_generate(directory, generator, "ConfigMap", hash_disabled))
    for generator in data.get("secretGenerator", []):
        objects.append(_generate(directory, generator, "Secret", hash_disabled))
    for entry in data.get("components", []):
        objects = _build(_inside(directory, entry), is_component=True, inherited=objects)
    for patch in data.get("patches", []):
        _apply_patch(directory, objects, patch)
    if "namespace" in data:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = data["namespace"]
            # A binding's service accounts live in the namespace they were rendered into.
            for subject in obj.get("subjects", []) if obj["kind"].endswith("RoleBinding") else []:
                if subject.get("kind") == "ServiceAccount":
                    subject["namespace"] = data["namespace"]
    for label in data.get("labels", []):
        _apply_labels(objects, label)
    for image in data.get("images", []):
        _apply_image(objects, image)
    for replica in data.get("replicas", []):
        _apply_replicas(objects, replica)
    _check_unique(objects, directory)
    return objects


def _generate(directory: Path, generator: Object, kind: str, hash_disabled: bool) -> Object:
    unknown = set(generator) - {"name", "files", "literals", "options"}
    if unknown:
        raise KustomizeError(f"{directory}: generator fields {sorted(unknown)} are not supported")
    options = generator.get("options", {})
    if not (hash_disabled or options.get("disableNameSuffixHash")):
        raise KustomizeError(f"{directory}: set generatorOptions.disableNameSuffixHash: true")
    data: dict[str, str] = {}
    for entry in generator.get("files", []):
        key, _, source = entry.partition("=") if "=" in entry else ("", "", entry)
        path = _inside(directory, source)
        data[key or path.name] = path.read_text()
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        data[key] = value
    metadata: Object = {"name": generator["name"]}
    if options.get("labels"):
        metadata["labels"] = dict(options["labels"])
    if options.get("annotations"):
        metadata["annotations"] = dict(options["annotations"])
    if kind == "ConfigMap":
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
        "type": "Opaque",
        "data": encoded,
    }


def _apply_patch(directory: Path, objects: list[Object], patch: Object) -> None:
    if "path" in patch:
        documents = _load_yaml_documents(_inside(directory, patch["path"]))
    elif "patch" in patch:
        documents = [doc for doc in yaml.safe_load_all(patch["patch"]) if doc]
    else:
        raise KustomizeError(f"{directory}: a patch needs `path` or `patch`")
    target = patch.get("target", {})
    unknown = set(target) - {"kind", "name"}
    if unknown:
        raise KustomizeError(f"{directory}: patch target fields {sorted(unknown)} unsupported")
    for document in documents:
        if isinstance(document, list):
            raise KustomizeError(f"{directory}: JSON6902 patches are not supported")
        kind = target.get("kind", document.get("kind"))
        name = target.get("name", document.get("metadata", {}).get("name"))
        matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
        if not matches:
            raise KustomizeError(f"{directory}: patch target {kind}/{name} not found")
        for obj in matches:
            body = {k: v for k, v in document.items() if k not in ("apiVersion", "kind")}
            if target:
                body.pop("metadata", None)
            else:
                body["metadata"] = {
                    k: v for k, v in body.get("metadata", {}).items() if k != "name"
                }
            merged = _merge(obj, body)
            obj.clear()
            obj.update(merged)


def _merge(base: Any, patch: Any, key: str = "") -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        result = dict(base)
        for name, value in patch.items():
            if value is None:
                result.pop(name, None)
            elif name in result:
                result[name] = _merge(result[name], value, name)
            else:
                result[name] = _strip_directives(copy.deepcopy(value))
        return result
    if isinstance(base, list) and isinstance(patch, list) and key in MERGE_KEYS:
        # Like kustomize's strategic merge: the patch's items first, in the patch's order
        # (merged into their base item when one has the same key), then the untouched rest.
        merge_key = MERGE_KEYS[key]
        by_key = {item.get(merge_key): item for item in base}
        patched = {item.get(merge_key) for item in patch}
        result_list = [
            _merge(by_key[item.get(merge_key)], item)
            if item.get(merge_key) in by_key
            else _strip_directives(copy.deepcopy(item))
            for item in patch
            if item.get("$patch") != "delete"
        ]
        result_list += [copy.deepcopy(item) for item in base if item.get(merge_key) not in patched]
        return result_list
    return _strip_directives(copy.deepcopy(patch))


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _apply_labels(objects: Iterable[Object], label: Object) -> None:
    unknown = set(label) - {"pairs", "includeTemplates", "includeSelectors"}
    if unknown or label.get("includeSelectors"):
        raise KustomizeError("labels: only `pairs` and `includeTemplates` are supported")
    pairs = label.get("pairs", {})
    for obj in objects:
        obj.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)
        if label.get("includeTemplates"):
            template = _template(obj)
            if template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _template(obj: Object) -> Object | None:
    if obj["kind"] in WORKLOADS_WITH_TEMPLATE:
        template: Object = obj["spec"]["template"]
        return template
    if obj["kind"] == "CronJob":
        cron_template: Object = obj["spec"]["jobTemplate"]["spec"]["template"]
        return cron_template
    return None


def _apply_image(objects: Iterable[Object], image: Object) -> None:
    name = image["name"]
    for obj in objects:
        template = _template(obj)
        if template is None:
            continue
        spec = template["spec"]
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            reference = str(container.get("image", "")).split("@")[0]
            repository, colon, tag = reference.rpartition(":")
            # A colon in the last path segment starts a tag; one before it is a registry port.
            base = repository if colon and "/" not in tag else reference
            if base != name:
                continue
            new = str(image.get("newName", name))
            if "digest" in image:
                new = f"{new}@{image['digest']}"
            elif "newTag" in image:
                new = f"{new}:{image['newTag']}"
            container["image"] = new


def _apply_replicas(objects: Iterable[Object], replica: Object) -> None:
    for obj in objects:
        if obj["metadata"]["name"] == replica["name"] and obj["kind"] in {
            "Deployment",
            "StatefulSet",
        }:
            obj["spec"]["replicas"] = int(replica["count"])


def _check_unique(objects: Iterable[Object], directory: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        identity = (obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if identity in seen:
            raise KustomizeError(f"{directory}: {identity} is defined twice")
        seen.add(identity)


def identity(obj: Object) -> tuple[str, str, str, str]:
    """The key that makes an object unique in a rendered overlay."""
    metadata = obj.get("metadata", {})
    return (obj["apiVersion"], obj["kind"], metadata.get("namespace", ""), metadata["name"])


def differences_from_kubectl(directory: Path, kubectl: str) -> list[str]:
    """What `kubectl kustomize` renders differently from `render` (empty when they agree)."""
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return [f"kubectl kustomize {directory} failed: {result.stderr.strip()}"]
    theirs = {identity(o): _decoded(o) for o in yaml.safe_load_all(result.stdout) if o}
    ours = {identity(o): _decoded(o) for o in render(directory)}
    problems = [f"only kubectl renders {key}" for key in theirs.keys() - ours.keys()]
    problems += [f"only this renderer renders {key}" for key in ours.keys() - theirs.keys()]
    problems += [
        f"{key} differs:\n{_describe(ours[key], theirs[key])}"
        for key in sorted(ours.keys() & theirs.keys())
        if ours[key] != theirs[key]
    ]
    return problems


def _decoded(obj: Object) -> Object:
    """A Secret with its values decoded: kubectl wraps base64 at 76 columns, we do not."""
    if obj.get("kind") == "Secret" and "data" in obj:
        obj = dict(obj)
        obj["data"] = {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}
    return obj


def _describe(ours: Any, theirs: Any, path: str = "") -> str:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return "".join(
            _describe(ours.get(k), theirs.get(k), f"{path}.{k}")
            for k in sorted(set(ours) | set(theirs))
            if ours.get(k) != theirs.get(k)
        )
    return f"  {path}: ours={ours!r:.300} kubectl={theirs!r:.300}\n"


def main() -> int:
    """`python -m services.devmesh.kustomize DIR [OUT]`: render DIR to OUT (or stdout)."""
    if sys.argv[1] == "--compare":
        problems = differences_from_kubectl(Path(sys.argv[2]), sys.argv[3])
        print("\n".join(problems) or "same objects as kubectl kustomize")
        return 1 if problems else 0
    objects = render(Path(sys.argv[1]))
    text = yaml.safe_dump_all(objects, sort_keys=False)
    if len(sys.argv) > 2:
        Path(sys.argv[2]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
