"""The temporal attention backend that follows the webui's own cross-attention optimisation.

The webui applies one optimisation to its spatial attention (Settings > Optimizations > Cross attention
optimization, or the command line's --xformers / --opt-sdp-attention / ...): `modules.sd_hijack.
current_optimizer` is the one in effect (None when the webui runs without one). Its `name` is mapped here to
the engine's backend (lib_animlong.motion.attention), so the motion modules never use xformers unless the
webui itself does. Names from modules/sd_hijack_optimizations.py of webui v1.10.
"""
from typing import Optional

from ..errors import AnimLongError

# webui optimiser name -> engine backend. The split/chunked attentions (sub-quadratic, V1, InvokeAI,
# Doggettx) save memory on the spatial attention's long token axis; the temporal axis is at most a few
# dozen frames, so their counterpart is plain attention, chunked over the batch.
WEBUI_OPTIMIZERS = {"xformers": "xformers", "sdp": "sdpa", "sdp-no-mem": "sdpa-no-mem",
                    "sub-quadratic": "plain", "V1": "plain", "InvokeAI": "plain", "Doggettx": "plain"}
NO_OPTIMIZATION = "plain"


def backend_for(optimizer_name: Optional[str]) -> str:
    """The engine's attention backend for the webui optimiser named `optimizer_name` (None: no optimiser).

    Raises AnimLongError for an optimiser this extension does not know (e.g. one added by another
    extension), naming the setting to change."""
    if optimizer_name is None or optimizer_name == "":
        return NO_OPTIMIZATION
    if optimizer_name in WEBUI_OPTIMIZERS:
        return WEBUI_OPTIMIZERS[optimizer_name]
    raise AnimLongError(
        f"AnimLong: the webui's cross attention optimization is {optimizer_name!r}, which long animation "
        f"cannot mirror in the motion modules. Choose one of {', '.join(WEBUI_OPTIMIZERS)} (or None) in "
        "Settings > Optimizations > Cross attention optimization.")


def current_backend(sd_hijack) -> str:
    """backend_for the optimiser in effect in the webui (`modules.sd_hijack`, passed in by the script)."""
    optimizer = getattr(sd_hijack, "current_optimizer", None)
    return backend_for(getattr(optimizer, "name", None))
