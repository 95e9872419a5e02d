"""img2img animations through /sdapi/v1/img2img of the real webui."""
import numpy as np

from e2e.harness import animation, assert_video, b64, frames_of, png_image


def ok(response):
    assert response.status == 200, response.error
    return response


def test_first_and_last_frame(webui):
    init = png_image(colour=(200, 40, 40))
    last = png_image(colour=(20, 200, 60))
    options = animation(frames=8, return_frames=True, first_frame_strength=1.0, last_frame_strength=1.0)
    without = ok(webui.client.img2img([init], options, denoising_strength=0.75))
    pinned = ok(webui.client.img2img([init], dict(options, last_frame=b64(last)), denoising_strength=0.75))
    for r in (without, pinned):
        assert_video(r.images[0], "GIF", 8)
        assert len(r.images) == 9
    info = pinned.info["infotexts"][0]
    assert "first_frame_strength=1.0" in info and "last_frame_strength=1.0" in info
    a = np.stack([frames_of(f)[0] for f in without.images[1:]]).astype(int)
    b = np.stack([frames_of(f)[0] for f in pinned.images[1:]]).astype(int)
    # the last frame is pinned to the last image: it changes, and more than the first frame does
    assert np.abs(a[-1] - b[-1]).mean() > 1.0
    assert np.abs(a[-1] - b[-1]).mean() > np.abs(a[0] - b[0]).mean()
    webui.assert_restored()


def test_inpaint_mask_keeps_the_unmasked_area_of_every_frame(webui):
    init = png_image(colour=(200, 40, 40))
    mask = np.zeros((64, 64), np.uint8)
    mask[16:48, 16:48] = 255                     # only the middle is regenerated
    from PIL import Image
    r = ok(webui.client.img2img([init], animation(frames=8, return_frames=True), mask=b64(Image.fromarray(mask)),
                                mask_blur=0, inpainting_fill=1, inpaint_full_res=False, denoising_strength=0.75))
    assert_video(r.images[0], "GIF", 8)
    frames = np.stack([frames_of(f)[0] for f in r.images[1:]]).astype(int)
    assert frames.shape == (8, 64, 64, 3)
    original = np.asarray(init).astype(int)
    border = np.ones((64, 64), bool)
    border[8:56, 8:56] = False                   # well outside the mask: the webui pastes the original back
    for frame in frames:
        assert np.abs(frame[border] - original[border]).max() <= 3
    assert np.abs(frames[:, 20:44, 20:44] - original[20:44, 20:44]).mean() > 5   # inside: generated
    webui.assert_restored()
