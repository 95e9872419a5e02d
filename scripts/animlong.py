"""AnimLong: long AnimateDiff animations in the A1111 webui (an AlwaysVisible script; thin adapter).

Every algorithm lives in lib_animlong; lib_animlong.webui holds the hook bodies. The API key is the
title, "AnimLong": alwayson_scripts: {"AnimLong": {"args": [{"enable": true, "frames": 64, ...}]}}.
"""
import datetime
import os

from modules import script_callbacks, scripts, sd_samplers_common, shared

from lib_animlong.errors import AnimLongError
from lib_animlong.motion.inject import match_sites
from lib_animlong.motion.loader import MotionCache
from lib_animlong.webui import attention, generation, motion_files, motion_loras, outputs, request, routes, settings

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AnimLongScript(scripts.Script):
    def __init__(self):
        super().__init__()
        self.motion_cache = MotionCache()   # the last module loaded, reused while its file is unchanged
        self.lora_cache = {}                # (module path, mtime, loras) -> the module with the MotionLoRAs added

    def title(self):
        return "AnimLong"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        from lib_animlong.webui import ui
        controls, self.infotext_fields = ui.build(self.elem_id, is_img2img, self._module_names(),
                                                  settings.default_formats(shared.opts), self._module_names,
                                                  self._lora_names)
        self.paste_field_names = [request.INFOTEXT_KEY]
        return controls

    def _folders(self):
        return motion_files.motion_folders(EXTENSION_ROOT, settings.motion_folder(shared.opts))

    def _module_names(self):
        return motion_files.list_motion_modules(self._folders())

    def _lora_folders(self):
        return motion_loras.lora_folders(EXTENSION_ROOT, _webui_lora_dir())

    def _lora_names(self):
        return motion_loras.list_motion_loras(self._lora_folders())

    def _load_motion(self, name, loras=()):
        """The module of file `name`, checked against the loaded checkpoint's UNet before any work (every
        refusal names the file), or with MotionLoRAs a copy with them added (the cache is never changed)."""
        path = motion_files.resolve(name, self._folders())
        file_name = os.path.basename(path)
        try:
            motion = self.motion_cache.get(path).motion
            unet = getattr(getattr(shared.sd_model, "model", None), "diffusion_model", None)
            if unet is not None:
                match_sites(unet, motion)
        except AnimLongError as error:
            if file_name in str(error):
                raise
            raise AnimLongError(f"AnimLong: motion module {file_name!r}: {error}") from None
        if not loras:
            return motion
        folders = self._lora_folders()
        key = (path, os.path.getmtime(path), loras,
               tuple(os.path.getmtime(motion_loras.resolve_lora(n, folders)) for n, _ in loras))
        if key not in self.lora_cache:
            self.lora_cache.clear()          # one merged copy at a time (a module is hundreds of MB)
            self.lora_cache[key] = motion_loras.with_motion_loras(
                motion, loras, lambda lora: motion_loras.resolve_lora(lora, folders))
        return self.lora_cache[key]

    def before_process(self, p, *args):
        try:
            req = request.parse_args(args, self.is_img2img, settings.default_formats(shared.opts))
        except AnimLongError as error:
            if _asks_for_animation(args):
                p.animlong = generation.Generation(request=None, error=error)
                raise
            return
        if req.enable:
            generation.begin(p, req, lambda name: self._load_motion(name, req.motion_loras), _attention_backend)

    def process(self, p, *args):
        current = getattr(p, "animlong", None)
        if current is not None and current.error is None:
            generation.prepare(p, current)

    def before_process_batch(self, p, *args, **kwargs):
        current = getattr(p, "animlong", None)
        if current is not None:
            generation.assign_keyframe_prompts(p, current)

    def process_before_every_sampling(self, p, *args, **kwargs):
        current = getattr(p, "animlong", None)
        if current is not None:
            generation.install(p, current, shared.state, kwargs["noise"], kwargs.get("c"),
                               interrupted=sd_samplers_common.InterruptedException)

    def postprocess(self, p, processed, *args):
        current = getattr(p, "animlong", None)
        if current is None or current.error is not None:
            return
        req = current.request
        first = processed.index_of_first_image
        frames, infotexts = processed.images[first:], processed.infotexts[first:]
        out = settings.output_settings(shared.opts)
        folder = outputs.output_folder(p.outpath_samples, out, datetime.date.today())
        results, notes = outputs.write_videos(frames, infotexts, p.all_seeds, current.frames, req.formats,
                                              req.options.fps, folder, out)
        for note in notes:
            print(note)
        processed.images, processed.infotexts = outputs.gallery(results, infotexts, current.frames,
                                                                bool(getattr(p, "is_api", False)), req.return_frames)
        processed.index_of_first_image = 0
        processed.comments = "\n".join([processed.comments] + notes if processed.comments else notes)
        p.animlong_videos = outputs.video_paths(results)
        # the page's player reads these from the generation info (Processed.js()); the API's "info" has them too
        # (Processed holds p's dict itself; written after the infotexts, so no file's parameters carry it)
        p.extra_generation_params[VIDEOS_KEY] = routes.video_links(p.animlong_videos, _file_url)


VIDEOS_KEY = "AnimLong videos"


def _webui_lora_dir() -> str:
    lora_dir = getattr(shared.cmd_opts, "lora_dir", "") or ""
    if not lora_dir:
        try:
            from modules import paths
            lora_dir = os.path.join(paths.models_path, "Lora")
        except (ImportError, AttributeError):
            lora_dir = ""
    return lora_dir


def _file_url(path: str) -> str:
    """A URL the page can load: the webui's own `file=` form, with the file allowed for this session."""
    try:
        from modules import ui_tempdir
        from modules.ui_gradio_extensions import webpath
        if getattr(shared, "demo", None) is not None:
            ui_tempdir.register_tmp_file(shared.demo, path)
        return webpath(path)
    except (ImportError, AttributeError, OSError):
        return "file=" + os.path.abspath(path)


def _app_started(demo, app):
    routes.register(app, lambda: motion_files.motion_folders(EXTENSION_ROOT, settings.motion_folder(shared.opts)),
                    lambda: settings.default_formats(shared.opts))


def _attention_backend() -> str:
    """The motion modules' attention follows the webui's own cross-attention optimisation."""
    from modules import sd_hijack
    return attention.current_backend(sd_hijack)


def _asks_for_animation(args) -> bool:
    """A dict (only API clients send one) or a ticked "Enable": bad arguments must fail the request."""
    return bool(args) and (isinstance(args[0], dict) or args[0] is True)


script_callbacks.on_ui_settings(lambda: settings.register(shared))
script_callbacks.on_app_started(_app_started)
# the CFG denoiser's row layout of every evaluation goes to the sampling pass it belongs to (p.animlong.run)
script_callbacks.on_cfg_denoiser(generation.on_cfg_denoiser)
