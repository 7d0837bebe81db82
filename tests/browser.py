"""A real browser for page tests: Debian's chromium driven by chromedriver (selenium), headless."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NEEDS_DRIVER = pytest.mark.skipif(shutil.which("chromedriver") is None,
                                  reason="needs Debian's chromium-driver (make test installs it)")


def driver(tmp_path: Path):
    """A headless chromium with its own profile under ``tmp_path`` (quit() it when done)."""
    pytest.importorskip("selenium", reason="needs selenium (make setup-dev installs it)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={tmp_path / 'chrome'}"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium")
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
