"""The reward registry and the weighted sum r_i = sum_k w_k R_k(o_i).

Rewards are chosen by name from `REWARDS` (format, accuracy, self, judge) with the weights of the
stage in params.yaml (`rl.<stage>.rewards`): the paper's presets (S1 = 0.5 format + 0.5 accuracy,
S2 adds self, S3 adds judge) are values there, nothing here hard-codes them.

None from a reward (it does not apply to that completion) counts as 0 in the total, as TRL's
nansum does, and stays None in the per-reward values returned for metrics. A NaN or infinite
reward is an error naming the reward and the index instead of being summed silently.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from avatar_core.registry import Registry
from avatar_core.rewards.functions import (
    RewardFn,
    accuracy_reward,
    format_reward,
    make_judge_reward,
    self_reward,
)
from avatar_core.rewards.judge import Judge
from avatar_core.rewards.judge_cache import JudgeCache

RewardFactory = Callable[..., RewardFn]
REWARDS: Registry[RewardFactory] = Registry("reward")


@REWARDS.register("format")
def _format(options: Mapping[str, Any], judge: Judge | None = None) -> RewardFn:
    return format_reward


@REWARDS.register("accuracy")
def _accuracy(options: Mapping[str, Any], judge: Judge | None = None) -> RewardFn:
    numeric_mode = options.get("numeric_mode", "dense")
    numeric_tol = options.get("numeric_tol", 1e-3)
    if numeric_mode not in ("dense", "binary"):
        raise ValueError(f"reward option numeric_mode must be 'dense' or 'binary', got {numeric_mode!r}")

    def accuracy(completions: Sequence[Any], **columns: Any) -> list[float | None]:
        columns = {k: v for k, v in columns.items() if k not in ("numeric_mode", "numeric_tol")}
        return accuracy_reward(completions, numeric_mode=numeric_mode, numeric_tol=numeric_tol, **columns)

    accuracy.__name__ = f"accuracy_reward[{numeric_mode}]"
    return accuracy


@REWARDS.register("self")
def _self(options: Mapping[str, Any], judge: Judge | None = None) -> RewardFn:
    return self_reward


@REWARDS.register("judge")
def _judge(options: Mapping[str, Any], judge: Judge | None = None) -> RewardFn:
    if judge is None:
        raise ValueError("reward 'judge' needs a judge object (RuleJudge or a model judge); none was given")
    cache = options.get(
        "judge_score_cache"
    )  # a JudgeCache object (RewardOptions.judge_cache is its on/off flag)
    return make_judge_reward(judge, cache=cache if isinstance(cache, JudgeCache) else None)


def build_reward_fns(
    weights: Mapping[str, float],
    *,
    numeric_mode: str = "dense",
    numeric_tol: float = 1e-3,
    judge: Judge | None = None,
    judge_cache: JudgeCache | None = None,
) -> dict[str, RewardFn]:
    """One reward callable per name in `weights` (unknown names raise, listing the valid ones).

    `judge_cache`, when given, caches and times the judge's scores (see `rewards.judge_cache`).

    >>> sorted(build_reward_fns({"format": 0.5, "accuracy": 0.5}))
    ['accuracy', 'format']
    """
    options = {"numeric_mode": numeric_mode, "numeric_tol": numeric_tol, "judge_score_cache": judge_cache}
    return {name: REWARDS.get(name)(options, judge=judge) for name in weights}


def _check_value(value: Any, name: str, index: int) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"reward {name!r} returned {value!r} at index {index}; expected a float or None")
    if not math.isfinite(value):
        raise ValueError(f"reward {name!r} returned {value} at index {index}; rewards must be finite")
    return float(value)


def combine_rewards(
    completions: Sequence[Any],
    columns: Mapping[str, Sequence[Any]],
    weights: Mapping[str, float],
    fns: Mapping[str, RewardFn],
) -> tuple[list[float], dict[str, list[float | None]]]:
    """Total reward per completion and each reward's own values (None kept) for metrics.

    >>> fns = build_reward_fns({"format": 0.5, "accuracy": 0.5})
    >>> totals, per_reward = combine_rewards(
    ...     ["<think>.</think><answer>B</answer>", "B"],
    ...     {"answer": ["B", "B"], "answer_type": ["mc", "mc"], "choices": [["cat", "dog"]] * 2},
    ...     {"format": 0.5, "accuracy": 0.5}, fns)
    >>> totals, per_reward["format"]
    ([1.0, 0.0], [1.0, 0.0])
    """
    n = len(completions)
    for column, values in columns.items():
        if len(values) != n:
            raise ValueError(f"column {column!r} has {len(values)} values for {n} completions")
    totals = [0.0] * n
    per_reward: dict[str, list[float | None]] = {}
    for name, weight in weights.items():
        if name not in fns:
            raise KeyError(f"no reward function for {name!r}; built: {', '.join(sorted(fns)) or 'none'}")
        if not math.isfinite(weight):
            raise ValueError(f"weight of reward {name!r} must be finite, got {weight}")
        values = list(fns[name](completions, **columns))
        if len(values) != n:
            raise ValueError(f"reward {name!r} returned {len(values)} values for {n} completions")
        checked = [_check_value(value, name, index) for index, value in enumerate(values)]
        for index, value in enumerate(checked):
            if value is not None:  # None: the reward does not apply, counts as 0 (TRL's nansum)
                totals[index] += weight * value
        per_reward[name] = checked
    return totals, per_reward
