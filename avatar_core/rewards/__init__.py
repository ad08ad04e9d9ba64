"""Reward callables `f(completions, **columns) -> list[float | None]`, their registry and the weighted sum.

See DESIGN.md section 1 "Rewards". Nothing in this package loads a model: the VLM judge lives in
`avatar_core.models.judge` and plugs in through the `Judge` protocol.
"""

from avatar_core.rewards.combine import REWARDS, build_reward_fns, combine_rewards
from avatar_core.rewards.functions import (
    RewardFn,
    accuracy_reward,
    format_reward,
    make_judge_reward,
    numeric_score,
    self_reward,
)
from avatar_core.rewards.judge import Judge, RuleJudge, parse_judge_scores
from avatar_core.rewards.judge_cache import JudgeCache
from avatar_core.rewards.parsing import (
    ParsedCompletion,
    completion_text,
    normalise_choice,
    numbers_in,
    parse_completion,
    parse_number,
)

__all__ = [
    "REWARDS",
    "Judge",
    "JudgeCache",
    "ParsedCompletion",
    "RewardFn",
    "RuleJudge",
    "accuracy_reward",
    "build_reward_fns",
    "combine_rewards",
    "completion_text",
    "format_reward",
    "make_judge_reward",
    "normalise_choice",
    "numbers_in",
    "numeric_score",
    "parse_completion",
    "parse_judge_scores",
    "parse_number",
    "self_reward",
]
