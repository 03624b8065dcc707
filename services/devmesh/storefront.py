"""Serve the storefront (web/dist, the built React app) behind the edge at `/`.

Hashed build assets (/assets/*) are cached for a year, immutable; every other path answers
index.html uncached (the SPA's routes), so a new build is seen at the next page load. The
edge overwrites Cache-Control on everything it proxies (API answers must never be cached),
so the wanted policy also travels in X-Storefront-Cache-Control, which the edge's storefront
route turns back into Cache-Control. Envoy sends only the app's own paths here (envoy.yaml.tmpl).
Run it as `python -m services.devmesh.storefront PORT [DIST]`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

from aiohttp import web

from services.devmesh.processes import REPO_ROOT

DIST = REPO_ROOT / "web" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
POLICY_HEADER = "X-Storefront-Cache-Control"

SECURITY_HEADERS = {
    # The app loads only its own scripts and styles and calls only its own origin.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_NOT_BUILT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Marketplace</title></head>
<body><h1>The storefront is not built</h1>
<p>Run <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code>
(<code>nox -s up</code> does it when the build is stale).</p></body></html>
"""


def _cache_headers(policy: str) -> dict[str, str]:
    return {"Cache-Control": policy, POLICY_HEADER: policy}


def build_app(dist: Path = DIST) -> web.Application:
    """The aiohttp application serving `dist` with an SPA fallback to index.html."""
    root = dist.resolve()

    async def serve(request: web.Request) -> web.StreamResponse:
        index = root / "index.html"
        if not index.is_file():
            return web.Response(
                status=503, text=_NOT_BUILT, content_type="text/html", headers=SECURITY_HEADERS
            )
        relative = request.path.lstrip("/")
        candidate = (root / relative).resolve() if relative else index
        # Only files inside dist; anything else is a route of the app.
        hidden = any(part.startswith(".") for part in Path(relative).parts)
        if (
            candidate != index
            and not hidden
            and candidate.is_file()
            and candidate.is_relative_to(root)
        ):
            policy = IMMUTABLE if relative.startswith("assets/") else REVALIDATE
            return web.FileResponse(candidate, headers=_cache_headers(policy))
        if relative.startswith("assets/"):
            # A hashed asset of an older build: a 404, never index.html under a JS name.
            raise web.HTTPNotFound(headers=_cache_headers(REVALIDATE))
        return web.FileResponse(
            index,
            headers={
                **SECURITY_HEADERS,
                **_cache_headers(REVALIDATE),
                "Content-Type": "text/html; charset=utf-8",
            },
        )

    app = web.Application()
    app.router.add_get("/{tail:.*}", serve)
    return app


async def run(port: int, dist: Path, host: str = "127.0.0.1") -> None:
    """Serve until cancelled (SIGTERM/SIGINT end the process)."""
    runner = web.AppRunner(build_app(dist), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(int(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else DIST))
