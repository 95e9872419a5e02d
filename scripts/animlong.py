"""AnimLong: long AnimateDiff animations in the A1111 webui (an AlwaysVisible script; thin adapter).

Every algorithm lives in lib_animlong; lib_animlong.webui holds the hook bodies. The API key is the
title, "AnimLong": alwayson_scripts: {"AnimLong": {"args": [{"enable": true, "frames": 64, ...}]}}.
"""
import datetime
import os

from modules import script_callbacks, scripts, shared

from lib_animlong.errors import AnimLongError
from lib_animlong.motion.inject import match_sites
from lib_animlong.motion.loader import MotionCache
from lib_animlong.webui import generation, motion_files, outputs, request, settings

EXTENSION_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class AnimLongScript(scripts.Script):
    def __init__(self):
        super().__init__()
        self.motion_cache = MotionCache()   # the last module loaded, reused while its file is unchanged

    def title(self):
        return "AnimLong"

    def show(self, is_img2img):
        return scripts.AlwaysVisible

    def ui(self, is_img2img):
        from lib_animlong.webui import ui
        controls, self.infotext_fields = ui.build(self.elem_id, is_img2img, self._module_names(),
                                                  settings.default_formats(shared.opts), self._module_names)
        self.paste_field_names = [request.INFOTEXT_KEY]
        return controls

    def _folders(self):
        return motion_files.motion_folders(EXTENSION_ROOT, settings.motion_folder(shared.opts))

    def _module_names(self):
        return motion_files.list_motion_modules(self._folders())

    def _load_motion(self, name):
        """The module of file `name`, checked against the loaded checkpoint's UNet before any work; every
        refusal names the file."""
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
        return motion

    def before_process(self, p, *args):
        try:
            req = request.parse_args(args, self.is_img2img, settings.default_formats(shared.opts))
        except AnimLongError as error:
            if _asks_for_animation(args):
                p.animlong = generation.Generation(request=None, error=error)
                raise
            return
        if req.enable:
            generation.begin(p, req, self._load_motion)

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
            generation.install(p, current, shared.state, kwargs["noise"], kwargs.get("c"))

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


def _asks_for_animation(args) -> bool:
    """A dict (only API clients send one) or a ticked "Enable": bad arguments must fail the request."""
    return bool(args) and (isinstance(args[0], dict) or args[0] is True)


script_callbacks.on_ui_settings(lambda: settings.register(shared))
