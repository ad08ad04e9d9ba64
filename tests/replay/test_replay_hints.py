"""HintTrigger truth table and HintStats counters."""

from __future__ import annotations

import pytest

from avatar_core.replay import DifficultyTracker, HintStats, HintTrigger


def _tracker(groups: list[list[float]], kl: float | None) -> DifficultyTracker:
    tracker = DifficultyTracker()
    for group in groups:
        tracker.update("q", group, kl=kl)
    return tracker


ZEROS = [0.0, 0.0]

# (has_hint, groups, kl, use_kl_trigger, expected); tau_reward 0.2, tau_kl 0.01, streak 3
TABLE = [
    (False, [ZEROS] * 5, 0.0, True, (False, "")),  # no hint to give
    (True, [ZEROS] * 3, 1.0, True, (True, "zero_streak")),
    (True, [ZEROS] * 3, 1.0, False, (True, "zero_streak")),  # authors' default: streak only
    (True, [ZEROS] * 2, 1.0, True, (False, "")),  # streak 2, KL still high
    (True, [ZEROS] * 2, 0.005, True, (True, "low_reward_low_kl")),
    (True, [ZEROS] * 2, 0.005, False, (False, "")),  # KL trigger off
    (True, [[0.2]], 0.01, True, (True, "low_reward_low_kl")),  # both boundaries inclusive
    (True, [[0.25]], 0.0, True, (False, "")),  # Rbar above tau_reward
    (True, [[0.1]], 0.02, True, (False, "")),  # KL above tau_kl
    (True, [[0.1]], None, True, (False, "")),  # no KL known (beta = 0)
    (True, [], None, True, (False, "")),  # never seen
    (True, [ZEROS] * 4, 0.0, True, (True, "zero_streak")),  # both hold: the streak is named
    (True, [ZEROS, ZEROS, ZEROS, [1.0, 0.0]], 1.0, True, (False, "")),  # streak reset by a success
]


@pytest.mark.parametrize(("has_hint", "groups", "kl", "use_kl", "expected"), TABLE)
def test_hint_trigger_truth_table(has_hint, groups, kl, use_kl, expected):
    trigger = HintTrigger(zero_streak=3, use_kl_trigger=use_kl, tau_reward=0.2, tau_kl=0.01)
    assert trigger.decide("q", _tracker(groups, kl), has_hint) == expected


def test_streak_length_is_configurable():
    tracker = _tracker([ZEROS], kl=1.0)
    assert HintTrigger(zero_streak=1).decide("q", tracker, True) == (True, "zero_streak")
    assert HintTrigger(zero_streak=2).decide("q", tracker, True) == (False, "")


def test_bad_trigger_settings():
    with pytest.raises(ValueError, match="zero_streak must be a positive int, got 0"):
        HintTrigger(zero_streak=0)
    with pytest.raises(ValueError, match="tau_kl must be finite"):
        HintTrigger(tau_kl=float("nan"))


def test_hint_stats_counts_and_rates():
    stats = HintStats()
    assert stats.as_dict()["hint_prompt_rate"] == 0.0
    stats.record(True, "zero_streak", 8)
    stats.record(False, "", 8)
    stats.record(True, "low_reward_low_kl", 4)
    stats.record(True, "zero_streak", 8)
    assert stats.as_dict() == {
        "hint_prompts_checked": 4,
        "hint_prompts_hinted": 3,
        "hint_generations": 20,
        "hint_prompt_rate": 0.75,
        "hint_generation_rate": 20 / 28,
        "hint_reason_zero_streak": 2,
        "hint_reason_low_reward_low_kl": 1,
    }
    stats.reset()
    assert stats.as_dict()["hint_prompts_checked"] == 0 and stats.by_reason["zero_streak"] == 0
    with pytest.raises(ValueError, match="unknown hint reason 'bored'"):
        stats.record(True, "bored", 8)
