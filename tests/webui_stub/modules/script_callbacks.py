"""Callback registries: on_ui_settings, on_cfg_denoiser, on_script_unloaded, ... (webui signatures)."""
from collections import defaultdict


class CFGDenoiserParams:
    def __init__(self, x, image_cond, sigma, sampling_step, total_sampling_steps, text_cond, text_uncond,
                 denoiser=None):
        self.x = x
        self.image_cond = image_cond
        self.sigma = sigma
        self.sampling_step = sampling_step
        self.total_sampling_steps = total_sampling_steps
        self.text_cond = text_cond
        self.text_uncond = text_uncond
        self.denoiser = denoiser


callbacks = defaultdict(list)


def clear_callbacks():
    callbacks.clear()


def _adder(name):
    def add(callback, *, name=None):
        callbacks[name_of].append(callback)
    name_of = name
    return add


on_ui_settings = _adder("ui_settings")
on_cfg_denoiser = _adder("cfg_denoiser")
on_script_unloaded = _adder("script_unloaded")
on_app_started = _adder("app_started")
on_model_loaded = _adder("model_loaded")
on_infotext_pasted = _adder("infotext_pasted")
on_before_image_saved = _adder("before_image_saved")


def ui_settings_callback():
    for c in callbacks["ui_settings"]:
        c()


def cfg_denoiser_callback(params):
    """Like the webui's: an exception in a callback is reported (modules.errors) and the next one runs."""
    for c in callbacks["cfg_denoiser"]:
        try:
            c(params)
        except Exception:
            from modules import errors
            errors.report(f"Error executing callback cfg_denoiser_callback for {c}", exc_info=True)
