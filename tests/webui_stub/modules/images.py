import os

from PIL import PngImagePlugin


def get_next_sequence_number(path, basename):
    os.makedirs(path, exist_ok=True)
    return len([f for f in os.listdir(path) if f.endswith(".png")])


def save_image(image, path, basename, seed=None, prompt=None, extension="png", info=None, short_filename=False,
               no_prompt=False, grid=False, pnginfo_section_name="parameters", p=None, existing_info=None,
               forced_filename=None, suffix="", save_to_dirs=None):
    os.makedirs(path, exist_ok=True)
    name = forced_filename or f"{get_next_sequence_number(path, basename):05}-{seed}{suffix}"
    fullfn = os.path.join(path, f"{name}.{extension}")
    pnginfo = PngImagePlugin.PngInfo()
    if info:
        pnginfo.add_text(pnginfo_section_name, info)
    image.save(fullfn, pnginfo=pnginfo)
    return fullfn, None
