import copy

import pytest
import torch
from einops import rearrange

from lib_animlong.context.window import Window
from lib_animlong.errors import AnimLongError
from lib_animlong.motion.call import CallSlot, MotionCall
from lib_animlong.motion.module import TemporalSelfAttention, TemporalTransformer
from lib_animlong.options import AnimationOptions
from lib_animlong.reference import ReferenceBuffers
from lib_animlong.sampling import WindowedDenoiser

CHANNELS = 32


def window(frames, references=()):
    return Window(tuple(frames), (1.0,) * len(frames), tuple(references))


def run(windows, x, positions="unique", record=None):
    """One evaluation of a real temporal transformer through the windowed denoiser."""
    torch.manual_seed(7)
    module = TemporalTransformer(CHANNELS, pe_length=24).eval()
    for name, layer in module.named_modules():
        if isinstance(layer, TemporalSelfAttention):
            layer.key = name
    slot = CallSlot()

    def model(x, sigma):
        out = module(x, slot.current)
        if record is not None:
            buffers = slot.current.reference
            record.append((buffers, buffers.kept_frames(), sorted({f for layer in buffers.kept.values() for f in layer})))
        return out

    options = AnimationOptions(frames=x.shape[0] // 2, reference_positions=positions)
    denoiser = WindowedDenoiser(model, slot, options, planner=lambda *a: list(windows), total_steps=1)
    with torch.no_grad():
        return denoiser(x, torch.tensor(1.0), step=0)


@pytest.fixture
def video():
    return torch.randn(2 * 24, CHANNELS, 2, 2)  # cond and uncond blocks of 24 frames


@pytest.mark.parametrize("positions", ["unique", "window", "none"])
def test_references_inside_the_window_or_none_give_exactly_the_unreferenced_result(video, positions):
    plain = run([window(range(0, 12)), window(range(8, 24))], video, positions)
    inside = run([window(range(0, 12)), window(range(8, 24), references=(8, 9, 10))], video, positions)
    assert torch.equal(plain, inside)


def test_a_reference_changes_the_window_that_reads_it_and_nothing_else(video):
    plain = run([window(range(0, 12)), window(range(12, 24))], video)
    referenced = run([window(range(0, 12)), window(range(12, 24), references=(0, 1))], video)
    rows_first = list(range(12)) + list(range(24, 36))
    assert torch.equal(plain[rows_first], referenced[rows_first])
    assert (plain - referenced).abs().max() > 1e-3


def attend(layer, q_in, kv_in):
    """The attention a temporal layer computes for explicit query and key/value inputs."""
    heads = layer.heads
    q = rearrange(layer.to_q(q_in), "s f (h d) -> s h f d", h=heads)
    k = rearrange(layer.to_k(kv_in), "s f (h d) -> s h f d", h=heads)
    v = rearrange(layer.to_v(kv_in), "s f (h d) -> s h f d", h=heads)
    out = layer.attention(q, k, v, (CHANNELS // heads) ** -0.5)
    return layer.to_out[0](rearrange(out, "s h f d -> s f (h d)"))


@pytest.mark.parametrize("positions, references, current_at, references_at", [
    ("unique", (0, 1), range(2, 6), [0, 1]),
    ("window", (0, 1), range(8, 12), [0, 1]),   # true distances: frames 0, 1 then 8..11
    ("window", (6, 7), range(2, 6), [0, 1]),
    ("window", (14,), range(0, 4), [6]),         # a reference after the window
])
def test_reference_positions_follow_their_definition(positions, references, current_at, references_at):
    layer = TemporalSelfAttention(CHANNELS, pe_length=24).eval()
    layer.key = "layer"
    normed = torch.randn(6, 16, CHANNELS)
    pe = layer.pos_encoder.pe[0]
    buffers = ReferenceBuffers(references, positions)
    with torch.no_grad():
        layer(normed[:, :8], MotionCall(8, frame_indices=tuple(range(8)), reference=buffers))
        layer(normed[:, 12:16], MotionCall(4, frame_indices=tuple(range(12, 16)), reference=buffers))
        current = normed[:, 8:12]
        out = layer(current, MotionCall(4, frame_indices=tuple(range(8, 12)), reference_frames=references,
                                        reference=buffers))
        q_in = current + pe[list(current_at)]
        kv_in = torch.cat([normed[:, list(references)] + pe[references_at], q_in], dim=1)
        assert torch.allclose(out, attend(layer, q_in, kv_in), atol=1e-6)


def test_references_without_positions():
    layer = TemporalSelfAttention(CHANNELS, pe_length=24).eval()
    normed = torch.randn(6, 12, CHANNELS)
    pe = layer.pos_encoder.pe[0]
    buffers = ReferenceBuffers({0, 1}, "none")
    with torch.no_grad():
        layer(normed[:, :4], MotionCall(4, frame_indices=(0, 1, 2, 3), reference=buffers))
        out = layer(normed[:, 8:], MotionCall(4, frame_indices=(8, 9, 10, 11), reference_frames=(1, 0),
                                              reference=buffers))
        q_in = normed[:, 8:] + pe[:4]
        expected = attend(layer, q_in, torch.cat([normed[:, [1, 0]], q_in], dim=1))
    assert torch.allclose(out, expected, atol=1e-6)


@pytest.mark.parametrize("positions, references, frames, needed", [
    ("window", (0,), range(30, 34), 34),
    ("unique", tuple(range(20)), range(30, 38), 28),
])
def test_a_layout_longer_than_the_positional_table_is_refused(positions, references, frames, needed):
    layer = TemporalSelfAttention(CHANNELS, pe_length=24)
    buffers = ReferenceBuffers(references, positions)
    normed = torch.randn(2, 40, CHANNELS)
    layer(normed[:, :20], MotionCall(20, frame_indices=tuple(range(20)), reference=buffers))
    frames = tuple(frames)
    with pytest.raises(AnimLongError, match=rf"reference_positions='{positions}'.*needs {needed} positions.*has 24"):
        layer(normed[:, :len(frames)], MotionCall(len(frames), frame_indices=frames, reference_frames=references,
                                                  reference=buffers))


def test_a_reference_to_a_frame_not_computed_yet_is_refused(video):
    with pytest.raises(AnimLongError, match=r"references frames \[20\]"):
        run([window(range(0, 12), references=(20,)), window(range(12, 24))], video)


def test_bad_reference_positions_are_refused():
    with pytest.raises(AnimLongError, match="reference_positions"):
        ReferenceBuffers((), "absolute")
    with pytest.raises(AnimLongError, match="reference_positions"):
        AnimationOptions.from_dict({"reference_positions": "absolute"})


def test_buffers_hold_only_frames_still_to_be_read_and_start_empty_every_step(video):
    windows = [window(range(0, 8)), window(range(8, 16), references=(2, 3)), window(range(16, 24), references=(9,))]
    first, again = [], []
    result = run(windows, video, record=first)
    layers = 2  # one transformer block, two temporal attention layers
    assert [(count, frames) for _, count, frames in first] == [
        (2 * layers, [2, 3]), (3 * layers, [2, 3, 9]), (1 * layers, [9])]  # 2, 3 released once read
    run(windows, video, record=again)
    assert again[0][0] is not first[0][0] and again[0][1] == 2 * layers  # a new buffer every evaluation
    assert torch.equal(result, run(windows, video))


def held_per_call(frames, closed_loop=False, steps=20):
    """Frames the reference buffers hold after each call of every step of the anchored-shift plan, through a real
    temporal transformer, and the slots they were given: {step: (held after each call, slots)}."""
    module = TemporalTransformer(CHANNELS, pe_length=32).eval()
    for name, layer in module.named_modules():
        if isinstance(layer, TemporalSelfAttention):
            layer.key = name
    slot, held = CallSlot(), []

    def model(x, sigma):
        out = module(x, slot.current)
        buffers = slot.current.reference
        if buffers is not None:
            held.append((len(buffers.slots), buffers.capacity))
        return out

    options = AnimationOptions(frames=frames, closed_loop=closed_loop, schedule="anchored-shift",
                               references="previous+anchors", global_steps=0.53)   # the schedule with buffers
    denoiser = WindowedDenoiser(model, slot, options, total_steps=steps)
    x = torch.randn(2 * frames, CHANNELS, 1, 1)
    result = {}
    with torch.no_grad():
        for step in range(steps):
            held.clear()
            denoiser(x, torch.tensor(1.0), step=step)
            result[step] = ([count for count, _ in held], {capacity for _, capacity in held})
    return result


def most_held(frames, closed_loop=False):
    steps = held_per_call(frames, closed_loop)
    for step, (held, capacities) in steps.items():
        assert capacities == {max(held)}, step   # slots for what the step holds at most, never O(N)
    return max(max(held) for held, _ in steps.values())


def test_frames_held_by_reference_buffers_do_not_grow_with_the_video():
    """Local steps: a window reads the anchors of one anchor window (16 anchors), so the buffers hold that
    window, the previous window's edge and what the next window reads of the current one: 24 frames at
    context 16, at 256 frames as at 1024 (a few more where the last anchor window is short and its
    readers also read the one before). Looped, the first anchor window is also read across the join at
    the end of the step: 36. Global steps hold the hub comb (16)."""
    assert most_held(1024) == most_held(256) == 24
    assert most_held(1024, closed_loop=True) == most_held(1536, closed_loop=True) == 36


def test_under_autocast_kept_frames_are_held_at_the_weights_precision():
    """Half-precision weights under autocast see an fp32 LayerNorm output (CUDA autocast runs norms in
    fp32), but their projections round it to half precision anyway: the buffers hold it at the weights'
    precision (half the memory), and the window that reads them gets what fp32 buffers would give it, up
    to that rounding."""
    torch.manual_seed(7)
    attention = TemporalSelfAttention(CHANNELS, pe_length=24).eval()
    attention.key = "layer"
    narrow = copy.deepcopy(attention).to(torch.bfloat16)
    first, second = torch.randn(2, 5, 4, CHANNELS).unbind(0)  # (sequences, frames, channels), fp32

    def second_window(module, autocast):
        buffers = ReferenceBuffers({0, 1}, "unique")
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            module(first, MotionCall(frames=4, frame_indices=(0, 1, 2, 3), reference=buffers))
            out = module(second, MotionCall(frames=4, frame_indices=(4, 5, 6, 7), reference_frames=(0, 1),
                                            reference=buffers))
        return out.float(), buffers.slabs["layer"].dtype

    reference, held = second_window(attention, autocast=False)
    narrowed, held_narrow = second_window(narrow, autocast=True)
    assert (held, held_narrow) == (torch.float32, torch.bfloat16)
    assert (narrowed - reference).abs().max() < 0.05 * reference.abs().max()


def test_in_a_closed_loop_window_positions_go_the_shorter_way_round():
    """Frames 18, 19 of a 20-frame loop sit just before frame 0: positions 0, 1, the window 2..5 (not 18 apart)."""
    layer = TemporalSelfAttention(CHANNELS, pe_length=24).eval()
    layer.key = "layer"
    normed = torch.randn(6, 20, CHANNELS)
    pe = layer.pos_encoder.pe[0]
    buffers = ReferenceBuffers((18, 19), "window", loop_frames=20)
    with torch.no_grad():
        layer(normed[:, 12:20], MotionCall(8, frame_indices=tuple(range(12, 20)), reference=buffers))
        current = normed[:, 0:4]
        out = layer(current, MotionCall(4, frame_indices=(0, 1, 2, 3), reference_frames=(18, 19),
                                        reference=buffers))
        q_in = current + pe[2:6]
        kv_in = torch.cat([normed[:, [18, 19]] + pe[[0, 1]], q_in], dim=1)
        assert torch.allclose(out, attend(layer, q_in, kv_in), atol=1e-6)
    unlooped = ReferenceBuffers((18, 19), "window")
    assert unlooped._layout((0, 1, 2, 3), (18, 19)) == ([0, 1, 2, 3], [18, 19])   # 18 frames later


def test_a_closed_loop_with_previous_references_at_true_distances_fits_twice_the_context():
    from lib_animlong.context import plan
    from lib_animlong.options import AnimationOptions
    for n, context in ((33, 8), (40, 16), (64, 16), (100, 16)):
        options = AnimationOptions(frames=n, context_length=context, schedule="shifted", references="previous",
                                   reference_positions="window", closed_loop=True)
        for step in range(12):
            for window in plan(step, 12, n, options):
                references = [r for r in window.references if r not in window.frames]
                if references:
                    current, referenced = ReferenceBuffers((), "window", loop_frames=n)._layout(
                        window.frames, references)
                    assert max(current + referenced) + 1 <= 2 * context
