"""Motion-module files: the folders searched, the names offered in the dropdown, a name resolved to a path."""
import os
from typing import Dict, List, Sequence

from ..errors import AnimLongError

MOTION_EXTENSIONS = (".safetensors", ".ckpt", ".pth", ".pt")


def motion_folders(extension_root: str, setting_path: str = "") -> List[str]:
    """The extension's motion_modules/ folder, then the folder named in the settings (if any)."""
    folders = [os.path.join(extension_root, "motion_modules")]
    if setting_path and setting_path.strip():
        folders.append(os.path.abspath(os.path.expanduser(setting_path.strip())))
    return folders


def list_motion_modules(folders: Sequence[str]) -> List[str]:
    """File names (sorted, first folder wins on duplicates); [] when no folder holds one."""
    names: Dict[str, str] = {}
    for folder in folders:
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if name.lower().endswith(MOTION_EXTENSIONS) and os.path.isfile(os.path.join(folder, name)):
                names.setdefault(name, os.path.join(folder, name))
    return sorted(names)


def resolve(name: str, folders: Sequence[str]) -> str:
    """The path of motion-module file `name`, or an error saying where to put one."""
    available = list_motion_modules(folders)
    if not available:
        raise AnimLongError("AnimLong: no motion module files found. Put an AnimateDiff motion module "
                            f"(.safetensors or .ckpt) into {folders[0]}"
                            + (f" or {folders[1]}" if len(folders) > 1 else "")
                            + ", then press the refresh button next to 'Motion module'.")
    if not name:
        raise AnimLongError(f"AnimLong: 'motion_module' is empty; choose one of {', '.join(available)}.")
    for folder in folders:
        path = os.path.join(folder, os.path.basename(name))
        if os.path.basename(name) in available and os.path.isfile(path):
            return path
    raise AnimLongError(f"AnimLong: 'motion_module' {name!r} was not found; choose one of {', '.join(available)}.")
