"""Headless Chromium for the UI tests: Debian's ``chromium`` driven by Python playwright.

One browser per test module; each test gets a fresh context (no cookies carried over) and a
page that records console errors and uncaught exceptions. Screenshots go to
``$OCIKIT_UI_ARTIFACTS`` when set, else to a temporary directory of the session.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pytest

from servers import require

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    where = os.environ.get("OCIKIT_UI_ARTIFACTS")
    path = Path(where) if where else tmp_path_factory.mktemp("ui-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    exe = require("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=os.path.realpath(exe) if exe != "/usr/bin/chromium" else exe,
                              args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@dataclass
class Tab:
    """A page and what went wrong in it (console errors, uncaught exceptions, dialogs)."""

    page: Any
    base: str
    artifacts: Path
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def go(self, path: str) -> Any:
        return self.page.goto(self.base + path)

    def shot(self, name: str) -> Path:
        out = self.artifacts / f"{name}.png"
        self.page.screenshot(path=str(out), full_page=True)
        return out

    def text(self) -> str:
        return self.page.inner_text("body")


def open_tab(browser: Any, base: str, artifacts: Path) -> Tab:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    tab = Tab(page, base, artifacts)
    page.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.errors.append(str(e)))

    def on_dialog(d: Any) -> None:
        tab.dialogs.append(d.message)
        d.dismiss()
    page.on("dialog", on_dialog)
    return tab
