"""Serve the API reference behind the edge: /openapi.json and Swagger UI at /docs, offline.

Swagger UI's dist files come from the PyPI package `swagger-ui-py` (Swagger UI 5, which
renders OpenAPI 3.1); nothing is fetched from the network. Envoy routes /docs and
/openapi.json here (envoy/envoy.yaml.tmpl), so "try it out" calls go to the same origin.
Run it as `python -m services.devmesh.openapi_docs PORT`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from pathlib import Path

from aiohttp import web

from services.devmesh.processes import REPO_ROOT

DOCUMENT = REPO_ROOT / "gen" / "openapi" / "marketplace.openapi.json"
# The dist files the page loads; nothing else of the package is served.
ASSETS = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")

_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Marketplace API reference</title>
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/init.js"></script>
</body>
</html>
"""

# A separate file rather than an inline script, so a strict Content-Security-Policy fits.
_INIT = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayOperationId: true,
  displayRequestDuration: true,
  tryItOutEnabled: true,
  persistAuthorization: false,
  validatorUrl: null
});
"""

_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "connect-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
}


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's dist files inside the installed `swagger-ui-py`."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (the mesh dependency group has it)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def build_app(document: Path = DOCUMENT, assets: Path | None = None) -> web.Application:
    """The aiohttp application serving the page, its assets and the document.

    Args:
        document: The OpenAPI document to serve at /openapi.json.
        assets: Swagger UI's dist folder; the installed package's by default.

    Returns:
        The application.
    """
    folder = assets or swagger_ui_dir()
    missing = [name for name in ASSETS if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(f"Swagger UI files missing from {folder}: {missing}")

    async def page(_: web.Request) -> web.Response:
        return web.Response(text=_PAGE, content_type="text/html", headers=_SECURITY_HEADERS)

    async def init(_: web.Request) -> web.Response:
        return web.Response(text=_INIT, content_type="text/javascript")

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:
            raise web.HTTPNotFound(text='{"code": 404, "message": "not found"}')
        return web.FileResponse(folder / name, headers={"Cache-Control": "public, max-age=3600"})

    async def openapi(_: web.Request) -> web.StreamResponse:
        return web.FileResponse(
            document, headers={"Content-Type": "application/json", "Cache-Control": "no-cache"}
        )

    app = web.Application()
    app.router.add_get("/docs", page)
    app.router.add_get("/docs/", page)
    app.router.add_get("/docs/init.js", init)
    app.router.add_get("/docs/assets/{name}", asset)
    app.router.add_get("/openapi.json", openapi)
    return app


async def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve until cancelled (SIGTERM/SIGINT end the process)."""
    runner = web.AppRunner(build_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(int(sys.argv[1])))
