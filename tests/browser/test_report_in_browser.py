"""The HTML report opened in a real browser (headless Chromium, the Debian packages chromium
and chromium-driver): every picture loads, the console stays clean, every link inside the
page lands on its target; for a small run and for the full matrix's variety
(tests/unit/results_variety.py). The small one's first screen is saved as
docs/report-first-screen.png when XENT_SAVE_SCREENSHOT=1.

Without Chromium the test skips (counted), unless XENT_REQUIRE_BROWSER=1, as in CI, where a
missing browser fails it.
"""
import os
import shutil
from pathlib import Path

import pytest

from conformance.report import render
from conformance.results import records as results
from tests.unit.results_variety import variety_document

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _records():
    """A small run's worth of records: passes, a failure, a known divergence, a skip."""
    base = {"op": "sparse_softmax_cross_entropy", "quantity": "loss", "dtype": "float32", "device": "cpu",
            "case": "sparse-random", "file": str(ROOT / "cases/sparse.yaml"), "max_abs_err": 1e-7,
            "tolerance": {"ulp": 4, "abs": 0.0, "rel": 4.8e-7}, "reason": None, "message": "",
            "expected": {"shape": [2], "values": [1.0, 2.0]}, "actual": {"shape": [2], "values": [1.0, 2.0]}}
    out = []
    for framework, outcome, ulp in (("torch", "passed", 0.5), ("jax", "failed", 900.0), ("numpy", "passed", 1.0),
                                    ("tensorflow", "xfailed", 12.0), ("keras-jax", "skipped", None)):
        out.append({**base, "id": f"sparse-random::loss::{framework}::float32::cpu", "framework": framework,
                    "outcome": outcome, "max_ulp_err": ulp,
                    "manifest": "optax-lse-rounded-before-subtracting" if outcome == "xfailed" else None,
                    "reason": "no-device" if outcome == "skipped" else ("manifest" if outcome == "xfailed" else None),
                    "message": "jax sparse_softmax_cross_entropy loss float32 on cpu: 1/2 elements outside tolerance"
                    if outcome == "failed" else ""})
    return out


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        if os.environ.get("XENT_REQUIRE_BROWSER") == "1":
            pytest.fail("XENT_REQUIRE_BROWSER=1 but chromium and chromedriver are not on PATH", pytrace=False)
        pytest.skip("[not-installed] chromium and chromium-driver (Debian packages) are not on PATH")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _document(kind):
    """small: a run's worth, the first screen of the docs; variety: the full matrix's variety, every
    framework, quantity, outcome and value form ("inf", "nan", null) in every numeric field."""
    if kind == "small":
        return results.environment({}), _records()
    document = variety_document(0, odd=True)
    return document["environment"], document["results"]


@pytest.fixture(scope="module", params=["small", "variety"])
def page(request, tmp_path_factory, browser):
    folder = tmp_path_factory.mktemp(f"report-{request.param}")
    path = folder / "report.html"
    env, records = _document(request.param)
    path.write_text(render.render(env, records, "html", output=path), encoding="utf-8")
    browser.get_log("browser")  # drop the previous page's console: each page is judged on its own
    browser.get(path.as_uri())
    return browser


def test_every_picture_loads(page):
    pictures = page.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
    assert len(pictures) >= 3, pictures
    assert all(loaded for _, loaded in pictures), [alt for alt, loaded in pictures if not loaded]


def test_the_console_stays_clean(page):
    problems = [entry for entry in page.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not problems, problems


def test_every_link_inside_the_page_lands(page):
    targets = page.execute_script(
        "return Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(a => a.getAttribute('href'))")
    assert targets, "the report has a navigation"
    missing = [t for t in targets if not page.execute_script(f"return document.getElementById({t[1:]!r}) !== null")]
    assert not missing, missing


def test_the_first_screen(page, tmp_path, request):
    shot = tmp_path / "first-screen.png"
    assert page.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    if os.environ.get("XENT_SAVE_SCREENSHOT") == "1" and request.node.callspec.params["page"] == "small":
        shutil.copyfile(shot, ROOT / "docs" / "report-first-screen.png")
