"""The storefront's static server: cache policy, SPA fallback, and nothing outside dist."""

from __future__ import annotations

from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer

from services.devmesh.storefront import IMMUTABLE, POLICY_HEADER, REVALIDATE, build_app


def _dist(root: Path) -> Path:
    dist = root / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><script src="/assets/app-1a2b.js"></script>')
    (dist / "assets" / "app-1a2b.js").write_text("console.log(1)")
    (dist / ".build-stamp").write_text("digest")
    (root / "secret.txt").write_text("outside dist")
    return dist


async def test_assets_are_immutable_and_routes_get_the_page(tmp_path: Path) -> None:
    async with TestClient(TestServer(build_app(_dist(tmp_path)))) as client:
        asset = await client.get("/assets/app-1a2b.js")
        assert asset.status == 200
        assert asset.headers["Cache-Control"] == IMMUTABLE
        assert asset.headers[POLICY_HEADER] == IMMUTABLE
        for path in ("/", "/orders/42", "/sell/products/new"):
            page = await client.get(path)
            assert page.status == 200
            assert page.headers["Content-Type"].startswith("text/html")
            assert page.headers["Cache-Control"] == REVALIDATE
            assert "default-src 'self'" in page.headers["Content-Security-Policy"]
            assert "/assets/app-1a2b.js" in await page.text()


async def test_missing_assets_dotfiles_and_escapes_are_not_served(tmp_path: Path) -> None:
    async with TestClient(TestServer(build_app(_dist(tmp_path)))) as client:
        assert (await client.get("/assets/app-old.js")).status == 404
        for path in ("/.build-stamp", "/..%2Fsecret.txt", "/../secret.txt"):
            answer = await client.get(path)
            assert "outside dist" not in await answer.text()
            assert await answer.text() != "digest"


async def test_an_unbuilt_storefront_says_how_to_build_it(tmp_path: Path) -> None:
    async with TestClient(TestServer(build_app(tmp_path / "dist"))) as client:
        answer = await client.get("/")
        assert answer.status == 503
        assert "npm run build" in await answer.text()
