"""modules.images: resize_image (modes 0 resize, 1 crop and resize, 2 resize and fill, as the webui's v1.10.1,
with Lanczos and no upscaler), flatten, get_next_sequence_number (max numeric prefix + 1) and save_image."""
import os

from PIL import Image, PngImagePlugin


def flatten(img, bgcolor):
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, bgcolor)
        background.paste(img, mask=img)
        img = background
    return img.convert("RGB")


def resize_image(resize_mode, im, width, height, upscaler_name=None):
    def resize(image, w, h):
        return image.resize((w, h), resample=Image.LANCZOS)

    if resize_mode == 0:
        return resize(im, width, height)
    ratio, src_ratio = width / height, im.width / im.height
    if resize_mode == 1:     # cover the target, crop the excess around the centre
        src_w = width if ratio > src_ratio else im.width * height // im.height
        src_h = height if ratio <= src_ratio else im.height * width // im.width
    else:                    # fit inside the target, fill the rest from the image's edges
        src_w = width if ratio < src_ratio else im.width * height // im.height
        src_h = height if ratio >= src_ratio else im.height * width // im.width
    resized = resize(im, src_w, src_h)
    result = Image.new("RGB", (width, height))
    result.paste(resized, box=(width // 2 - src_w // 2, height // 2 - src_h // 2))
    if resize_mode == 2 and ratio < src_ratio:
        fill = height // 2 - src_h // 2
        if fill > 0:
            result.paste(resized.resize((width, fill), box=(0, 0, width, 0)), box=(0, 0))
            result.paste(resized.resize((width, fill), box=(0, resized.height, width, resized.height)),
                         box=(0, fill + src_h))
    elif resize_mode == 2 and ratio > src_ratio:
        fill = width // 2 - src_w // 2
        if fill > 0:
            result.paste(resized.resize((fill, height), box=(0, 0, 0, height)), box=(0, 0))
            result.paste(resized.resize((fill, height), box=(resized.width, 0, resized.width, height)),
                         box=(fill + src_w, 0))
    return result


def get_next_sequence_number(path, basename):
    """The largest number any file name in `path` starts with (after `basename-`), plus one; 0 if none."""
    prefix = f"{basename}-" if basename else ""
    result = -1
    for name in os.listdir(path):
        if name.startswith(prefix):
            try:
                result = max(int(os.path.splitext(name[len(prefix):])[0].split("-")[0]), result)
            except ValueError:
                pass
    return result + 1


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
