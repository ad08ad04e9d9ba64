"""HintTrigger truth table and HintStats counters."""

from __future__ import annotations

import pytest

from avatar_core.replay import DifficultyTracker, HintStats, HintTrigger
from avatar_core.replay.hints import hint_outcomes


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


def test_streak_on_accuracy_sees_a_prompt_the_format_reward_keeps_above_zero():
    """Total reward 0.5 (well formed, wrong) never starts a total-reward streak; the accuracy part does."""
    on_total, on_accuracy = DifficultyTracker(), DifficultyTracker()
    for _ in range(3):
        on_total.update("q", [0.5, 0.5])
        on_accuracy.update("q", [0.5, 0.5], streak_rewards=[0.0, 0.0])
    assert on_total.zero_streak("q") == 0 and on_accuracy.zero_streak("q") == 3
    assert on_accuracy.rbar("q") == 0.5  # Rbar still follows the total reward
    trigger = HintTrigger(zero_streak=3, use_kl_trigger=False)
    assert trigger.decide("q", on_total, True) == (False, "")
    assert trigger.decide("q", on_accuracy, True) == (True, "zero_streak")
    on_accuracy.update("q", [1.0, 0.5], streak_rewards=[1.0, 0.0])  # one correct answer ends it
    assert on_accuracy.zero_streak("q") == 0
    with pytest.raises(ValueError, match="prompt 'q': rewards must be finite"):
        on_accuracy.update("q", [0.5], streak_rewards=[float("nan")])


def test_hint_outcomes_hand_worked():
    history = {
        # hinted at its 3rd visit (after two failed groups), correct half the time with the hint,
        # then 0.75 without it
        "a": [[1, 0, 0.0], [5, 0, 0.0], [9, 1, 0.5], [14, 0, 0.75]],
        "b": [[2, 0, 0.25], [7, 1, 0.0], [11, 1, 0.25]],  # hinted twice, never seen after
        "c": [[3, 0, 1.0], [8, 0, 1.0]],  # never hinted: not part of the outcome
    }
    out = hint_outcomes(history)
    assert out["hinted_prompts"] == 2
    assert out["hint_visit_rate"] == pytest.approx(3 / 9)
    assert out["hinted_acc_before"] == pytest.approx((0.0 + 0.0 + 0.25) / 3)
    assert out["hinted_acc_with_hint"] == pytest.approx((0.5 + 0.0 + 0.25) / 3)
    assert out["hinted_acc_after"] == pytest.approx(0.75)
    assert out["hinted_groups"] == 3 and out["hinted_groups_after"] == 1
    none = hint_outcomes({"c": history["c"]})
    assert (
        none["hinted_prompts"] == 0 and none["hinted_acc_before"] is None and none["hint_visit_rate"] == 0.0
    )
    assert hint_outcomes({})["hint_visit_rate"] == 0.0
    with pytest.raises(ValueError, match="hint history of prompt 'x'"):
        hint_outcomes({"x": [[1, 0]]})
