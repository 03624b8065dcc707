"""Run the bootstrap: `python -m services.bootstrap` (the Kubernetes bootstrap Job)."""

from __future__ import annotations

import asyncio
import sys

from services.bootstrap.bootstrap import BootstrapError, BootstrapSettings, bootstrap
from services.common.logging import configure_logging


def main() -> int:
    """Bootstrap with settings from BOOTSTRAP_* variables; non-zero when it could not."""
    configure_logging("bootstrap")
    try:
        asyncio.run(bootstrap(BootstrapSettings()))  # the fields come from the environment
    except BootstrapError as error:
        print(f"bootstrap failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
