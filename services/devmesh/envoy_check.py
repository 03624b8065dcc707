"""Validate the rendered Envoy config with the real binary (`envoy --mode validate`)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from services.devmesh.envoy_config import EdgeConfig, write
from services.devmesh.processes import envoy_binary


def main() -> int:
    """Render the template with sample ports and let Envoy validate it."""
    config = EdgeConfig(
        edge_port=8080,
        admin_port=9901,
        user_port=50051,
        user_ops_port=9464,
        product_port=50052,
        order_port=50053,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = write(config, Path(tmp) / "envoy.yaml")
        result = subprocess.run(
            [envoy_binary(), "--mode", "validate", "-c", str(path), "--use-dynamic-base-id"],
            capture_output=True,
            text=True,
            check=False,
        )
    print(result.stdout.strip() or result.stderr.strip())
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
