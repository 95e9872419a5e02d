import dataclasses

import pytest

from lib_animlong.errors import AnimLongError
from lib_animlong.options import AnimationOptions, option_fields


def test_every_field_declares_label_help_and_a_valid_default():
    for f in option_fields():
        assert f.metadata["label"] and f.metadata["help"], f.name
        choices = f.metadata["choices"]
        if choices is not None:
            assert f.default in choices, f.name
    AnimationOptions()  # defaults pass their own validation


def test_from_dict_coerces_json_and_form_values():
    options = AnimationOptions.from_dict({"frames": 32.0, "closed_loop": "true", "motion_scale": "1.2", "fps": "12"})
    assert (options.frames, options.closed_loop, options.motion_scale, options.fps) == (32, True, 1.2, 12)


@pytest.mark.parametrize("values, named", [
    ({"frames": "many"}, "frames"),
    ({"frames": 0}, "frames"),
    ({"frames": 2.5}, "frames"),
    ({"closed_loop": 3}, "closed_loop"),
    ({"motion_scale": 9.0}, "motion_scale"),
    ({"schedule": "nope"}, "schedule"),
    ({"no_such_option": 1}, "no_such_option"),
])
def test_bad_values_are_refused_naming_the_field(values, named):
    with pytest.raises(AnimLongError, match=repr(named)):
        AnimationOptions.from_dict(values)


def test_options_are_frozen_and_replace_revalidates():
    options = AnimationOptions()
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.frames = 3
    with pytest.raises(AnimLongError, match="'frames'"):
        options.replace(frames=-1)
    assert options.replace(frames=128).to_dict()["frames"] == 128
