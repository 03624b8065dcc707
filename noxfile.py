"""Every developer task of the mesh: codegen, lint, tests, benchmarks and the local mesh."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

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
        # Source info carries the values' comments into the generated modules.
        descriptors = Path(tmp) / "reasons.binpb"
        session.run(
            "python",
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{THIRD_PARTY}",
            "--include_source_info",
            f"--descriptor_set_out={descriptors}",
            *(p for p in _own_protos() if p.endswith("/error_reason.proto")),
        )
        session.run("python", "-m", "services.devmesh.reasons_gen", str(descriptors), str(root))


def _generate_openapi(session: nox.Session, out: Path) -> None:
    """The OpenAPI 3.1 document of the REST edge, from the descriptors and their comments."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        descriptors = Path(tmp) / "marketplace-with-source.binpb"
        # Source info carries the proto comments, which become the descriptions.
        session.run(
            "python",
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO}",
            f"-I{THIRD_PARTY}",
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={descriptors}",
            *_own_protos(),
            *EXTRA_DESCRIPTOR_PROTOS,
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


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """Ruff, mypy --strict, import-linter, buf lint/format/breaking, Envoy config, stale gen."""
    _sync(session, "codegen", "lint", "mesh", "test")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy", "services", "tests", "noxfile.py")
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
    manifests = sorted(
        str(p) for p in (ROOT / "k8s").glob("*.yaml") if p.name != "kustomization.yaml"
    )
    session.run("kubernetes-validate", "--strict", "--quiet", *manifests)
    session.run("hadolint", "Dockerfile")


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
def up(session: nox.Session) -> None:
    """Run the whole mesh locally with demo data; Ctrl-C stops everything."""
    _sync(session, "mesh")
    # Ctrl-C reaches the runner too; give it time to stop every server in order.
    session.run("python", "-m", "services.devmesh", *session.posargs, interrupt_timeout=60)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Throughput and latency of the running mesh: direct gRPC, the REST edge, a checkout."""
    _sync(session, "mesh")
    session.run("python", "-m", "services.devmesh.bench", *session.posargs)
