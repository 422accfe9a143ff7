"""The per-beat stall law of the cosimulation's stream models (cosim/axis.py), and their
refusal of what they do not do. (The models themselves run in every cosimulation test.)"""

import math
import random

import pytest

from aimc.cosim.axis import StreamSink, StreamSource, stall_cycles


@pytest.mark.parametrize("p", [0.2, 0.3, 0.6])
def test_stalls_follow_the_law_of_independent_per_cycle_stalls(p):
    """Stalled clocks before a beat: geometric, P(n) = p**n (1 - p), mean p / (1 - p)."""
    rng = random.Random(7)
    n = 200_000
    counts = [stall_cycles(rng, p) for _ in range(n)]
    mean = p / (1 - p)
    sd = math.sqrt(p) / (1 - p)  # of one draw
    assert abs(sum(counts) / n - mean) < 5 * sd / math.sqrt(n)
    for k in range(4):
        want = p**k * (1 - p)
        got = counts.count(k) / n
        assert abs(got - want) < 5 * math.sqrt(want * (1 - want) / n), (k, got, want)


def test_no_stalls_without_a_probability_or_a_generator():
    assert stall_cycles(random.Random(1), 0.0) == 0
    assert stall_cycles(None, 0.5) == 0


@pytest.mark.parametrize("cls", [StreamSource, StreamSink])
def test_bad_stall_settings_are_refused_by_name(cls):
    model = cls.__new__(cls)  # no simulator: the checks come before any bus access
    with pytest.raises(ValueError, match=r"stall probability must be in \[0, 1\), not 1.0"):
        model.set_stalls(1.0, random.Random(1))
    with pytest.raises(TypeError, match="draws its stalls per beat: use set_stalls"):
        model.set_pause_generator(iter([True]))
