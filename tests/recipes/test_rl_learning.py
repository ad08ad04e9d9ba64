"""RL really learns on the tiny default: parameters move and the reward rises.

From the session's SFT checkpoint (format learned, answers near chance) fifteen S1 steps of
AVATAR with format + accuracy rewards must raise the mean reward: the last five steps against the
first five, by more than the step-to-step noise (twice the standard error of the difference).
The task is learnable by a tiny model from reward alone: a consistent format, and answer
statistics the group advantages reward.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from recipe_helpers import tiny_config
from safetensors.torch import load_file

from avatar_core.recipes.rl import run_rl


def _mean_and_se(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var / len(values))


@pytest.mark.slow
def test_rl_changes_parameters_and_raises_reward(project):
    cfg = tiny_config(project)
    s1 = cfg.rl.s1
    s1.steps, s1.prompts_per_step, s1.group_size = 15, 4, 8
    s1.optim.lr = 1e-3
    s1.generation.max_new_tokens = 24
    s1.rewards = {"format": 0.5, "accuracy": 0.5}
    result = run_rl(cfg, "s1", progress=False)
    assert result["steps"] == 15 and result["completions"] == 15 * 4 * 8

    records = [json.loads(line) for line in (project / "runs" / "s1" / "log.jsonl").read_text().splitlines()]
    rewards = [r["reward_mean"] for r in records]
    first, se_first = _mean_and_se(rewards[:5])
    last, se_last = _mean_and_se(rewards[-5:])
    assert last - first > 2 * math.hypot(se_first, se_last), rewards

    before = load_file(str(project / "checkpoints" / "sft" / "model" / "model.safetensors"))
    after = load_file(str(project / "checkpoints" / "rl" / "s1" / "model" / "model.safetensors"))
    assert before.keys() == after.keys()
    unchanged = {k for k in before if torch.equal(before[k], after[k])}
    # Every weight moves: language model, head, vision and audio towers. The audio tower's
    # bos/eos embedding is the one exception: the thinker's forward never uses it.
    assert unchanged <= {"audio_tower.audio_bos_eos_token.weight"}, sorted(unchanged)
