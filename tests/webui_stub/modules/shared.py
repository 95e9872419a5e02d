"""opts / OptionInfo / state / cmd_opts / sd_model, as the webui's modules.shared exposes them."""
import types

import torch


class OptionInfo:
    def __init__(self, default=None, label="", component=None, component_args=None, onchange=None,
                 section=None, refresh=None, comment_before="", comment_after="", infotext=None,
                 restrict_api=False, category_id=None):
        self.default = default
        self.label = label
        self.component = component
        self.component_args = component_args
        self.section = section
        self.infotext = infotext

    def info(self, info):
        self.label += f" ({info})"
        return self

    def needs_reload_ui(self):
        return self


class Options:
    def __init__(self):
        object.__setattr__(self, "data", {})
        object.__setattr__(self, "data_labels", {})

    def add_option(self, key, info):
        self.data_labels[key] = info
        self.data.setdefault(key, info.default)

    def __getattr__(self, item):
        if item in self.data:
            return self.data[item]
        if item in self.data_labels:
            return self.data_labels[item].default
        raise AttributeError(item)

    def __setattr__(self, key, value):
        self.data[key] = value


def default_opts():
    options = Options()
    options.data.update(dict(batch_cond_uncond=True, pad_cond_uncond=False, pad_cond_uncond_v0=False,
                             skip_early_cond=0.0, s_min_uncond_all=False, samples_save=True, return_grid=True,
                             samples_format="png", outdir_samples="", img2img_fix_steps=False,
                             live_preview_content="Prompt", enable_quantization=False,
                             img2img_background_color="#ffffff", sd_vae_encode_method="Full",
                             img2img_color_correction=False))
    return options


class State:
    def __init__(self):
        self.interrupted = False
        self.skipped = False
        self.stopping_generation = False
        self.job = ""
        self.job_no = 0
        self.job_count = 0
        self.textinfo = None
        self.sampling_step = 0
        self.sampling_steps = 0
        self.textinfo_history = []

    def __setattr__(self, key, value):
        if key == "textinfo" and value:
            self.__dict__.setdefault("textinfo_history", []).append(value)
        object.__setattr__(self, key, value)

    def interrupt(self):
        self.interrupted = True

    def skip(self):
        self.skipped = True

    def nextjob(self):
        self.job_no += 1
        self.sampling_step = 0


opts = default_opts()
state = State()
cmd_opts = types.SimpleNamespace(api=False, nowebui=False, data_dir=".")
sd_model = None
device = torch.device("cpu")
