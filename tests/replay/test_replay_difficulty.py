"""DifficultyTracker (window and EMA, hand-worked), zero streaks, KL, state, quantile tiers."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avatar_core.replay import DifficultyTracker, assign_tier, tier_thresholds


def test_window_mean_hand_worked():
    tracker = DifficultyTracker(mode="window", window=3)
    assert tracker.rbar("q") is None
    tracker.update("q", [1.0, 0.0])
    assert tracker.rbar("q") == pytest.approx(0.5)
    tracker.update("q", [1.0])  # window [1, 0, 1]
    assert tracker.rbar("q") == pytest.approx(2 / 3)
    tracker.update("q", [0.0, 0.0])  # last three of [1, 0, 1, 0, 0]
    assert tracker.rbar("q") == pytest.approx(1 / 3)
    assert tracker.n_rewards("q") == 5


def test_ema_hand_worked():
    tracker = DifficultyTracker(mode="ema", ema_decay=0.5)
    tracker.update("q", [1.0, 0.0])  # first reward sets 1.0, then 0.5 * 1 + 0.5 * 0
    assert tracker.rbar("q") == pytest.approx(0.5)
    tracker.update("q", [1.0])
    assert tracker.rbar("q") == pytest.approx(0.75)
    tracker.update("q", [0.0, 0.0])
    assert tracker.rbar("q") == pytest.approx(0.1875)


def test_ema_default_decay_hand_worked():
    tracker = DifficultyTracker(mode="ema")
    tracker.update("q", [0.0, 1.0, 1.0])  # 0 -> 0.1 -> 0.19
    assert tracker.rbar("q") == pytest.approx(0.19)


@settings(max_examples=60, deadline=None)
@given(
    groups=st.lists(
        st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=1, max_size=6), min_size=1, max_size=8
    ),
    window=st.integers(1, 10),
)
def test_window_mean_matches_reference(groups, window):
    tracker = DifficultyTracker(mode="window", window=window)
    history: list[float] = []
    for group in groups:
        tracker.update("q", group)
        history.extend(group)
        assert tracker.rbar("q") == pytest.approx(sum(history[-window:]) / len(history[-window:]))


def test_zero_streak_counts_all_zero_groups_and_resets():
    tracker = DifficultyTracker()
    assert tracker.zero_streak("q") == 0
    tracker.update("q", [0.0, 0.0, 0.0])
    tracker.update("q", [0.0])
    assert tracker.zero_streak("q") == 2
    tracker.update("q", [0.0, 0.3])  # one non-zero reward resets the streak
    assert tracker.zero_streak("q") == 0
    tracker.update("q", [0.0, 0.0])
    assert tracker.zero_streak("q") == 1
    assert tracker.zero_streak("other") == 0


def test_kl_is_the_last_reported_value():
    tracker = DifficultyTracker()
    tracker.update("q", [1.0])
    assert tracker.kl("q") is None
    tracker.update("q", [1.0], kl=0.3)
    tracker.update("q", [1.0])  # no kl given: the previous one stays
    assert tracker.kl("q") == 0.3
    tracker.update("q", [1.0], kl=0.05)
    assert tracker.kl("q") == 0.05


def test_values_lists_every_prompt():
    tracker = DifficultyTracker(window=2)
    tracker.update("a", [1.0, 0.0])
    tracker.update("b", [0.0])
    assert tracker.values() == {"a": 0.5, "b": 0.0}
    assert len(tracker) == 2 and "a" in tracker and "c" not in tracker


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_reward_names_the_prompt(bad):
    tracker = DifficultyTracker()
    with pytest.raises(ValueError, match=r"prompt 'clip-9'.*finite"):
        tracker.update("clip-9", [1.0, bad])
    with pytest.raises(ValueError, match=r"prompt 'clip-9'.*kl must be finite"):
        tracker.update("clip-9", [1.0], kl=bad)
    assert tracker.rbar("clip-9") is None  # nothing was folded in


def test_bad_settings_and_empty_group_are_rejected():
    with pytest.raises(ValueError, match="unknown difficulty mode 'median'; valid names: window, ema"):
        DifficultyTracker(mode="median")
    with pytest.raises(ValueError, match="window must be a positive int, got 0"):
        DifficultyTracker(window=0)
    with pytest.raises(ValueError, match="ema_decay must be in"):
        DifficultyTracker(mode="ema", ema_decay=1.0)
    with pytest.raises(ValueError, match="prompt 'q'.*rewards is empty"):
        DifficultyTracker().update("q", [])


@pytest.mark.parametrize("mode", ["window", "ema"])
def test_state_round_trip_through_json(mode):
    tracker = DifficultyTracker(mode=mode, window=4, ema_decay=0.7)
    tracker.update("a", [0.1, 0.7, 0.3], kl=0.123456789)
    tracker.update("b", [0.0, 0.0])
    tracker.update("a", [1 / 3, 0.9])
    restored = DifficultyTracker(mode=mode, window=4, ema_decay=0.7)
    restored.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert restored.state_dict() == tracker.state_dict()
    for pid in ("a", "b"):
        assert restored.rbar(pid) == tracker.rbar(pid)  # bit-exact
        assert restored.zero_streak(pid) == tracker.zero_streak(pid)
        assert restored.kl(pid) == tracker.kl(pid)
    restored.update("a", [0.5])
    tracker.update("a", [0.5])
    assert restored.rbar("a") == tracker.rbar("a")


def test_state_with_other_settings_is_rejected():
    state = DifficultyTracker(window=20).state_dict()
    with pytest.raises(ValueError, match="field window was 20 when saved but the tracker has 5"):
        DifficultyTracker(window=5).load_state_dict(state)
    with pytest.raises(ValueError, match="field version must be 1"):
        DifficultyTracker().load_state_dict({"mode": "window"})


def test_quantile_thresholds_hand_worked():
    # 5 values, linear interpolation: q40 at position 1.6 -> 0.1 + 0.6 * (0.5 - 0.1); q75 at position 3
    assert tier_thresholds([0.9, 0.0, 1.0, 0.5, 0.1]) == pytest.approx((0.34, 0.9))
    # 4 values: q40 at 1.2 -> 0.2 + 0.2 * 0.2; q75 at 2.25 -> 0.4 + 0.25 * 0.6
    assert tier_thresholds([0.0, 0.2, 0.4, 1.0]) == pytest.approx((0.24, 0.55))
    assert tier_thresholds([0.0, 0.2, 0.4, 1.0], quantiles=(0.5, 0.9)) == pytest.approx((0.3, 0.82))
    assert tier_thresholds([0.3]) == (0.3, 0.3)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=30))
def test_quantile_thresholds_match_numpy(values):
    low, high = tier_thresholds(values, (0.4, 0.75))
    assert low == pytest.approx(np.quantile(values, 0.4)) and high == pytest.approx(np.quantile(values, 0.75))
    assert low <= high


def test_assign_tier_boundaries_are_inclusive():
    thresholds = (0.24, 0.55)
    assert assign_tier(0.0, thresholds) == "hard"
    assert assign_tier(0.24, thresholds) == "hard"
    assert assign_tier(0.25, thresholds) == "medium"
    assert assign_tier(0.55, thresholds) == "medium"
    assert assign_tier(0.56, thresholds) == "easy"


def test_threshold_bad_input():
    with pytest.raises(ValueError, match="rbar_values is empty"):
        tier_thresholds([])
    with pytest.raises(ValueError, match="0 < hard < medium < 1, got hard=0.8, medium=0.5"):
        tier_thresholds([0.1], (0.8, 0.5))
    with pytest.raises(ValueError, match="rbar_values must be finite, got nan"):
        tier_thresholds([0.1, math.nan])
    with pytest.raises(ValueError, match="rbar and thresholds must be finite"):
        assign_tier(math.nan, (0.2, 0.5))
