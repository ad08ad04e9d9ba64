"""The reward registry and the weighted combination r_i = sum_k w_k R_k(o_i)."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from avatar_core.config import REWARD_NAMES, RewardOptions, load_config
from avatar_core.rewards.combine import REWARDS, build_reward_fns, combine_rewards
from avatar_core.rewards.judge import RuleJudge

CHOICES = ["cat", "dog", "bird"]


def done(answer: str, think: str = "I see 2 flashes") -> str:
    return f"<think>{think}</think><answer>{answer}</answer>"


COMPLETIONS = [done("B"), done("b"), done("A"), "B", done("C", think="no idea")]
COLUMNS = {
    "id": ["p", "p", "p", "p", "p"],
    "answer": ["B"] * 5,
    "answer_type": ["mc"] * 5,
    "choices": [CHOICES] * 5,
    "facts": [json.dumps({"count": 2})] * 4 + ["{}"],
    "video": ["clip.mp4"] * 5,
    "question": ["How many flashes?"] * 5,
    "task": ["count_flashes"] * 5,  # an extra column every reward must ignore
}


def test_registry_matches_the_config_names() -> None:
    assert REWARDS.names() == sorted(REWARD_NAMES)


def test_stage_presets_from_weights() -> None:
    s1 = {"format": 0.5, "accuracy": 0.5}
    totals, per_reward = combine_rewards(COMPLETIONS, COLUMNS, s1, build_reward_fns(s1))
    # format: 1 1 1 0 1; accuracy: 1 1 0 0 0
    assert totals == [1.0, 1.0, 0.5, 0.0, 0.5]
    assert per_reward == {"format": [1.0, 1.0, 1.0, 0.0, 1.0], "accuracy": [1.0, 1.0, 0.0, 0.0, 0.0]}

    s3 = {"format": 0.25, "accuracy": 0.25, "self": 0.25, "judge": 0.25}
    totals, per_reward = combine_rewards(COMPLETIONS, COLUMNS, s3, build_reward_fns(s3, judge=RuleJudge()))
    # self: votes B, B, A, C (the untagged 'B' has no answer) -> label B: 1 1 0 0 0
    # judge: count 2 stated in the think of 0..2, malformed 3 -> 0, no facts for 4 -> None
    assert per_reward["self"] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert per_reward["judge"] == [1.0, 1.0, 1.0, 0.0, None]
    assert totals == [1.0, 1.0, 0.5, 0.0, 0.25]


def test_none_counts_as_zero_in_the_total_but_stays_none_in_metrics() -> None:
    fns = {"a": lambda completions, **_: [None, 1.0], "b": lambda completions, **_: [None, None]}
    totals, per_reward = combine_rewards(["x", "y"], {}, {"a": 2.0, "b": 3.0}, fns)
    assert totals == [0.0, 2.0]
    assert per_reward == {"a": [None, 1.0], "b": [None, None]}


def test_binary_numeric_option_reaches_accuracy() -> None:
    columns = {"answer": ["100"], "answer_type": ["numeric"], "choices": [[]]}
    dense = build_reward_fns({"accuracy": 1.0})
    binary = build_reward_fns({"accuracy": 1.0}, numeric_mode="binary", numeric_tol=1e-3)
    assert combine_rewards([done("99")], columns, {"accuracy": 1.0}, dense)[0] == [pytest.approx(0.99)]
    assert combine_rewards([done("99")], columns, {"accuracy": 1.0}, binary)[0] == [0.0]


def test_registry_factories_take_reward_options() -> None:
    options = RewardOptions(numeric_mode="binary", numeric_tol=0.05).model_dump()
    accuracy = REWARDS.get("accuracy")(options)
    assert accuracy([done("98")], answer=["100"], answer_type=["numeric"], choices=[[]]) == [1.0]
    assert REWARDS.get("judge")(options, judge=RuleJudge())(
        [done("A")], facts=['{"count": 2}'], video=[""], question=["q"]
    ) == [1.0]


def constant_reward(values: list[float | None]):
    """A reward callable that returns fixed values, whatever the completions."""

    def reward(completions: list[str], **columns: object) -> list[float | None]:
        return list(values)

    return reward


def test_random_weights_match_a_plain_weighted_sum() -> None:
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(1, 9)
        table = {f"r{k}": [rng.choice([None, rng.uniform(-1, 2)]) for _ in range(n)] for k in range(3)}
        weights = {name: rng.uniform(0, 2) for name in table}
        fns = {name: constant_reward(values) for name, values in table.items()}
        totals, per_reward = combine_rewards(["c"] * n, {}, weights, fns)
        expected = [sum(weights[k] * (table[k][i] or 0.0) for k in table) for i in range(n)]
        assert totals == pytest.approx(expected)
        assert per_reward == table


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_reward_is_rejected_naming_reward_and_index(bad: float) -> None:
    fns = {"format": lambda completions, **_: [1.0, 1.0], "broken": lambda completions, **_: [0.5, bad]}
    with pytest.raises(ValueError, match=rf"reward 'broken' returned {bad} at index 1"):
        combine_rewards(["x", "y"], {}, {"format": 1.0, "broken": 1.0}, fns)


def test_wrong_length_and_wrong_type_are_rejected() -> None:
    fns = {"short": lambda completions, **_: [1.0], "text": lambda completions, **_: ["1.0", 1.0]}
    with pytest.raises(ValueError, match="reward 'short' returned 1 values for 2 completions"):
        combine_rewards(["x", "y"], {}, {"short": 1.0}, fns)
    with pytest.raises(
        ValueError, match=r"reward 'text' returned '1.0' at index 0; expected a float or None"
    ):
        combine_rewards(["x", "y"], {}, {"text": 1.0}, fns)
    with pytest.raises(ValueError, match="column 'answer' has 1 values for 2 completions"):
        combine_rewards(["x", "y"], {"answer": ["A"]}, {"short": 1.0}, fns)
    with pytest.raises(ValueError, match="weight of reward 'short' must be finite, got nan"):
        combine_rewards(["x"], {}, {"short": math.nan}, fns)


def test_unknown_reward_name_lists_the_valid_names() -> None:
    with pytest.raises(KeyError, match="unknown reward 'length'; valid names: accuracy, format, judge, self"):
        build_reward_fns({"format": 1.0, "length": 1.0})
    with pytest.raises(KeyError, match="no reward function for 'self'; built: accuracy, format"):
        combine_rewards(["x"], {}, {"self": 1.0}, build_reward_fns({"format": 1.0, "accuracy": 1.0}))


def test_judge_reward_without_a_judge_is_an_error() -> None:
    with pytest.raises(ValueError, match="reward 'judge' needs a judge object"):
        build_reward_fns({"judge": 1.0})
    with pytest.raises(ValueError, match="numeric_mode must be 'dense' or 'binary', got 'soft'"):
        build_reward_fns({"accuracy": 1.0}, numeric_mode="soft")


def test_every_stage_of_the_repository_params_builds_its_rewards() -> None:
    cfg = load_config(Path(__file__).resolve().parents[2] / "params.yaml")
    for stage in ("s1", "s2", "s3"):
        scfg = cfg.rl.stage(stage)
        options = scfg.reward_options
        fns = build_reward_fns(
            scfg.rewards,
            numeric_mode=options.numeric_mode,
            numeric_tol=options.numeric_tol,
            judge=RuleJudge(),
        )
        totals, per_reward = combine_rewards(COMPLETIONS, COLUMNS, scfg.rewards, fns)
        assert set(per_reward) == set(scfg.rewards)
        assert all(0.0 <= total <= sum(scfg.rewards.values()) for total in totals)
        assert totals[0] == pytest.approx(sum(scfg.rewards.values()))  # the right, well-formed answer
