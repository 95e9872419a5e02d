"""The accordion built with the real gradio 3.41.2, served on 127.0.0.1 and used in a real headless Chromium
(Debian `chromium`, driven by Playwright; never a downloaded browser): enable, change a slider, and the
values the browser sends back parse into the request the hooks receive. A screenshot is kept."""
import json
import os
import shutil
import socket

import pytest

from webui_stub.harness import ROOT, webui  # noqa: F401  (webui: fixture)
from lib_animlong.options import AnimationOptions  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def browser_page(tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("chromium is missing in CI; tools/bootstrap.sh installs it (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install -y chromium, or run tools/bootstrap.sh)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1000, "height": 1400})
        try:
            yield context.new_page()
        finally:
            context.close()


def build_demo(webui, is_img2img):
    import gradio as gr
    from lib_animlong.webui.request import parse_args
    script = webui.script(is_img2img)
    with gr.Blocks(css=open(os.path.join(ROOT, "style.css")).read()) as demo:
        controls = script.ui(is_img2img)
        read = gr.Button("Read back", elem_id="read_back")
        shown = gr.Textbox(elem_id="values")

        def values(*args):
            request = parse_args(list(args), is_img2img)
            return json.dumps(dict(enable=request.enable, module=request.motion_module, formats=list(request.formats),
                                   **request.options.to_dict()))
        read.click(values, inputs=controls, outputs=[shown])
    return script, controls, demo


def test_controls_are_built_from_the_options_with_elem_ids_and_infotext_fields(webui):
    from lib_animlong.webui.request import control_names
    webui.add_motion_file()
    for is_img2img in (False, True):
        script, controls, _ = build_demo(webui, is_img2img)
        names = control_names(is_img2img)
        assert len(controls) == len(names)
        assert controls[0].label == "Enable long animation"
        assert all(c.elem_id and c.elem_id.startswith(f"script_{'img2img' if is_img2img else 'txt2img'}_animlong_")
                   for c in controls)
        by_name = dict(zip(names, controls))
        assert by_name["context_length"].minimum == 2 and by_name["context_length"].value == 16
        assert "anchored-shift" in str(by_name["schedule"].choices)
        assert by_name["motion_module"].value == "tiny-v2.safetensors"
        assert ("first_frame_strength" in by_name) == is_img2img
        pasted = {"AnimLong": "module=tiny-v2.safetensors; formats=MP4; frames=40; closed_loop=true"}
        restored = {c.elem_id.rsplit("animlong_", 1)[1]: read(pasted) for c, read in script.infotext_fields}
        assert restored["enable"] is True and restored["frames"] == 40 and restored["closed_loop"] is True
        assert restored["formats"] == ["MP4"]
        assert {c.elem_id.rsplit("animlong_", 1)[1]: read({}) for c, read in script.infotext_fields}["enable"] is False


def test_ui_is_deterministic_across_the_three_calls_per_tab_of_api_mode(webui):
    webui.add_motion_file()
    described = []
    for _ in range(3):
        _, controls, _ = build_demo(webui, True)
        described.append([(type(c).__name__, c.elem_id, c.label, repr(c.value)) for c in controls])
    assert described[0] == described[1] == described[2]


def test_the_accordion_works_in_a_real_browser(webui, browser_page, tmp_path):
    webui.add_motion_file()
    script, controls, demo = build_demo(webui, False)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        page = browser_page
        page.goto(f"http://127.0.0.1:{port}/", wait_until="networkidle")
        page.get_by_text("Long animation (AnimateDiff)").first.click()
        page.locator(f"#{script.elem_id('enable')} input[type=checkbox]").check()
        slider = page.locator(f"#{script.elem_id('context_length')} input[type=number]")
        slider.fill("24")
        slider.press("Enter")
        page.locator("#read_back").click()
        page.wait_for_function("document.querySelector('#values textarea').value.length > 0")
        values = json.loads(page.locator("#values textarea").input_value())
        shot = tmp_path / "accordion.png"
        page.screenshot(path=str(shot), full_page=True)
        if os.path.isdir("/tmp/animlong"):
            shutil.copy(shot, "/tmp/animlong/ui.png")
    finally:
        demo.close()
    assert values["enable"] is True and values["context_length"] == 24
    assert values["module"] == "tiny-v2.safetensors" and values["formats"] == ["GIF", "MP4"]
    assert values["frames"] == 64 and values["schedule"] == AnimationOptions().schedule
    assert shot.stat().st_size > 10_000
