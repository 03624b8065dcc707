"""The README's walkthrough, run verbatim against the mesh: every marked bash block exits 0.

The blocks are taken from README.md itself: each ```bash block right after a
`<!-- walkthrough -->` line, in order, in one bash process (later blocks use the variables
of earlier ones). curl fails on an HTTP error here (--fail-with-body), so a 4xx is a failure.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from services.devmesh.mesh import Mesh
from services.devmesh.processes import REPO_ROOT
from tests.support.edge import DEMO_PASSWORD

MARKER = "<!-- walkthrough -->"
_BLOCK = re.compile(re.escape(MARKER) + r"\n```bash\n(.*?)\n```", re.DOTALL)


def walkthrough_blocks(readme: Path = REPO_ROOT / "README.md") -> list[str]:
    """The marked bash blocks of the README, in order."""
    return _BLOCK.findall(readme.read_text())


def test_the_marked_blocks_are_found() -> None:
    text = (REPO_ROOT / "README.md").read_text()
    blocks = walkthrough_blocks()
    # Every marker is followed by a bash block, so a marker cannot silently match nothing.
    assert len(blocks) == text.count(MARKER) >= 2


def test_the_readme_walkthrough_runs_verbatim(mesh: Mesh) -> None:
    blocks = walkthrough_blocks()
    script = [
        "set -eo pipefail",
        # The README's commands as written; only curl fails on HTTP errors here.
        'curl() { command curl --fail-with-body "$@"; }',
    ]
    for number, block in enumerate(blocks, start=1):
        script += [f"echo '::block {number}' >&2", block, f"echo '::done {number}' >&2"]
    env = {
        **os.environ,
        # The venv's bin (grpcurl) first, as under `nox -s up`.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "EDGE": mesh.edge_url,
        "USER_GRPC": mesh.services["user"].target,
        "PRODUCT_GRPC": mesh.services["product"].target,
        "ORDER_GRPC": mesh.services["order"].target,
        "ORDER_METRICS": f"http://127.0.0.1:{mesh.services['order'].ops_port}",
        "STATE_DIR": str(mesh.state_dir),
        "MARKETPLACE_DEMO_PASSWORD": DEMO_PASSWORD,
    }
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    done = re.findall(r"^::done (\d+)$", result.stderr, re.MULTILINE)
    assert result.returncode == 0, (
        f"block {len(done) + 1} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    assert len(done) == len(blocks)
