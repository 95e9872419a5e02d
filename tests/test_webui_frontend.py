"""The adapter side of the front end: the summary route (FastAPI TestClient), MotionLoRAs through the
script, the video settings, and the video links the page's player reads."""
import json

import pytest
import torch
from PIL import Image

from lib_animlong.errors import AnimLongError
from lib_animlong.motion import synthetic
from lib_animlong.webui import motion_loras, routes
from lib_animlong.webui.request import infotext_value, parse_args, parse_infotext_value
from webui_stub.harness import gif_frames, webui  # noqa: F401  (webui: fixture)

ANIMATION = dict(enable=True, motion_module="tiny-v2.safetensors", formats=["GIF"], frames=6, context_length=4,
                 fps=4)


@pytest.fixture
def client(tmp_path):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    folder = tmp_path / "motion"
    folder.mkdir()
    synthetic.save(synthetic.random_state_dict(synthetic.sd15_spec("v1", 32)), str(folder / "tiny-v1.safetensors"))
    synthetic.save(synthetic.random_state_dict(synthetic.sd15_spec("v2", 32)), str(folder / "tiny-v2.safetensors"))
    app = FastAPI()
    routes.register(app, lambda: [str(folder)], lambda: ["GIF", "MP4"])
    return TestClient(app)


def post(client, args, **body):
    response = client.post(routes.ROUTE, json=dict(body, args=args))
    assert response.status_code == 200, response.text
    return response.json()


def test_the_route_answers_the_engine_summary_and_picture(client):
    answer = post(client, {"frames": 48, "fps": 12, "context_length": 16}, steps=10)
    assert answer["refused"] is None
    assert answer["summary"]["duration_s"] == 4.0 and len(answer["summary"]["windows_per_step"]) == 10
    assert answer["picture"].startswith("data:image/png;base64,")
    assert "48 frames at 12 fps = 4 s" in answer["text"]
    assert answer["script_args"]["frames"] == 48 and answer["script_args"]["fps"] == 12
    assert "schedule" not in answer["script_args"]          # defaults are left out of the payload


def test_the_summary_changes_when_frames_change(client):
    short, long = (post(client, {"frames": n, "context_length": 8}, steps=4)["summary"] for n in (16, 128))
    assert short["duration_s"] != long["duration_s"]
    assert max(long["windows_per_step"]) > max(short["windows_per_step"])


def test_the_route_fits_to_the_chosen_module_and_warns_before_a_refusal(client):
    v1 = post(client, {"frames": 48, "references": "previous+anchors", "motion_module": "tiny-v1.safetensors"},
              steps=6)
    assert v1["refused"] is None and v1["summary"]["module"]["pe_length"] == 24
    assert v1["summary"]["sees_max"] <= 24 and "reference_budget" in v1["summary"]["fitted"]
    too_long = post(client, {"frames": 64, "context_length": 40, "motion_module": "tiny-v2.safetensors"}, steps=6)
    assert "context_length" in too_long["refused"] and "picture" not in too_long
    missing = post(client, {"frames": 8, "motion_module": "nope.ckpt"}, steps=2)
    assert "nope.ckpt" in missing["refused"]
    bad = post(client, {"frames": 8, "schedule": "zigzag"}, steps=2)
    assert "schedule" in bad["refused"] and bad["summary"] is None


def test_the_route_draws_the_requested_step_and_rejects_a_malformed_body(client):
    answer = post(client, {"frames": 32, "context_length": 8}, steps=5, step=2)
    assert answer["summary"]["step"] == 1
    assert client.post(routes.ROUTE, json={"args": [], "steps": 5}).status_code == 422
    assert client.post(routes.ROUTE, json={"args": {}, "steps": 0}).status_code == 422


def test_the_payload_args_parse_back_into_the_same_request(client):
    args = {"enable": True, "frames": 40, "schedule": "overlap", "closed_loop": True, "formats": ["MP4"],
            "motion_loras": "a.safetensors:0.5, b.ckpt"}
    script = post(client, args, steps=4)["script_args"]
    assert parse_args([script], False) == parse_args([args], False)


def test_motion_loras_parse_in_every_form_and_refuse_bad_entries():
    expected = (("a.safetensors", 0.5), ("b.ckpt", 1.0))
    for value in ("a.safetensors:0.5, b.ckpt", ["a.safetensors:0.5", "b.ckpt:1"], [["a.safetensors", 0.5], ["b.ckpt", 1]],
                  [{"name": "a.safetensors", "strength": 0.5}, {"name": "b.ckpt"}], "a.safetensors:0.5+b.ckpt:1"):
        assert motion_loras.parse_motion_loras(value) == expected
    for bad in ([":0.5"], ["a.ckpt:9"], [3], {"a": 1}):
        with pytest.raises(AnimLongError, match="motion_loras"):
            motion_loras.parse_motion_loras(bad)


def test_motion_loras_round_trip_through_the_infotext():
    request = parse_args([dict(ANIMATION, motion_loras="zoom.ckpt:0.75, pan.safetensors")], False)
    text = infotext_value(request, False)
    assert "motion_loras=zoom.ckpt:0.75+pan.safetensors:1" in text
    assert parse_args([parse_infotext_value(text)], False).motion_loras == request.motion_loras


def test_the_lora_folder_offers_only_motion_loras(tmp_path):
    own, shared_folder = tmp_path / "motion_loras", tmp_path / "Lora"
    own.mkdir(), shared_folder.mkdir()
    spec = synthetic.sd15_spec("v2", 32)
    synthetic.save(synthetic.random_motion_lora(spec), str(own / "mine.safetensors"))
    synthetic.save(synthetic.random_motion_lora(spec), str(shared_folder / "zoom.safetensors"))
    synthetic.save({"lora_unet_down.alpha": torch.ones(1)}, str(shared_folder / "style.safetensors"))
    assert motion_loras.list_motion_loras([str(own), str(shared_folder)]) == ["mine.safetensors", "zoom.safetensors"]


def test_a_generation_with_a_motion_lora_uses_a_changed_copy_and_records_it(webui):
    webui.add_motion_file()
    spec = synthetic.sd15_spec("v2", 32)
    lora = synthetic.random_motion_lora(spec, seed=3)
    lora_dir = webui.tmp / "extension" / "motion_loras"
    lora_dir.mkdir(parents=True)
    synthetic.save(lora, str(lora_dir / "zoom.safetensors"))
    script = webui.script()
    cached = script._load_motion("tiny-v2.safetensors")
    before = {k: v.clone() for k, v in cached.state_dict().items()}
    merged = script._load_motion("tiny-v2.safetensors", (("zoom.safetensors", 0.5),))
    key = next(k for k in lora if "to_q_lora.up" in k)
    target = key.split(".processor.")[0] + ".to_q.weight"
    expected = before[target] + 0.5 * (lora[key] @ lora[key.replace(".up.", ".down.")])
    assert torch.allclose(merged.state_dict()[target], expected, atol=1e-6)
    assert all(torch.equal(v, before[k]) for k, v in cached.state_dict().items())   # the cache is untouched
    p, processed = webui.txt2img([dict(ANIMATION, motion_loras="zoom.safetensors:0.5")])
    assert "motion_loras=zoom.safetensors:0.5" in processed.infotexts[0]
    with pytest.raises(AnimLongError, match="missing.safetensors"):
        webui.txt2img([dict(ANIMATION, motion_loras="missing.safetensors")], is_api=True)


def test_video_settings_reach_the_files_and_the_player_links(webui):
    webui.add_motion_file()
    webui.shared.opts.data.update(animlong_loop=3, animlong_gif_dither="none")
    p, processed = webui.txt2img([dict(ANIMATION, formats=["GIF", "WEBP"])])
    gif = p.animlong_videos[0]["GIF"]
    with Image.open(gif) as image:
        assert image.info.get("loop") == 3
    links = p.extra_generation_params["AnimLong videos"]
    assert [sorted(v) for v in links] == [["GIF", "WEBP"]]
    assert links[0]["GIF"]["url"].startswith("file=") and links[0]["GIF"]["name"] in gif
    json.dumps(links)


def test_bad_video_settings_are_refused_naming_the_setting(webui):
    from lib_animlong.webui import settings
    webui.shared.opts.data.update(animlong_webp_quality=400)
    with pytest.raises(AnimLongError, match="WebP quality"):
        settings.video_settings(webui.shared.opts)


def test_every_control_has_an_elem_id_and_a_help_text_and_the_panel_names_them(webui):
    import gradio as gr
    from lib_animlong.webui.request import control_names
    webui.add_motion_file()
    for is_img2img in (False, True):
        with gr.Blocks() as demo:
            controls = webui.script(is_img2img).ui(is_img2img)
        tab = "img2img" if is_img2img else "txt2img"
        for name, control in zip(control_names(is_img2img), controls):
            assert control.elem_id == f"script_{tab}_animlong_{name}"
            if not isinstance(control, gr.Image):
                assert getattr(control, "info", None), f"{name} has no help text"
        panel = next(b for b in demo.blocks.values() if getattr(b, "elem_id", "") == f"script_{tab}_animlong_summary_html")
        assert f'id="animlong_summary_{tab}"' in panel.value
        assert "script_%s_animlong_frames" % tab in panel.value.replace("&quot;", '"')
        ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
        assert {f"script_{tab}_animlong_copy_payload", f"script_{tab}_animlong_motion_lora_pick"} <= ids
