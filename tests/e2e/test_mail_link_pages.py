"""The links in the dev mails open pages at the edge that do the action, in Debian's Chromium."""

from __future__ import annotations

import email
import email.policy
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, expect

from services.devmesh.mesh import Mesh
from tests.support.browser import chromium
from tests.support.edge import login, register

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(tmp_path_factory.mktemp("chromium-profile-mail")) as context:
        yield context


def mail_link(mesh: Mesh, to: str, kind: str, path: str) -> str:
    """The link to `path` in the newest mail of `kind` to `to`, as the mail shows it."""
    folder = Path(mesh.state_dir) / "mailbox"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        links = []
        for eml in sorted(folder.glob("*.eml")):
            message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
            if message["To"] == to and message["X-Marketplace-Kind"] == kind:
                body = message.get_body()
                assert body is not None
                found = re.search(
                    rf"(https?://\S+{re.escape(path)}\?token=\S+)", body.get_content()
                )
                assert found, body.get_content()
                links.append(found.group(1))
        if links:
            return links[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {kind} mail to {to} in {folder}")


def test_the_verification_link_verifies_the_email(
    mesh: Mesh, edge: httpx.Client, browser: BrowserContext
) -> None:
    address, _ = register(edge, PASSWORD)
    link = mail_link(mesh, address, "verify_email", "/verify-email")
    assert link.startswith(mesh.edge_url)
    page = browser.new_page()
    try:
        page.goto(link)
        status = page.locator("#status")
        expect(status).to_have_attribute("data-outcome", "ok", timeout=15_000)
        expect(status).to_contain_text("verified")
    finally:
        page.close()
    account = login(edge, address, PASSWORD)
    me = edge.get("/v1/users/me", headers=account.headers)
    assert me.json()["emailVerified"] is True


def test_the_reset_link_sets_the_new_password(
    mesh: Mesh, edge: httpx.Client, browser: BrowserContext
) -> None:
    address, _ = register(edge, PASSWORD)
    asked = edge.post("/v1/auth/password:requestReset", json={"email": address})
    assert asked.status_code == 200, asked.text
    link = mail_link(mesh, address, "reset_password", "/reset-password")
    page = browser.new_page()
    try:
        page.goto(link)
        page.fill("#password", "a much better passphrase")
        page.click("button[type=submit]")
        expect(page.locator("#status")).to_have_attribute("data-outcome", "ok", timeout=15_000)
    finally:
        page.close()
    old = edge.post("/v1/auth/login", json={"email": address, "password": PASSWORD})
    assert old.status_code == 401
    login(edge, address, "a much better passphrase")
