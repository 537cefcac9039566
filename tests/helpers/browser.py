"""A browser tab for the UI tests: a page that records console errors, exceptions and dialogs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
