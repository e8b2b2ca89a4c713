"""The page at `/` in headless Chromium (selenium): type, click, and read the answer off the page,
which must be seqtasks.predict's line, for translation (with its attention heatmap and n-best
list) and a language model (its sample streamed into the page). The servers and models are
tests/test_serve.py's. Skipped where Chromium or its driver is missing; CI installs both
(apt-get install chromium chromium-driver).

Each page is saved as serve_<task>.png (small, palette PNG) in $SEQTASKS_SCREENSHOTS, by default
the test's temporary directory:

    SEQTASKS_SCREENSHOTS=docs/images python -m pytest tests/test_serve_browser.py
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from PIL import Image
from test_serve import checkpoint, predict_line, server

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# No network but 127.0.0.1, no first-run or sync machinery, a profile of its own.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=960,820",
]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason=f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium: pip install -e '.[test]'")
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    # A driver path of our own: selenium then never looks for (or downloads) one.
    driver = webdriver.Chrome(service=webdriver.ChromeService(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    directory = os.environ.get("SEQTASKS_SCREENSHOTS")
    return Path(directory) if directory else tmp_path_factory.mktemp("screenshots")


def open_page(browser, url: str) -> None:
    browser.get(f"{url}/")
    wait_for(browser, "ready")


def wait_for(browser, *states: str) -> str:
    """The page's state (body[data-state]) once it is one of states: loading, ready, busy, done, error."""
    WebDriverWait(browser, 120).until(
        lambda b: b.find_element(By.TAG_NAME, "body").get_attribute("data-state") in states
    )
    return browser.find_element(By.TAG_NAME, "body").get_attribute("data-state")


def fill(browser, element_id: str, value: str) -> None:
    element = browser.find_element(By.ID, element_id)
    element.clear()
    element.send_keys(value)


def run(browser) -> str:
    browser.find_element(By.ID, "run").click()
    return wait_for(browser, "done", "error")


def text(browser, element_id: str) -> str:
    return browser.find_element(By.ID, element_id).get_property("textContent")


def save(browser, path: Path) -> None:
    """The window as a palette PNG: a few dozen KB, small enough for the docs."""
    image = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    image.quantize(colors=64).save(path, optimize=True)


def test_translation_page_translates_and_draws_the_attention(browser, screenshots):
    ckpt, served = checkpoint("translation"), server("translation")
    open_page(browser, served.url)
    assert browser.title == "seqtasks: translation"
    fill(browser, "input", "c a b")
    assert run(browser) == "done"
    assert text(browser, "output") == predict_line(ckpt, "c a b")
    _, answer = served.post("/predict", {"input": "c a b"})
    rows = browser.find_elements(By.CSS_SELECTOR, "#attention tbody tr")
    shown = [row.find_element(By.TAG_NAME, "th").get_property("textContent") for row in rows]
    assert shown == ["␣" if piece == " " else piece for piece in answer["attention"]["target"]]  # a space shown as ␣
    assert len(rows[0].find_elements(By.TAG_NAME, "td")) == len(answer["attention"]["source"])
    assert browser.find_elements(By.ID, "metrics")  # the run's test metrics, from metrics.json
    save(browser, screenshots / "serve_translation.png")

    fill(browser, "beam_size", "3")
    fill(browser, "n_best", "2")
    assert run(browser) == "done"
    _, answer = served.post("/predict", {"input": "c a b", "beam_size": 3, "n_best": 2})
    shown = browser.execute_script("return [...document.querySelectorAll('#n-best li')].map(li => li.firstChild.data)")
    assert shown == [hypothesis["text"] for hypothesis in answer["n_best"]]

    fill(browser, "n_best", "4")  # more than the beam holds: the server's reason is shown
    assert run(browser) == "error"
    assert "n_best=4 is more than the beam holds" in text(browser, "error")


def test_language_model_page_streams_the_sample(browser, screenshots):
    ckpt, served = checkpoint("language_model"), server("language_model")
    open_page(browser, served.url)
    fill(browser, "input", "First")
    fill(browser, "length", "60")
    fill(browser, "seed", "3")
    # Count the page's changes to the result: one per streamed message, not one at the end.
    browser.execute_script(
        "window.updates = 0; new MutationObserver((records) => { window.updates += records.length; })"
        ".observe(document.getElementById('result'), {childList: true, subtree: true, characterData: true});"
    )
    assert run(browser) == "done"
    assert text(browser, "output") == predict_line(ckpt, "First", "length=60", "seed=3")
    assert browser.execute_script("return window.updates") > 60
    save(browser, screenshots / "serve_language_model.png")

    fill(browser, "num_samples", "2")  # two samples side by side, ranked at the end as predict ranks them
    assert run(browser) == "done"
    _, answer = served.post("/predict", {"input": "First", "length": 60, "seed": 3, "num_samples": 2})
    boxes = browser.find_elements(By.CSS_SELECTOR, "#result pre.sample")
    assert [box.get_property("textContent") for box in boxes] == answer["samples"]
