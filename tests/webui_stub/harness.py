"""The `webui` fixture: this stand-in on sys.path for one test, a tiny real ldm UNet as shared.sd_model,
the AnimLong script loaded from scripts/animlong.py like the webui loads it, and helpers that run a
generation through modules.processing.process_images (the webui's hook order)."""
import importlib.util
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _forget_stub_modules():
    for name in list(sys.modules):
        if name == "modules" or name.startswith("modules.") or name in ("launch", "animlong_script"):
            del sys.modules[name]


def load_script_module():
    spec = importlib.util.spec_from_file_location("animlong_script", os.path.join(ROOT, "scripts", "animlong.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["animlong_script"] = module
    spec.loader.exec_module(module)
    return module


class Webui:
    def __init__(self, tmp_path):
        from unets import tiny_sd15_unet
        from stub_model import TinySdModel
        from modules import errors, processing, script_callbacks, scripts, shared
        self.processing, self.shared, self.errors, self.callbacks = processing, shared, errors, script_callbacks
        self.scripts_module = scripts
        self.unet = tiny_sd15_unet()
        self.sd_model = TinySdModel(self.unet)
        shared.sd_model = self.sd_model
        self.tmp = tmp_path
        self.motion_dir = tmp_path / "motion"
        self.motion_dir.mkdir()
        self.outdir = tmp_path / "outputs"
        shared.opts.data["animlong_motion_folder"] = str(self.motion_dir)
        self.script_module = load_script_module()
        # the checkout's own motion_modules/ may hold a developer's files: tests see only their own folder
        self.script_module.EXTENSION_ROOT = str(tmp_path / "extension")

    def add_motion_file(self, name="tiny-v2.safetensors", version="v2", width=32, seed=1, sdxl=False):
        """A motion-module file with the real key names and random weights, for the tiny UNet's widths."""
        from lib_animlong.motion import synthetic
        spec = synthetic.sdxl_spec(width) if sdxl else synthetic.sd15_spec(version, width)
        synthetic.save(synthetic.random_state_dict(spec, seed), str(self.motion_dir / name))
        return name

    def script(self, is_img2img=False):
        script = self.script_module.AnimLongScript()
        script.is_img2img, script.is_txt2img = is_img2img, not is_img2img
        script.filename = "scripts/animlong.py"
        return script

    def _p(self, cls, args, is_img2img, fields):
        script = self.script(is_img2img) if args is not None else None
        runner = self.scripts_module.ScriptRunner([script] if script else [], is_img2img)
        if script:
            script.args_from, script.args_to = 1, 1 + len(args)
        defaults = dict(prompt="a red ball", negative_prompt="", seed=3, steps=4, cfg_scale=5.0, width=64, height=64,
                        outpath_samples=str(self.outdir / ("img2img-images" if is_img2img else "txt2img-images")),
                        do_not_save_samples=False, script_args=(None,) + tuple(args or ()), scripts=runner)
        defaults.update(fields)
        is_api = defaults.pop("is_api", False)
        p = cls(**defaults)
        p.is_api = is_api
        return p

    def txt2img(self, args=None, **fields):
        p = self._p(self.processing.StableDiffusionProcessingTxt2Img, args, False, fields)
        return p, self.processing.process_images(p)

    def img2img(self, args=None, **fields):
        p = self._p(self.processing.StableDiffusionProcessingImg2Img, args, True, fields)
        return p, self.processing.process_images(p)

    def snapshot(self):
        """Everything a generation must leave as it was: module tree, weights, schedule, patched functions."""
        model = self.sd_model
        return dict(
            tree=repr(model), names=[n for n, _ in model.named_modules()],
            weights={k: v.clone() for k, v in model.state_dict().items()},
            schedule=model.alphas_cumprod.clone(),
            instance_dicts=[(n, sorted(k for k in vars(m) if not k.startswith("_"))) for n, m in model.named_modules()],
            forwards=[(n, m.__dict__.get("forward")) for n, m in model.named_modules()],
            hooks=[(n, len(m._forward_hooks), len(m._forward_pre_hooks)) for n, m in model.named_modules()])

    def assert_unchanged(self, before):
        after = self.snapshot()
        for key in ("tree", "names", "instance_dicts", "forwards", "hooks"):
            assert after[key] == before[key], key
        assert torch.equal(after["schedule"], before["schedule"])
        assert after["weights"].keys() == before["weights"].keys()
        for k, v in before["weights"].items():
            assert torch.equal(after["weights"][k], v), k


def pixels(images):
    return [np.asarray(image) for image in images if isinstance(image, Image.Image)]

def frames_of(processed):
    return pixels(processed.images[processed.index_of_first_image:])

def off_generation(webui):
    """The extension installed but off: what every later generation must still give."""
    return pixels(webui.txt2img(None, batch_size=2)[1].images)

def gif_frames(path):
    with Image.open(path) as gif:
        return gif.n_frames, gif.size

def interrupt_at(webui, step, attribute):
    def stop(params):
        if params.sampling_step >= step:
            setattr(webui.shared.state, attribute, True)
    webui.callbacks.on_cfg_denoiser(stop)


@pytest.fixture
def webui(tmp_path):
    _forget_stub_modules()
    sys.path.insert(0, HERE)
    try:
        yield Webui(tmp_path)
    finally:
        sys.path.remove(HERE)
        _forget_stub_modules()
