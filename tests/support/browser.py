"""Debian's Chromium, headless, driven by Playwright for the browser tests.

Playwright drives /usr/bin/chromium (`apt-get install chromium`, done by .ci/run); it never
downloads a browser of its own.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, sync_playwright

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium(profile: Path, **options: Any) -> Iterator[BrowserContext]:
    """A browser context with a fresh profile folder (`--user-data-dir`)."""
    if not Path(CHROMIUM).exists():
        # CI installs it (.ci/run), so there a missing browser is a failure, not a skip.
        message = "Debian's chromium is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True, **options
        )
        try:
            yield context
        finally:
            context.close()


@contextmanager
def chromium_browser() -> Iterator[Browser]:
    """One headless Chromium for tests that need several contexts at once (two people)."""
    if not Path(CHROMIUM).exists():
        message = "Debian's chromium is missing: apt-get install chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
