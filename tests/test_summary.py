"""The engine's summary of a choice of options, the plan picture and `python -m lib_animlong plan`."""
import io
import json

import pytest
from PIL import Image

from lib_animlong.__main__ import main
from lib_animlong.context.plan import plan
from lib_animlong.options import AnimationOptions
from lib_animlong.summary import (OWN, REFERENCE, ModuleInfo, plan_png, plan_text, summarise, summarise_dict,
                                  window_role)

V1 = ModuleInfo(name="mm_v1.ckpt", family="SD1.5", version="v1", pe_length=24)
V2 = ModuleInfo(name="mm_v2.ckpt", family="SD1.5", version="v2", pe_length=32)


def test_duration_and_windows_follow_the_plan():
    options = AnimationOptions(frames=40, fps=8, context_length=8)
    s = summarise(options, total_steps=6)
    assert s.refused is None
    assert s.duration_s == pytest.approx(5.0)
    assert s.windows_per_step == [len(plan(k, 6, 40, options)) for k in range(6)]
    last = plan(5, 6, 40, options)
    assert [w["frames"] for w in s.step_windows] == [list(w.frames) for w in last]
    assert [w["sees"] for w in s.step_windows] == [len(w.frames) + len(w.references) for w in last]
    covered = {f for w in s.step_windows if w["role"] == "output" for f in w["frames"]}
    assert covered == set(range(40))


def test_summary_changes_with_frames():
    short = summarise(AnimationOptions(frames=16, context_length=8), 4)
    long = summarise(AnimationOptions(frames=64, context_length=8), 4)
    assert long.duration_s == 4 * short.duration_s
    assert max(long.windows_per_step) > max(short.windows_per_step)


def test_references_fit_a_v1_table():
    s = summarise(AnimationOptions(frames=48, references="previous+anchors"), 20, module=V1)
    assert s.refused is None
    assert "reference_budget" in s.fitted and s.fitted["reference_budget"][1] <= 24 - 16
    assert "v1" in s.fitting and "24" in s.fitting
    assert s.sees_max <= 24


def test_a_v2_module_with_default_options_is_not_changed():
    s = summarise(AnimationOptions(frames=48), 20, module=V2)
    assert s.refused is None and s.fitted == {}


def test_a_too_long_context_is_refused_naming_the_context_length():
    s = summarise(AnimationOptions(frames=64, context_length=40), 20, module=V2)
    assert s.refused is not None and "context_length" in s.refused and "32" in s.refused
    assert s.step_windows == []
    assert "REFUSED" in plan_text(s)


def test_bad_user_values_come_back_as_refused():
    assert "context_length" in summarise_dict({"frames": 16, "context_length": 1}, 10)["refused"]
    assert "frames" in summarise_dict({"frames": "many"}, 10)["refused"]
    assert summarise_dict({"frames": 16}, 10)["refused"] is None


def test_reference_only_windows_are_named():
    options = AnimationOptions(frames=48)
    roles = {window_role(w) for k in range(20) for w in plan(k, 20, 48, options)}
    assert roles <= {"output", "reference-only"} and "output" in roles


def test_plan_text_has_one_row_per_window():
    s = summarise(AnimationOptions(frames=32, context_length=8), 5, step=2)
    rows = [line for line in plan_text(s).splitlines() if "|" in line]
    assert len(rows) == len(s.step_windows)
    first = s.step_windows[0]
    assert rows[0].count("#") + rows[0].count("+") == len(first["frames"])


def test_plan_png_marks_own_frames_and_references():
    s = summarise(AnimationOptions(frames=32, context_length=8), 5, step=4)
    image = Image.open(io.BytesIO(plan_png(s))).convert("RGB")
    n, rows = 32, len(s.step_windows)
    cell, row = image.width // n, image.height // rows
    for i, w in enumerate(s.step_windows):
        y = i * row + row // 2
        if w["role"] == "output":
            assert image.getpixel((w["frames"][0] * cell + cell // 2 - 1, y)) == OWN
        for f in set(w["references"]) - set(w["frames"]):
            assert image.getpixel((f * cell + cell // 2 - 1, y)) == REFERENCE
        untouched = set(range(n)) - set(w["frames"]) - set(w["references"])
        for f in untouched:
            assert image.getpixel((f * cell + cell // 2 - 1, y)) not in (OWN, REFERENCE)


def test_plan_png_of_a_long_video_stays_small():
    s = summarise(AnimationOptions(frames=2048), 4, step=3)
    image = Image.open(io.BytesIO(plan_png(s)))
    assert image.width <= 960 and image.height <= 540


def test_cli_plan_text_png_and_refusal(tmp_path, capsys):
    png = tmp_path / "plan.png"
    assert main(["plan", "--frames", "24", "--steps", "4", "--context-length", "8", "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "24 frames at 8 fps = 3 s" in out
    assert Image.open(png).format == "PNG"
    assert main(["plan", "--frames", "24", "--steps", "4", "--png", str(png)]) == 2   # never overwritten
    assert "already exists" in capsys.readouterr().err
    assert main(["plan", "--frames", "64", "--context-length", "40", "--table", "32"]) == 2
    assert "context_length" in capsys.readouterr().out


def test_cli_plan_json(capsys):
    assert main(["plan", "--frames", "30", "--fps", "10", "--steps", "3", "--step", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["duration_s"] == 3.0 and data["step"] == 0 and len(data["windows_per_step"]) == 3


@pytest.mark.parametrize("version, table", [("v1", 24), ("v2", 32)])
def test_the_module_header_gives_the_same_answer_as_inspect(tmp_path, version, table):
    from lib_animlong.cli.inspect import describe
    from lib_animlong.cli.plan import module_info
    from lib_animlong.motion import synthetic
    path = str(tmp_path / f"mm_{version}.safetensors")
    synthetic.save(synthetic.random_state_dict(synthetic.sd15_spec(version, 32)), path)
    info, full = module_info(path), describe(path)
    assert (info.family, info.version, info.pe_length) == (full["family"], full["version"], full["pe_length"]) \
        == ("SD1.5", version, table)


def test_a_broken_module_file_is_refused_by_the_header_reader(tmp_path):
    from lib_animlong.cli.plan import module_info
    from lib_animlong.errors import AnimLongError
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(AnimLongError, match="corrupt"):
        module_info(path)
