"""Prompt travel: parsing the `frame: prompt` text and interpolating keyframe conditioning per frame."""
import pytest
import torch

from lib_animlong.conditioning.prompt_travel import interpolate_conditioning, is_prompt_travel, parse_prompt_travel
from lib_animlong.errors import AnimLongError

TRAVEL = """masterpiece, best quality,
0: a cat sitting
32: a cat jumping
64: a cat sleeping
, photo, 4k
"""


# ---- parsing --------------------------------------------------------------------------------------------

def test_head_and_tail_are_shared_by_every_keyframe():
    assert parse_prompt_travel(TRAVEL, num_frames=80) == {
        0: "masterpiece, best quality, a cat sitting, photo, 4k",
        32: "masterpiece, best quality, a cat jumping, photo, 4k",
        64: "masterpiece, best quality, a cat sleeping, photo, 4k",
    }


def test_spacing_blank_lines_continuations_and_order():
    text = "\n  photo of\n\n 16 :a dog  \n   running fast\n\n0:   a puppy\n\n"
    # "running fast" continues keyframe 16; the head has no comma so one is added.
    assert parse_prompt_travel(text) == {0: "photo of, a puppy", 16: "photo of, a dog\nrunning fast"}
    assert list(parse_prompt_travel(text)) == [0, 16]


def test_without_head_or_tail_and_empty_keyframe_prompt():
    assert parse_prompt_travel("0: red\n8: blue") == {0: "red", 8: "blue"}
    assert parse_prompt_travel("style,\n0:\n8: blue") == {0: "style,", 8: "style, blue"}


@pytest.mark.parametrize("text", ["a cat sitting, (best quality:1.2)", "8k: ultra detailed\n1girl: smiling",
                                  "", "a cat\n\nphoto, 4k", "[cat:dog:0.5]"])
def test_plain_prompts_are_not_travel(text):
    assert not is_prompt_travel(text)
    assert parse_prompt_travel(text) is None


def test_negative_frame_is_refused_naming_the_line():
    with pytest.raises(AnimLongError, match=r"line 3 \('-4: a bird'\): frame -4 is negative"):
        parse_prompt_travel("head\n0: a cat\n-4: a bird")


def test_frame_past_the_end_is_refused_naming_the_line():
    with pytest.raises(AnimLongError, match=r"line 4 \('64: a cat sleeping'\): frame 64 is past the last "
                                            r"frame \(63; the animation has 64 frames\)"):
        parse_prompt_travel(TRAVEL, num_frames=64)


def test_duplicated_frame_is_refused_naming_both_lines():
    with pytest.raises(AnimLongError, match=r"line 3 \('8: b'\): frame 8 already has a prompt on line 2"):
        parse_prompt_travel("0: a\n8: a\n8: b")


# ---- interpolation --------------------------------------------------------------------------------------

def keyframes(*frames, tokens=77, dim=16):
    generator = torch.Generator().manual_seed(1)
    return {f: torch.randn(tokens, dim, generator=generator) for f in frames}


@pytest.mark.parametrize("mode", ["slerp", "linear"])
def test_keyframes_are_exact_and_outside_frames_hold(mode):
    conds = keyframes(4, 12)
    out = interpolate_conditioning(conds, 16, mode=mode)
    assert out.shape == (16, 77, 16)
    assert torch.equal(out[4], conds[4]) and torch.equal(out[12], conds[12])
    assert all(torch.equal(out[f], conds[4]) for f in range(4))
    assert all(torch.equal(out[f], conds[12]) for f in range(13, 16))


def test_linear_midpoint_is_the_average():
    conds = keyframes(0, 8)
    out = interpolate_conditioning(conds, 9, mode="linear")
    torch.testing.assert_close(out[4], (conds[0] + conds[8]) / 2)
    torch.testing.assert_close(out[2], 0.75 * conds[0] + 0.25 * conds[8])


def test_slerp_midpoint_bisects_the_angle_and_keeps_the_length():
    a = torch.tensor([[3.0, 0.0, 0.0]])
    b = torch.tensor([[0.0, 3.0, 0.0]])
    out = interpolate_conditioning({0: a, 4: b}, 5)
    torch.testing.assert_close(out[2], torch.tensor([[3 / 2 ** 0.5, 3 / 2 ** 0.5, 0.0]]))
    assert torch.allclose(out.norm(dim=-1), torch.full((5, 1), 3.0))  # linear would dip to 2.12
    # Angles grow evenly: frame 1 is a quarter of the way round.
    torch.testing.assert_close(out[1], torch.tensor([[3 * 0.9238795, 3 * 0.3826834, 0.0]]))


def test_slerp_of_parallel_vectors_is_finite():
    a = torch.ones(2, 4)
    out = interpolate_conditioning({0: a, 4: a * 2}, 5)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[2], a * 1.5)


def test_closed_loop_travels_back_to_the_first_keyframe():
    conds = keyframes(2, 6)
    out = interpolate_conditioning(conds, 10, closed_loop=True, mode="linear")
    # 6 -> (2 + 10): frames 7, 8, 9 then (wrapped) 0, 1 lie between keyframe 6 and keyframe 2.
    for frame, steps in [(7, 1), (8, 2), (9, 3), (0, 4), (1, 5)]:
        torch.testing.assert_close(out[frame], conds[6] + (conds[2] - conds[6]) * steps / 6)
    assert torch.equal(out[2], conds[2]) and torch.equal(out[6], conds[6])
    # Without the loop the same frames are held.
    held = interpolate_conditioning(conds, 10, mode="linear")
    assert torch.equal(held[9], conds[6]) and torch.equal(held[0], conds[2])


def test_single_keyframe_fills_every_frame():
    conds = keyframes(3)
    out = interpolate_conditioning(conds, 6, closed_loop=True)
    assert all(torch.equal(out[f], conds[3]) for f in range(6))


def test_longer_prompts_pad_shorter_ones_by_repeating_the_last_row():
    conds = {0: torch.randn(77, 8), 4: torch.randn(154, 8)}
    out = interpolate_conditioning(conds, 5, mode="linear")
    assert out.shape == (5, 154, 8)
    assert torch.equal(out[0, :77], conds[0]) and torch.equal(out[0, 77:], conds[0][-1:].expand(77, 8))
    assert torch.equal(out[4], conds[4])


def test_batched_half_precision_and_dict_conditioning():
    half = {0: torch.randn(1, 77, 8).half(), 2: torch.randn(1, 77, 8).half()}
    out = interpolate_conditioning(half, 3)
    assert out.dtype == torch.float16 and out.shape == (3, 1, 77, 8)
    sdxl = {f: {"crossattn": torch.randn(77, 8), "vector": torch.randn(12)} for f in (0, 2)}
    out = interpolate_conditioning(sdxl, 3, mode="linear")
    assert out["crossattn"].shape == (3, 77, 8) and out["vector"].shape == (3, 12)
    torch.testing.assert_close(out["vector"][1], (sdxl[0]["vector"] + sdxl[2]["vector"]) / 2)


@pytest.mark.parametrize("conds, frames, kwargs, message", [
    ({0: torch.zeros(77, 8), 3: torch.zeros(77, 4)}, 4, {}, "only the token count may differ"),
    ({0: torch.zeros(77, 8)}, 4, {"mode": "cubic"}, "Unknown interpolation 'cubic'"),
    ({5: torch.zeros(77, 8)}, 4, {}, "Keyframe 5 is outside the animation's frames 0..3"),
    ({}, 4, {}, "at least one keyframe"),
    ({0: {"crossattn": torch.zeros(2, 2)}, 1: {"vector": torch.zeros(2)}}, 4, {}, "does not have the parts"),
])
def test_bad_conditioning_is_refused(conds, frames, kwargs, message):
    with pytest.raises(AnimLongError) as e:
        interpolate_conditioning(conds, frames, **kwargs)
    assert message in str(e.value)


def test_parsed_prompts_drive_interpolation_end_to_end():
    prompts = parse_prompt_travel(TRAVEL, num_frames=96)
    vocabulary = {prompt: torch.randn(77, 8) for prompt in prompts.values()}
    out = interpolate_conditioning({f: vocabulary[p] for f, p in prompts.items()}, 96, closed_loop=True)
    assert out.shape == (96, 77, 8)
    assert torch.equal(out[32], vocabulary[prompts[32]])
    # Frame 80 is halfway from keyframe 64 back round to keyframe 0 (at 96).
    assert not torch.equal(out[80], out[64]) and not torch.equal(out[80], out[0])
