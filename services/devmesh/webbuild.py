"""Build the storefront (web/ -> web/dist) when its sources changed since the last build.

The build is stamped with a hash of everything it is made from (sources, lock, configs);
a matching stamp means web/dist is fresh and nothing runs. Otherwise `npm ci` (only when
the lock changed or node_modules is missing) and `npm run build`. Used by `nox -s up` and
by the browser tests' session, so a clean clone builds once and then never again.
Run it as `python -m services.devmesh.webbuild`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from services.devmesh.processes import REPO_ROOT

WEB = REPO_ROOT / "web"
INPUTS = ("package.json", "package-lock.json", "index.html", "vite.config.ts", "tsconfig.json")
STAMP = ".build-stamp"
LOCK_STAMP = ".lock-stamp"


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(str(path.relative_to(WEB)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def source_digest(web: Path = WEB) -> str:
    """The hash of everything the build is made from."""
    files = [web / name for name in INPUTS if (web / name).is_file()]
    files += [p for p in (web / "src").rglob("*") if p.is_file()]
    return _digest(files)


def is_fresh(web: Path = WEB) -> bool:
    """Whether web/dist was built from the current sources."""
    stamp = web / "dist" / STAMP
    return stamp.is_file() and stamp.read_text() == source_digest(web)


def ensure_built(web: Path = WEB) -> bool:
    """Build web/dist if it is stale; True when a build ran."""
    if is_fresh(web):
        return False
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: install Node.js 20 and npm to build web/")
    lock = _digest([web / "package-lock.json"])
    lock_stamp = web / "node_modules" / LOCK_STAMP
    if not (lock_stamp.is_file() and lock_stamp.read_text() == lock):
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=web, check=True)
        lock_stamp.write_text(lock)
    digest = source_digest(web)
    subprocess.run([npm, "run", "build"], cwd=web, check=True)
    (web / "dist" / STAMP).write_text(digest)
    return True


if __name__ == "__main__":
    print("web/dist rebuilt" if ensure_built() else "web/dist is fresh")
