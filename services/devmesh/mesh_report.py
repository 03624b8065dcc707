"""What the dev mesh tells people and scripts: `mesh.json`, `describe()` and the summary it prints."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.devmesh import edge

if TYPE_CHECKING:
    from services.devmesh.mesh import Mesh


def snapshot(mesh: Mesh) -> dict[str, object]:
    """What `mesh.json` says: every process with its pid, ports, log, restarts and state."""
    return {
        "state": mesh._state,
        "updated": datetime.now(UTC).isoformat(),
        "supervised": mesh.supervisor is not None,
        "edge": {
            "rest": mesh.edge_url,
            "grpc": f"127.0.0.1:{mesh.options.edge_port}",
            "health": f"{mesh.edge_url}/healthz",
            "admin": f"http://127.0.0.1:{mesh.edge_admin_port}",
        },
        "registry": mesh.etcd_url,
        # Every instance of every service, in replica order.
        "instances": [
            {
                "service": e.name,
                "replica": e.replica,
                "process": e.process_name,
                "pid": e.process.pid if e.process is not None else None,
                "ports": {"grpc": e.grpc_port, "ops": e.ops_port},
                "log": str(mesh.state_dir / "logs" / f"{e.process_name}.log"),
                "state": e.process.state if e.process is not None else "planned",
                "restarts": e.process.restarts if e.process is not None else 0,
            }
            for endpoints in mesh.replicas.values()
            for e in endpoints
        ],
        "processes": {
            name: {
                "pid": process.pid,
                "ports": process.ports,
                "log": str(process.log_path),
                "restarts": process.restarts,
                "state": process.state,
            }
            for name, process in mesh.processes().items()
        },
        "postgres": mesh.postgres_url,
        "mongo": mesh.mongo_url,
        "redis": mesh.redis_url,
        "payment_gateway": mesh.payment_gateway_url,
        "mailbox": str(mesh.state_dir / "mailbox"),
    }


def write_state(mesh: Mesh) -> None:
    """Write `mesh.json` atomically (a temp file renamed over it): readers never see half."""
    path = mesh.state_dir / "mesh.json"
    temporary = path.with_name(f".mesh.json.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(snapshot(mesh), indent=2) + "\n")
    os.replace(temporary, path)


def describe(mesh: Mesh) -> dict[str, object]:
    """Where everything listens, for people and scripts."""
    return {
        "edge": mesh.edge_url,
        "edge_admin": f"http://127.0.0.1:{mesh.edge_admin_port}",
        "edge_tls": mesh.edge_tls_url,
        "edge_ca": str(edge.ca_path(mesh.state_dir)),
        # grpcurl -cacert CA -cert OPERATOR -key OPERATOR_KEY <service grpc> list
        "mesh_tls": {
            "ca": str(mesh.mesh_tls().ca_path),
            "operator_cert": str(mesh.mesh_tls().operator.cert_path),
            "operator_key": str(mesh.mesh_tls().operator.key_path),
        },
        "edge_access_log": str(edge.access_log_path(mesh.state_dir)),
        "services": {
            name: {
                "grpc": e.target,
                "metrics": f"http://127.0.0.1:{e.ops_port}/metrics",
                "log": str(mesh.state_dir / "logs" / f"{name}.log"),
                "replicas": [r.target for r in mesh.replicas[name]],
            }
            for name, e in mesh.services.items()
        },
        # The service registry: every instance under /marketplace/services/.
        "registry": mesh.etcd_url,
        "postgres": mesh.postgres_url,
        "mongo": mesh.mongo_url,
        "redis": mesh.redis_url,
        "logs": str(mesh.state_dir / "logs"),
        # Every process with its pid, ports, log, restarts and state, kept current.
        "state_file": str(mesh.state_dir / "mesh.json"),
        # Verification and password-reset mails of the user service, as .eml files.
        "mailbox": str(mesh.state_dir / "mailbox"),
    }


def print_summary(mesh: Mesh) -> None:
    """Tell the person at the terminal where everything is."""
    print(json.dumps(mesh.describe(), indent=2), flush=True)
    print(
        f"\nThe mesh is up. Try: curl -s {mesh.edge_url}/v1/products?page_size=3\n"
        "Demo accounts: admin@example.com, seller@example.com, buyer@example.com "
        "(password from MARKETPLACE_DEMO_PASSWORD). Ctrl-C stops everything.",
        flush=True,
    )
