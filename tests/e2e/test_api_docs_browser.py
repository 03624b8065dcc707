"""The API reference at /docs, as a person sees it: Debian's Chromium, headless, via Playwright.

The browser is tests/support/browser.py's. The screenshots land in .mesh/test-artifacts/ (ignored by git),
or in $MARKETPLACE_TEST_ARTIFACTS.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext

from services.devmesh.mesh import Mesh
from services.devmesh.openapi_docs import DOCUMENT
from services.devmesh.processes import REPO_ROOT
from tests.support.browser import chromium

METHODS = ("get", "put", "post", "delete", "patch")
ARTIFACTS = Path(
    os.environ.get("MARKETPLACE_TEST_ARTIFACTS") or REPO_ROOT / ".mesh" / "test-artifacts"
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    profile = tmp_path_factory.mktemp("chromium-profile")
    with chromium(profile, viewport={"width": 1280, "height": 2000}) as context:
        yield context


def test_the_edge_serves_the_document_and_the_page(mesh: Mesh, edge: httpx.Client) -> None:
    document = edge.get("/openapi.json")
    assert document.status_code == 200
    assert document.headers["content-type"].startswith("application/json")
    assert document.json() == json.loads(DOCUMENT.read_text())
    page = edge.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui-bundle.js" in page.text
    assert edge.get("/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert edge.get("/docs/assets/..%2Fcore.py").status_code == 404


def test_docs_list_every_operation_and_try_it_out_calls_the_api(
    mesh: Mesh, browser: BrowserContext
) -> None:
    document = json.loads(DOCUMENT.read_text())
    operations = [
        op
        for item in document["paths"].values()
        for method, op in item.items()
        if method in METHODS
    ]
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(f"{mesh.edge_url}/docs", wait_until="networkidle")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() == len(operations)
    assert page.locator(".info .title").inner_text().startswith("Marketplace API")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-docs-overview.png"))

    # "Try it out" on a public operation: list the categories, no token needed.
    block = page.locator("#operations-ProductService-ProductService_ListCategories")
    block.locator(".opblock-summary").click()
    try_out = block.locator(".try-out__btn")
    if try_out.count() and try_out.inner_text().strip() == "Try it out":
        try_out.click()
    block.locator("button.execute").click()
    status = block.locator(".live-responses-table .response .response-col_status").first
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip() == "200"
    body = block.locator(".live-responses-table .response-col_description pre").first.inner_text()
    assert json.loads(body)["categories"]

    block.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "api-docs-try-it-out.png"))
    assert errors == []
