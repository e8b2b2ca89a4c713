"""Learning-rate schedules against the formulas of their papers."""

from __future__ import annotations

import math

import pytest

from seqtasks.schedules import SlantedTriangular


@pytest.mark.parametrize("t", [0, 37, 99, 100, 101, 500, 999, 1000])
def test_slanted_triangular_is_ulmfits_formula(t):
    """Howard and Ruder (2018), eq. 3, with T = 1000 iterations, cut_frac 0.1, ratio 32."""
    steps, cut_frac, ratio = 1000, 0.1, 32
    cut = math.floor(steps * cut_frac)
    p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
    expected = (1 + p * (ratio - 1)) / ratio
    assert SlantedTriangular(cut_frac, ratio)(t, t / steps) == pytest.approx(expected)


def test_slanted_triangular_peaks_at_the_cut_and_ends_at_one_over_ratio():
    schedule = SlantedTriangular(cut_frac=0.2, ratio=10)
    assert schedule(0, 0.0) == pytest.approx(0.1) and schedule(0, 0.2) == pytest.approx(1.0)
    assert schedule(0, 1.0) == pytest.approx(0.1) and schedule(0, 1.5) == pytest.approx(0.1)  # past the end: stays


def test_slanted_triangular_takes_a_warmup_as_every_schedule_does():
    """A recipe's warmup_steps stays valid when it switches to this schedule: a linear factor on top."""
    plain, warmed = SlantedTriangular(0.1, 32), SlantedTriangular(0.1, 32, warmup_steps=10)
    assert warmed(4, 0.5) == pytest.approx(0.5 * plain(4, 0.5))
    assert warmed(9, 0.5) == pytest.approx(plain(9, 0.5)) and warmed(50, 0.7) == pytest.approx(plain(50, 0.7))
