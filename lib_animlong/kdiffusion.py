"""Import k-diffusion's `sampling` and `external` modules without its package `__init__`.

Inside the webui `k_diffusion` is already importable and is used as is. Headless, the pip package's
`__init__` pulls torchvision, clip and more; its two modules we need only use `utils.append_dims`, so the
package is registered empty and `utils` gets that one function.
"""
import importlib
import importlib.util
import sys
import types


def _append_dims(x, target_dims):
    dims_to_append = target_dims - x.ndim
    if dims_to_append < 0:
        raise ValueError(f"input has {x.ndim} dims but target_dims is {target_dims}, which is less")
    return x[(...,) + (None,) * dims_to_append]


def load():
    """Return (sampling, external) modules of k-diffusion."""
    if "k_diffusion.sampling" in sys.modules and "k_diffusion.external" in sys.modules:
        return sys.modules["k_diffusion.sampling"], sys.modules["k_diffusion.external"]
    if "k_diffusion" not in sys.modules:
        spec = importlib.util.find_spec("k_diffusion")
        if spec is None:
            raise ImportError("k-diffusion is not installed: pip install --no-deps k-diffusion==0.1.1.post1")
        package = types.ModuleType("k_diffusion")
        package.__path__ = list(spec.submodule_search_locations)
        sys.modules["k_diffusion"] = package
        utils = types.ModuleType("k_diffusion.utils")
        utils.append_dims = _append_dims
        sys.modules["k_diffusion.utils"] = utils
        package.utils = utils
    return importlib.import_module("k_diffusion.sampling"), importlib.import_module("k_diffusion.external")
