"""modules.devices: the device and dtypes the webui computes in. The VAE runs in bfloat16 here (a GPU webui
runs it in float16 or bfloat16), so code that feeds it float32 CPU tensors fails on a CPU test too."""
import torch

device = cpu = torch.device("cpu")
dtype = torch.float32
dtype_vae = torch.bfloat16
dtype_unet = torch.float32


def torch_gc():
    pass
