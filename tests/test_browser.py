"""The web page in headless Chromium (Debian's chromium, driven by Playwright): upload a cat photo, see "cat"."""

from __future__ import annotations

import json
import shutil

import pytest
from playwright.sync_api import sync_playwright
from stack_support import mlops, stack_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def api(tmp_path_factory, data_dir, small_artifact):
    import os

    from mlops.backends.local_registry import LocalRegistry

    env = stack_env(tmp_path_factory.mktemp("browser-home"), data_dir)
    os.environ["MLOPS_HOME"], old = env["MLOPS_HOME"], os.environ.get("MLOPS_HOME")
    try:
        LocalRegistry().register("browser", small_artifact.as_uri(), 0.95, "test")
    finally:
        os.environ.pop("MLOPS_HOME") if old is None else os.environ.__setitem__("MLOPS_HOME", old)
    up = mlops("up", "--json", env=env)
    assert up.returncode == 0, up.stderr
    yield json.loads(up.stdout)["api_url"]
    mlops("down", env=env)


def test_upload_cat_photo_shows_cat(api, data_dir, tmp_path):
    photo = sorted((data_dir / "test" / "cat").iterdir())[1]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(api + "/")
        assert page.title() == "Cat or dog?"
        page.set_input_files("#file", str(photo))
        label = page.get_by_test_id("label")
        label.wait_for(state="visible", timeout=15000)
        assert label.inner_text().strip().lower() == "cat"
        assert page.locator("#version").inner_text().strip() == "1"
        assert "ms" in page.locator("#latency").inner_text()
        width = page.locator("#bar-cat").evaluate("e => parseFloat(e.style.width)")
        assert width > 50
        page.screenshot(path=str(tmp_path / "page.png"))
        browser.close()


def test_bad_file_shows_error(api, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"this is not a photo")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page()
        page.goto(api + "/")
        page.set_input_files("#file", str(bad))
        error = page.locator("#error")
        error.wait_for(state="visible", timeout=15000)
        assert "Could not classify" in error.inner_text()
        browser.close()
