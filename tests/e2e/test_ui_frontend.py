"""The front end in the real webui v1.10.1 started with its UI, driven in headless Chromium (Debian
`chromium` through Playwright; never a downloaded browser): the accordion's controls, the live summary and
plan picture (from the summary route), the warning next to Generate, paste parameters, the video player
after a generation and the "Copy API payload" JSON POSTed back. A screenshot of each state goes to the
test's tmp path. One 64x64, 2-step, 8-frame generation: tens of seconds on a CPU.
"""
import json
import os
import shutil
import subprocess

import pytest

from e2e import harness

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
V2 = "mm_sd_v15_v2.safetensors"
TAB = "txt2img"
WAIT_MS = 60_000
GENERATION_MS = 600_000


def sid(name: str) -> str:
    return f"#script_{TAB}_animlong_{name}"


@pytest.fixture
def page(webui_ui, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is missing: apt-get install -y chromium (tools/bootstrap.sh --tests does it)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 1600})
        try:
            page = context.new_page()
            page.goto(webui_ui.server.url, wait_until="domcontentloaded", timeout=WAIT_MS * 3)
            page.wait_for_selector(sid("accordion"), state="attached", timeout=WAIT_MS * 3)
            page.wait_for_selector(f"#animlong_summary_text_{TAB}", state="attached", timeout=WAIT_MS)
            yield page
        finally:
            context.close()


def open_accordion(page):
    accordion = page.locator(sid("accordion"))
    if not page.locator(sid("enable")).is_visible():
        accordion.locator(".label-wrap").first.click()
    page.locator(sid("enable")).wait_for(state="visible", timeout=WAIT_MS)


def set_number(page, selector, value):
    field = page.locator(f"{selector} input[type=number]").first
    field.fill(str(value))
    field.press("Tab")


def choose(page, selector, value):
    field = page.locator(f"{selector} input").first
    field.click()
    field.fill(value)
    page.locator(f"{selector} ul li", has_text=value).first.click()


def summary_text(page):
    return page.locator(f"#animlong_summary_text_{TAB}").inner_text()


def wait_summary(page, needle):
    page.wait_for_function("([id, needle]) => gradioApp().querySelector('#' + id)?.textContent.includes(needle)",
                           arg=[f"animlong_summary_text_{TAB}", needle], timeout=WAIT_MS)


def test_controls_summary_warning_and_paste(webui_ui, page, tmp_path):
    open_accordion(page)
    for name in ("enable", "motion_module", "refresh", "formats", "frames", "fps", "context_length", "schedule",
                 "motion_loras", "motion_lora_pick", "copy_payload", "advanced"):
        assert page.locator(sid(name)).count() == 1, f"{name} has no element with its elem_id"
    # every visible setting carries its help text (gradio shows `info` under the label)
    assert "positional table" in page.locator(sid("context_length")).inner_text()
    choose(page, sid("motion_module"), V2)
    set_number(page, sid("frames"), 16)
    wait_summary(page, "16 frames at 8 fps = 2 s")
    assert "positional table 32" in summary_text(page)
    picture = page.locator(f"#animlong_plan_{TAB}")
    assert picture.get_attribute("src").startswith("data:image/png;base64,")
    page.screenshot(path=str(tmp_path / "summary-16.png"), full_page=True)
    set_number(page, sid("frames"), 48)
    wait_summary(page, "48 frames at 8 fps = 6 s")
    page.locator(sid("accordion")).screenshot(path=str(tmp_path / "summary-48.png"))
    # keyboard: the step slider of the picture takes focus and redraws another step
    page.locator(f"#animlong_step_{TAB}").focus()
    page.keyboard.press("Home")
    wait_summary(page, "step 1/")
    # a choice the generation would refuse: the warning shows next to Generate once Enable is ticked
    page.locator(f"{sid('enable')} input").check()
    set_number(page, sid("context_length"), 40)
    warning = page.locator(f"#animlong_warning_{TAB}")
    warning.wait_for(state="visible", timeout=WAIT_MS)
    assert "context_length" in warning.inner_text() and "32" in warning.inner_text()
    page.screenshot(path=str(tmp_path / "refused.png"), full_page=True)
    set_number(page, sid("context_length"), 16)
    warning.wait_for(state="hidden", timeout=WAIT_MS)
    # paste parameters restores the accordion from an infotext
    page.locator(f"{sid('enable')} input").uncheck()
    infotext = (f"{harness.PROMPT}\nNegative prompt: {harness.NEGATIVE}\nSteps: 2, Sampler: Euler, Seed: 5, "
                f"Size: 64x64, AnimLong: \"module={V2}; formats=GIF+MP4; frames=24; context_length=8; "
                f"closed_loop=true; motion_loras=v2_lora_ZoomIn.ckpt:0.5\"")
    page.locator(f"#{TAB}_prompt textarea").fill(infotext)
    page.locator("#paste").first.click()
    page.wait_for_function("() => { const r = gradioApp(); return r.querySelector('#script_txt2img_animlong_frames "
                           "input').value === '24'; }", timeout=WAIT_MS)
    assert page.locator(f"{sid('enable')} input").is_checked()
    assert page.locator(f"{sid('closed_loop')} input").is_checked()
    assert "v2_lora_ZoomIn.ckpt:0.5" in page.locator(f"{sid('motion_loras')} textarea, {sid('motion_loras')} "
                                                     "input").first.input_value()
    wait_summary(page, "24 frames at 8 fps = 3 s")
    page.screenshot(path=str(tmp_path / "pasted.png"), full_page=True)
    # the webui's ui-config.json holds the accordion's defaults (so users can change them there)
    with open(os.path.join(webui_ui.data_dir, "ui-config.json")) as f:
        config = json.load(f)
    assert any(key.endswith(f"/{TAB}/Frames/value") for key in config), "no ui-config.json default for Frames"


def test_generate_shows_the_player_and_the_payload_posts_back(webui_ui, page, tmp_path):
    set_number(page, f"#{TAB}_width", 64)
    set_number(page, f"#{TAB}_height", 64)
    set_number(page, f"#{TAB}_steps", 2)
    page.locator(f"#{TAB}_prompt textarea").fill(harness.PROMPT)
    open_accordion(page)
    page.locator(f"{sid('enable')} input").check()
    choose(page, sid("motion_module"), V2)
    for fmt in ("GIF", "MP4", "WEBP"):
        box = page.locator(sid("formats")).locator("label", has_text=fmt).locator("input")
        box.check()
    set_number(page, sid("frames"), 8)
    set_number(page, sid("context_length"), 8)
    wait_summary(page, "8 frames at 8 fps = 1 s")
    page.locator(f"#{TAB}_generate").click()
    video = page.locator(f"#animlong_player_{TAB} video")
    video.wait_for(state="attached", timeout=GENERATION_MS)
    page.wait_for_function("() => { const v = gradioApp().querySelector('#animlong_player_txt2img video'); "
                           "return v && v.readyState >= 2; }", timeout=WAIT_MS)
    page.screenshot(path=str(tmp_path / "player.png"), full_page=True)
    src = video.get_attribute("src")
    assert video.get_attribute("loop") is not None and video.get_attribute("controls") is not None
    served = page.request.get(webui_ui.server.url + "/" + src.lstrip("/"))
    assert served.ok, src
    decoded = harness.decode(served.body())
    assert decoded.format == "MP4" and decoded.frames == 8
    links = page.locator(f"#animlong_player_{TAB} a.animlong-download")
    names = [links.nth(i).get_attribute("download") for i in range(links.count())]
    assert sorted(os.path.splitext(n)[1] for n in names) == [".gif", ".mp4", ".webp"]
    # the gallery's own buttons are still there and still work on the frames
    for button in (f"#{TAB}_send_to_img2img", f"#save_{TAB}"):
        assert page.locator(button).is_visible()
    # Copy API payload: the JSON of these settings, POSTed back, returns a video of 8 frames
    page.locator(sid("copy_payload")).click()
    payload_box = page.locator(f"#animlong_payload_{TAB}")
    payload_box.wait_for(state="visible", timeout=WAIT_MS)
    body = json.loads(payload_box.input_value())
    assert body["alwayson_scripts"]["AnimLong"]["args"][0]["frames"] == 8
    assert body["width"] == 64 and body["steps"] == 2 and body["prompt"] == harness.PROMPT
    page.locator(sid("accordion")).screenshot(path=str(tmp_path / "payload.png"))
    response = webui_ui.client.post(f"/sdapi/v1/{TAB}", body)
    assert response.status == 200, response.error
    returned = [harness.decode(data) for data in response.images]
    assert [d.format for d in returned[:3]] == ["GIF", "MP4", "WEBP"]
    assert all(d.frames == 8 for d in returned[:3])
    assert response.info["extra_generation_params"]["AnimLong videos"][0]["MP4"]["name"].endswith(".mp4")
