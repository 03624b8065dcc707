"""Free TCP ports for the dev mesh and the tests, and whether something listens on one."""

from __future__ import annotations

import contextlib
import random
import socket
from pathlib import Path


class StartupError(RuntimeError):
    """A server did not become ready in time; its log says why."""


# Ports this process already handed out, so two servers started in a row never get the same one.
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A TCP port nothing listens on right now, below the kernel's ephemeral range.

    Asking the kernel for port 0 would hand out an ephemeral port, which any outgoing
    connection may take as its source port between now and the server's bind; ports below
    that range are never picked for outgoing connections, so the server gets its port.
    """
    ephemeral_low, _ = _ephemeral_range()
    low, high = 20000, max(20000 + 1000, ephemeral_low - 1)
    for _ in range(200):
        port = random.randint(low, high)
        if port in _handed_out:
            continue
        if not port_free(port):
            continue
        _handed_out.add(port)
        return port
    raise StartupError("no free TCP port below the ephemeral range")


def port_free(port: int) -> bool:
    """Whether a server could bind 127.0.0.1:port now (connections in TIME_WAIT allowed)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def tcp_ready(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False
