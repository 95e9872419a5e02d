"""The accordion in the real webui's own page, in a real headless Chromium (the Debian `chromium` package,
driven by Playwright; Playwright never downloads a browser here). Screenshots go to the test's tmp path;
what they show is checked by assertions on the page."""
import os
import shutil

import pytest

from e2e.harness import V2, assert_video, decode
from lib_animlong.options import option_fields
from lib_animlong.webui.request import HEADLESS_ONLY, IMG2IMG_ONLY, TXT2IMG_ONLY

CHROMIUM = os.environ.get("ANIMLONG_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 180_000
GENERATE_TIMEOUT_MS = 900_000


@pytest.fixture
def page(webui_ui, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `bash tools/bootstrap.sh --tests` (apt-get install chromium)",
                    pytrace=False)
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1600})
        context.set_default_timeout(TIMEOUT_MS)
        try:
            page = context.new_page()
            page.goto(webui_ui.server.url + "/", wait_until="domcontentloaded")
            page.locator("#txt2img_prompt textarea").wait_for(state="visible")
            yield page
        finally:
            context.close()


def sid(tab, name):
    return f"#script_{tab}_animlong_{name}"


def open_accordion(page, tab):
    accordion = page.locator(sid(tab, "accordion"))
    accordion.wait_for(state="visible")
    accordion.locator(".label-wrap").first.click()
    page.locator(sid(tab, "enable")).wait_for(state="visible")
    return accordion


def set_number(page, selector, value):
    box = page.locator(f"{selector} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def choose(page, selector, value):
    box = page.locator(f"{selector} input").first
    box.click()
    box.fill(value)
    page.locator(f"{selector} ul.options li", has_text=value).first.click()


@pytest.mark.parametrize("tab", ["txt2img", "img2img"])
def test_the_accordion_shows_every_control_with_its_label_and_help(page, tab, tmp_path):
    if tab == "img2img":
        page.locator("#tabs button", has_text="img2img").first.click()
    accordion = open_accordion(page, tab)
    accordion.locator(sid(tab, "advanced")).locator(".label-wrap").first.click()
    text = accordion.inner_text()
    for label in ("Long animation (AnimateDiff)", "Enable long animation", "Motion module", "Output formats"):
        assert label in text
    other_tab_only = TXT2IMG_ONLY if tab == "img2img" else IMG2IMG_ONLY
    for f in option_fields():
        if f.name in HEADLESS_ONLY or f.name in other_tab_only:
            assert f.metadata["label"] not in text
            continue
        assert f.metadata["label"] in text, f.name
        assert f.metadata["help"] in text, f.name
    assert ("Last frame (optional)" in text) == (tab == "img2img")
    assert page.locator(f"{sid(tab, 'motion_module')} input").first.input_value() != ""
    shot = tmp_path / f"{tab}-accordion.png"
    accordion.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000


def test_enable_and_generate_from_the_page_then_paste_parameters(page, webui_ui, tmp_path):
    tab = "txt2img"
    page.locator("#txt2img_prompt textarea").fill("a red ball")
    set_number(page, "#txt2img_width", 64)
    set_number(page, "#txt2img_height", 64)
    set_number(page, "#txt2img_steps", 1)
    open_accordion(page, tab)
    page.locator(f"{sid(tab, 'enable')} input[type=checkbox]").check()
    choose(page, sid(tab, "motion_module"), V2)
    set_number(page, sid(tab, "frames"), 8)
    set_number(page, sid(tab, "context_length"), 4)
    page.locator("#txt2img_generate").click()
    shown = page.locator("#txt2img_gallery img[src*='.gif']").first
    shown.wait_for(state="visible", timeout=GENERATE_TIMEOUT_MS)
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=shown.element_handle())
    assert shown.evaluate("img => [img.naturalWidth, img.naturalHeight]") == [64, 64]
    gif = page.request.get(shown.evaluate("img => img.src")).body()   # the absolute URL
    assert_video(gif, "GIF", 8)
    page.screenshot(path=str(tmp_path / "generated.png"), full_page=True)
    assert (tmp_path / "generated.png").stat().st_size > 10_000
    parameters = decode(gif).comment
    assert "AnimLong: " in parameters

    # a fresh page: the accordion at its defaults; the parameters pasted into the prompt box restore it
    page.reload(wait_until="domcontentloaded")
    page.locator("#txt2img_prompt textarea").wait_for(state="visible")
    open_accordion(page, tab)
    enable = page.locator(f"{sid(tab, 'enable')} input[type=checkbox]")
    assert not enable.is_checked()
    page.locator("#txt2img_prompt textarea").fill(parameters)
    page.locator("#tab_txt2img #paste").click()
    page.wait_for_function("() => document.querySelector('#script_txt2img_animlong_enable input').checked")
    assert page.locator(f"{sid(tab, 'frames')} input[type=number]").first.input_value() == "8"
    assert page.locator(f"{sid(tab, 'context_length')} input[type=number]").first.input_value() == "4"
    assert page.locator(f"{sid(tab, 'motion_module')} input").first.input_value() == V2
    assert page.locator("#txt2img_prompt textarea").input_value() == "a red ball"
    page.screenshot(path=str(tmp_path / "pasted.png"), full_page=True)
    webui_ui.assert_restored()
