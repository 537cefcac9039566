"""Headless Chromium for the UI tests: Debian's ``chromium`` driven by Python playwright.

One browser per test module; each test gets a fresh context (no cookies carried over) and a
page that records console errors and uncaught exceptions. Screenshots go to
``$OCIKIT_UI_ARTIFACTS`` when set, else to a temporary directory of the session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterator

import pytest

from helpers.browser import CHROMIUM_ARGS
from helpers.peers import require


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
        b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)  # Debian's, never a download
        try:
            yield b
        finally:
            b.close()
