"""The accordion built with the real gradio 3.41.2 from the script's ui(): fast checks of the controls and
their infotext fields. The accordion in a real browser, in the real webui's page, is tests/e2e/test_ui.py."""
import json
import os

from webui_stub.harness import ROOT, webui  # noqa: F401  (webui: fixture)
from lib_animlong.options import AnimationOptions  # noqa: E402


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

