"""Validate the rendered Envoy configs with the real binary (`envoy --mode validate`)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from services.devmesh.endpoints import EndpointFiles
from services.devmesh.envoy_config import EdgeConfig, UpstreamTls, kubernetes, write
from services.devmesh.processes import envoy_binary
from services.devmesh.tls import ensure_mesh_tls


def main() -> int:
    """Render the dev edge (plain + TLS, EDS files) and the cluster edge (TLS only, DNS); check both."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tls"
        mesh_tls = ensure_mesh_tls(folder)
        certificate_path, key_path = folder / "edge.pem", folder / "edge-key.pem"
        upstream: UpstreamTls = {
            "upstream_cert_path": str(mesh_tls.edge_client.cert_path),
            "upstream_key_path": str(mesh_tls.edge_client.key_path),
            "upstream_ca_path": str(mesh_tls.ca_path),
        }
        # The dev edge reads its service endpoints from files the mesh keeps (EDS).
        files = EndpointFiles(Path(tmp) / "eds")
        for eds_cluster in ("user", "product", "order", "user_ops"):
            files.write(eds_cluster, [("127.0.0.1", 50051)])
        dev = EdgeConfig(
            edge_port=8080,
            admin_port=9901,
            user_port=50051,
            user_ops_port=9464,
            product_port=50052,
            order_port=50053,
            tls_port=8443,
            tls_cert_path=str(certificate_path),
            tls_key_path=str(key_path),
            cors_allowed_origins=("http://localhost:5173",),
            eds_dir=str(files.directory),
            **upstream,
        )
        # The cluster's files live in the image and the Secret; point at local stand-ins.
        cluster = replace(
            kubernetes(),
            descriptor_path=dev.descriptor_path,
            tls_cert_path=dev.tls_cert_path,
            tls_key_path=dev.tls_key_path,
            **upstream,
        )
        worst = 0
        for name, config in (("dev", dev), ("kubernetes", cluster)):
            path = write(config, Path(tmp) / f"envoy-{name}.yaml")
            result = subprocess.run(
                [envoy_binary(), "--mode", "validate", "-c", str(path), "--use-dynamic-base-id"],
                capture_output=True,
                text=True,
                check=False,
            )
            print(f"{name}: {result.stdout.strip() or result.stderr.strip()}")
            worst = max(worst, result.returncode)
    return worst


if __name__ == "__main__":
    sys.exit(main())
