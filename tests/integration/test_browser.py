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

    from mlops.backends.local.registry import LocalRegistry

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


LAYOUT = ["h1", "main > p", "#drop", "#preview", "#error", "#result"]
RESULT_PARTS = ["#label", "#result .bar >> nth=0", "#result .bar >> nth=1", "#result .meta"]
WIDTHS = {"desktop": (1100, 900), "wide": (1440, 900), "phone": (390, 844), "small-phone": (320, 640)}
ANSWER = {"label": "cat", "confidence": 0.987, "scores": {"cat": 0.987, "dog": 0.013}, "model_version": "12"}


def overlaps(boxes: dict[str, dict]) -> list[str]:
    """Pairs of visible elements whose boxes intersect (a pixel of tolerance for rounding)."""
    found, names = [], [n for n, b in boxes.items() if b and b["width"] > 0 and b["height"] > 0]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            p, q = boxes[a], boxes[b]
            dx = min(p["x"] + p["width"], q["x"] + q["width"]) - max(p["x"], q["x"])
            dy = min(p["y"] + p["height"], q["y"] + q["height"]) - max(p["y"], q["y"])
            if dx > 1 and dy > 1:
                found.append(f"{a} overlaps {b} by {dx:.0f}x{dy:.0f} px")
    return found


@pytest.mark.parametrize("name", WIDTHS)
def test_no_two_elements_overlap_at_desktop_and_phone_widths(name: str, data_dir, tmp_path) -> None:
    from mlops.web_page import render

    html = render("http://layout.test", "key")
    photo = sorted((data_dir / "test" / "cat").iterdir())[0]
    width, height = WIDTHS[name]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": width, "height": height})

        def answer(route) -> None:  # the page and a classification answer, without a stack behind them
            if route.request.url.endswith("/predict"):
                route.fulfill(status=200, content_type="application/json", body=json.dumps(ANSWER))
            else:
                route.fulfill(status=200, content_type="text/html", body=html)

        page.route("http://layout.test/**", answer)
        page.goto("http://layout.test/")
        boxes = {sel: page.locator(sel).bounding_box(timeout=5000) for sel in LAYOUT}
        page.screenshot(path=str(tmp_path / f"{name}-empty.png"), full_page=True)
        assert overlaps(boxes) == [], boxes
        page.set_input_files("#file", str(photo))
        page.get_by_test_id("label").wait_for(state="visible", timeout=15000)
        page.locator("#preview").evaluate("img => img.decode()")
        boxes = {sel: page.locator(sel).bounding_box(timeout=5000) for sel in LAYOUT + RESULT_PARTS}
        page.screenshot(path=str(tmp_path / f"{name}-answered.png"), full_page=True)
        assert overlaps({k: v for k, v in boxes.items() if k in LAYOUT}) == [], boxes
        assert overlaps({k: v for k, v in boxes.items() if k in RESULT_PARTS}) == [], boxes
        page_width = page.evaluate("document.documentElement.scrollWidth")
        assert page_width <= width, f"the page scrolls sideways at {width} px ({page_width} px wide)"
        browser.close()
