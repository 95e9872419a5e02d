"""InterruptedException, and images_tensor_to_samples as the webui encodes images (v1.10.1): pixels in
[0, 1] on the webui's device in the VAE's dtype, scaled to [-1, 1], one image per VAE call."""
import torch

from modules import devices, shared

approximation_indexes = {"Full": 0, "Approx NN": 1, "Approx cheap": 2, "TAESD": 3}


class InterruptedException(BaseException):
    pass


def images_tensor_to_samples(image, approximation=None, model=None):
    model = shared.sd_model if model is None else model
    model.first_stage_model.to(devices.dtype_vae)
    image = image.to(shared.device, dtype=devices.dtype_vae) * 2 - 1
    if len(image) > 1:
        return torch.stack([model.get_first_stage_encoding(model.encode_first_stage(img[None]))[0] for img in image])
    return model.get_first_stage_encoding(model.encode_first_stage(image))
