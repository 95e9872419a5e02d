"""Phase laws: where the window boundaries of shifted schedules sit at a given step, as a fraction in [0, 1).

Pure functions of the step, so a plan is the same every time it is asked for.
"""
import random

GOLDEN = (5 ** 0.5 - 1) / 2


def golden(step: int) -> float:
    """Golden-ratio rotation: every run of steps spreads its boundaries almost evenly."""
    return (step * GOLDEN) % 1.0


def van_der_corput(step: int) -> float:
    """Base-2 radical inverse (0, 1/2, 1/4, 3/4, ...): the peers' 'ordered halving'."""
    fraction, unit = 0.0, 0.5
    while step:
        fraction += unit * (step & 1)
        step >>= 1
        unit /= 2
    return fraction


def seeded_random(step: int) -> float:
    """A random phase, seeded by the step alone."""
    return random.Random(0x5EED + step).random()


PHASE_LAWS = {"golden": golden, "van-der-corput": van_der_corput, "random": seeded_random}


def phase(law: str, step: int) -> float:
    return PHASE_LAWS[law](step)
