"""A longer schemathesis pass over the REST edge than the tests run (`nox -s fuzz`), bounded.

Starts its own mesh on free ports (loopback only), signs in an account of its own (customer
and seller), runs `st run` against the OpenAPI document with a time budget, and prints the
figures: server errors, schema violations, undocumented statuses.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import httpx

from services.devmesh.mesh import Mesh, MeshOptions
from services.devmesh.openapi_docs import DOCUMENT
from services.devmesh.processes import free_port

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)
_PASSWORD = "fuzz-account-password"


def _fuzz_token(edge: str, demo_password: str) -> str:
    """Register an account, make it a seller too (as the demo admin), and sign it in."""
    suffix = uuid.uuid4().hex[:10]
    email = f"fuzz-{suffix}@example.org"
    with httpx.Client(base_url=edge, timeout=30) as client:
        created = client.post(
            "/v1/users",
            json={"email": email, "username": f"fuzz_{suffix}", "password": _PASSWORD},
        )
        created.raise_for_status()
        admin = client.post(
            "/v1/auth/login", json={"email": "admin@example.com", "password": demo_password}
        )
        admin.raise_for_status()
        client.post(
            f"/v1/users/{created.json()['userId']}:setRoles",
            headers={"Authorization": f"Bearer {admin.json()['accessToken']}"},
            json={"roles": ["ROLE_CUSTOMER", "ROLE_SELLER"]},
        ).raise_for_status()
        login = client.post("/v1/auth/login", json={"email": email, "password": _PASSWORD})
        login.raise_for_status()
        return str(login.json()["accessToken"])


def _figures(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of schemathesis's JSON run report: cases, and failures by kind."""
    failures = {
        f"{failure['code']} {failure['title']}": {
            "count": failure["count"],
            "operations": failure["operations"],
        }
        for failure in report.get("failures", [])
    }
    return {
        "test_cases": report.get("test_cases", {}).get("generated"),
        "operations_tested": report.get("operations", {}).get("tested"),
        "running_time_s": report.get("running_time"),
        "failures": failures,
    }


def main(argv: list[str]) -> int:
    """Run the pass; the exit code is st's (non-zero when it found failures)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-examples", type=int, default=40)
    parser.add_argument("--max-time", type=int, default=240, help="seconds for the whole run")
    parser.add_argument("--report-dir", type=Path, default=Path(".mesh") / "fuzz")
    args = parser.parse_args(argv)
    st = shutil.which("st") or str(Path(sys.executable).parent / "st")
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-fuzz-"))
    state_dir.chmod(0o755)
    demo_password = uuid.uuid4().hex
    args.report_dir.mkdir(parents=True, exist_ok=True)
    report_path = args.report_dir.resolve() / "report.json"
    with Mesh(
        MeshOptions(state_dir=state_dir, edge_port=free_port(), demo_password=demo_password)
    ) as mesh:
        token = _fuzz_token(mesh.edge_url, demo_password)
        command = [
            st,
            "run",
            str(DOCUMENT),
            f"--url={mesh.edge_url}",
            f"--header=Authorization: Bearer {token}",
            f"--checks={','.join(CHECKS)}",
            f"--max-examples={args.max_examples}",
            f"--max-time={args.max_time}",
            "--phases=examples,coverage,fuzzing",
            "--mode=all",
            "--workers=1",
            "--request-timeout=20",
            "--continue-on-failure",
            "--report=json",
            f"--report-json-path={report_path}",
        ]
        # st keeps a cache of its findings in its working folder: keep it with the report.
        result = subprocess.run(command, check=False, cwd=args.report_dir)
    if report_path.exists():
        figures = _figures(json.loads(report_path.read_text()))
        print(json.dumps({**figures, "report": str(report_path)}, indent=2))
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
