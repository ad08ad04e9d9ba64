"""Study statistics against hand-worked values and a straightforward loop reference."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from avatar_core.evaluation.study_stats import (
    completions_to_target,
    first_reaching,
    mean_with_ci,
    paired_difference,
    ratio_to_target,
)

BUDGETS = [0, 320, 640, 960]


def test_mean_curve_hand_worked_and_interval_brackets_it():
    curves = [[0.2, 0.4, 0.6, 0.8], [0.2, 0.2, 0.4, 0.6], [0.2, 0.6, 0.8, 1.0]]
    out = mean_with_ci(curves, n_boot=500)
    assert out["mean"] == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert out["ci_low"][0] == out["ci_high"][0] == pytest.approx(0.2)  # no spread at budget 0
    for lo, m, hi in zip(out["ci_low"], out["mean"], out["ci_high"], strict=True):
        assert lo <= m <= hi
    # the interval of column 1 lies within the range of attainable resample means of {0.4, 0.2, 0.6}
    assert 0.2 <= out["ci_low"][1] < 0.4 < out["ci_high"][1] <= 0.6


def test_bootstrap_matches_a_loop_reference():
    rng = np.random.default_rng(1)
    curves = rng.uniform(0, 1, size=(5, 3))
    out = mean_with_ci(curves, n_boot=300, confidence=0.9, seed=7)
    idx = np.random.default_rng(7).integers(0, 5, size=(300, 5))
    for k in range(3):
        means = [float(np.mean([curves[i, k] for i in row])) for row in idx]
        assert out["ci_low"][k] == pytest.approx(float(np.quantile(means, 0.05)))
        assert out["ci_high"][k] == pytest.approx(float(np.quantile(means, 0.95)))


def test_completions_to_target_first_budget_of_the_mean_curve():
    curves = [[0.1, 0.5, 0.7, 0.7], [0.1, 0.3, 0.5, 0.9]]  # mean 0.1, 0.4, 0.6, 0.8
    assert first_reaching(np.array([0.1, 0.4, 0.6, 0.8]), np.array(BUDGETS, float), 0.6) == 640
    out = completions_to_target(curves, BUDGETS, 0.6, n_boot=400)
    assert out["value"] == 640
    # resampling both seeds gives mean curves reaching 0.6 at 320 (seed 0 twice) or 640 or 960
    assert out["ci_low"] in (320, 640) and out["ci_high"] in (640, 960)
    assert out["reached_share"] == 1.0
    never = completions_to_target(curves, BUDGETS, 0.95, n_boot=100)
    assert never["value"] is None and never["ci_low"] is None and never["reached_share"] == 0.0


def test_paired_difference_pairs_seed_by_seed():
    a, b = [0.9, 0.5, 0.7], [0.8, 0.4, 0.6]  # a beats b by exactly 0.1 on every seed
    out = paired_difference(a, b, n_boot=200)
    assert out["mean"] == pytest.approx(0.1)
    assert out["ci_low"] == pytest.approx(0.1) and out["ci_high"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="paired_difference: need two equal-length"):
        paired_difference([0.1, 0.2], [0.1])


def test_ratio_to_target_is_how_many_times_fewer_completions():
    fast = [[0.1, 0.8, 0.8, 0.8], [0.1, 0.8, 0.8, 0.8]]  # reaches 0.8 at 320
    slow = [[0.1, 0.2, 0.5, 0.8], [0.1, 0.2, 0.5, 0.8]]  # reaches 0.8 at 960
    out = ratio_to_target(fast, slow, BUDGETS, 0.8, n_boot=100)
    assert out["value"] == pytest.approx(3.0) and out["ci_low"] == out["ci_high"] == pytest.approx(3.0)
    assert ratio_to_target(slow, fast, BUDGETS, 0.8, n_boot=50)["value"] == pytest.approx(1 / 3)
    assert ratio_to_target([[0.1] * 4] * 2, slow, BUDGETS, 0.8, n_boot=50)["value"] is None


@pytest.mark.parametrize(
    "bad, message",
    [
        ([], "need a non-empty"),
        ([[0.1, float("nan")]], "accuracies must be finite"),
        ([0.1, 0.2], "need a non-empty"),
    ],
)
def test_bad_curves_are_named(bad, message):
    with pytest.raises(ValueError, match=f"mean_with_ci: {message}"):
        mean_with_ci(bad)


def test_budgets_must_match_the_columns():
    with pytest.raises(ValueError, match="budgets must be 4 increasing numbers"):
        completions_to_target([[0.1, 0.2, 0.3, 0.4]], [0, 320, 320, 960], 0.3)


def test_ratio_when_the_target_is_met_before_training():
    at_start = [[0.8, 0.8, 0.8, 0.8]] * 2
    later = [[0.1, 0.8, 0.8, 0.8]] * 2
    assert ratio_to_target(at_start, at_start, BUDGETS, 0.8, n_boot=20)["value"] == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every resample is +inf: no inf - inf along the way
        out = ratio_to_target(at_start, later, BUDGETS, 0.8, n_boot=20)
    assert out["value"] == float("inf") and out["ci_high"] is None
