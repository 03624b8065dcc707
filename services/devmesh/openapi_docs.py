"""Serve the API reference and the mailed links' pages behind the edge, offline.

/openapi.json and Swagger UI at /docs; /verify-email and /reset-password are the pages the
dev mails link to, small forms that call the public REST API on the same origin.

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

# The pages the user service's mails link to ({public_base_url}/verify-email?token=...).
# Each script reads the token from the address and calls the public REST API.
_ACTION_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{title}</title>
</head>
<body>
  <h1>{title}</h1>
  {form}
  <p id="status" role="status"></p>
  <p><a href="/signin">Continue to the marketplace</a></p>
  <script src="/docs/{script}"></script>
</body>
</html>
"""

_VERIFY_FORM = ""

_RESET_FORM = """<form id="reset">
    <label>New password <input id="password" type="password" autocomplete="new-password"
      minlength="8" required></label>
    <button type="submit">Set the new password</button>
  </form>"""

# Shared by both pages: POST JSON, show the answer's message.
_POST_JS = """async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  return { ok: response.ok, message: answer.message || response.statusText };
}
const token = new URLSearchParams(window.location.search).get("token") || "";
const statusLine = document.getElementById("status");
"""

_VERIFY_JS = (
    _POST_JS
    + """(async () => {
  if (!token) { statusLine.textContent = "This link has no token."; return; }
  statusLine.textContent = "Verifying...";
  const result = await post("/v1/auth/email:verify", { token });
  statusLine.textContent = result.ok ? "Your email address is verified." : result.message;
  statusLine.dataset.outcome = result.ok ? "ok" : "error";
})();
"""
)

_RESET_JS = (
    _POST_JS
    + """document.getElementById("reset").addEventListener("submit", async (event) => {
  event.preventDefault();
  const newPassword = document.getElementById("password").value;
  const result = await post("/v1/auth/password:reset", { token, newPassword });
  statusLine.textContent = result.ok
    ? "Your password is changed; sign in with the new one." : result.message;
  statusLine.dataset.outcome = result.ok ? "ok" : "error";
});
"""
)

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

    def action_page(title: str, form: str, script: str) -> web.Response:
        html = _ACTION_PAGE.format(title=title, form=form, script=script)
        # The token is in the address: keep it out of other sites' Referer headers.
        headers = {**_SECURITY_HEADERS, "Referrer-Policy": "no-referrer"}
        return web.Response(text=html, content_type="text/html", headers=headers)

    async def verify_page(_: web.Request) -> web.Response:
        return action_page("Verify your email address", _VERIFY_FORM, "verify-email.js")

    async def reset_page(_: web.Request) -> web.Response:
        return action_page("Choose a new password", _RESET_FORM, "reset-password.js")

    async def verify_js(_: web.Request) -> web.Response:
        return web.Response(text=_VERIFY_JS, content_type="text/javascript")

    async def reset_js(_: web.Request) -> web.Response:
        return web.Response(text=_RESET_JS, content_type="text/javascript")

    app = web.Application()
    app.router.add_get("/verify-email", verify_page)
    app.router.add_get("/reset-password", reset_page)
    app.router.add_get("/docs/verify-email.js", verify_js)
    app.router.add_get("/docs/reset-password.js", reset_js)
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
