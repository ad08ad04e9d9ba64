"""One RL update of the recipe against the plain GRPO formula on the same rollouts.

With `objective: grpo`, TAS off, no replay and no hints, the recipe's update path (rewards ->
group advantages -> rows -> collate -> objective_step) must give the gradient of

    J = 1/N sum_i 1/L_i sum_t min(rho_it A_i, clip(rho_it, 1-eps, 1+eps) A_i),
    A_i = (r_i - mean_g r) / (std_g r + 1e-4),  rho_it = exp(logp_it - logp_behaviour_it)

written out here token by token, for both the fused kernel and the plain path.
"""

from __future__ import annotations

import pytest
import torch
from recipe_helpers import tiny_config

from avatar_core.algos.advantages import group_advantages
from avatar_core.recipes.common import load_samples, open_clips
from avatar_core.recipes.policy import load_stage_policy
from avatar_core.recipes.rl import objective_params
from avatar_core.recipes.rl_batch import collate, rows_from_rollouts
from avatar_core.recipes.rl_parts import Distributed, objective_step, reward_columns, stage_rewards
from avatar_core.rewards import combine_rewards


def _grpo_config(project, fused: bool):
    cfg = tiny_config(project)
    s1 = cfg.rl.s1
    s1.objective.name, s1.objective.beta, s1.objective.use_fused_kernel = "grpo", 0.0, fused
    s1.tas.enabled, s1.buffer.enabled, s1.hints.enabled = False, False, False
    return cfg


def _plain_grpo_loss(bundle, inputs, rollouts, rewards, eps: float) -> torch.Tensor:
    from avatar_core.models.generation import completion_logprobs

    logp = completion_logprobs(
        bundle, inputs, rollouts.completion_ids, rollouts.completion_mask, rollouts.prompt_index
    )  # [N, L]
    groups: dict[int, list[float]] = {}
    for i, g in enumerate(rollouts.prompt_index.tolist()):
        groups.setdefault(g, []).append(rewards[i])
    total = torch.zeros(())
    n = logp.shape[0]
    for i in range(n):
        g = groups[int(rollouts.prompt_index[i])]
        mean = sum(g) / len(g)
        std = (sum((r - mean) ** 2 for r in g) / (len(g) - 1)) ** 0.5
        adv = 0.0 if std == 0 else (rewards[i] - mean) / (std + 1e-4)
        length = int(rollouts.completion_mask[i].sum())
        row = torch.zeros(())
        for t in range(length):
            rho = torch.exp(logp[i, t] - rollouts.behaviour_logp[i, t])
            row = row + torch.minimum(rho * adv, torch.clamp(rho, 1 - eps, 1 + eps) * adv)
        total = total + row / length
    return -total / n


@pytest.mark.slow
@pytest.mark.parametrize("fused, head_reachable", [(True, True), (False, True), (True, False)])
def test_grpo_update_matches_plain_formula(project, fused, head_reachable, monkeypatch):
    from avatar_core.data.schema import render_messages
    from avatar_core.models.generation import generate_rollouts
    from avatar_core.models.inputs import encode_prompts

    cfg = _grpo_config(project, fused)
    scfg = cfg.rl.s1
    bundle = load_stage_policy(cfg, "sft")
    if not head_reachable:  # models whose LM head cannot be reached fall back to full-model log-probs
        monkeypatch.setattr(type(bundle), "lm_head", lambda self: None)
    clips = open_clips(cfg)
    batch = load_samples(cfg, "train", scfg.tasks)[:2]
    inputs = encode_prompts(bundle, [render_messages(s) for s in batch], clips.get_many(batch))
    torch.manual_seed(3)
    with torch.no_grad():
        rollouts = generate_rollouts(bundle, inputs, group_size=4, max_new_tokens=10)
    # Rewards that vary inside each group, so the advantages are not all zero.
    rewards = [0.1 * (i % 4) + 0.05 * i for i in range(rollouts.completion_ids.shape[0])]
    advantages, _ = group_advantages(torch.tensor(rewards), rollouts.prompt_index)
    rows = rows_from_rollouts(batch, [False, False], rollouts, rewards, advantages)
    tb = collate(bundle, rows, clips, {}, bundle.tokenizer.pad_token_id)

    bundle.model.zero_grad()
    loss, _ = objective_step(bundle, None, tb, objective_params(scfg), scfg, Distributed())
    recipe_grads = {n: p.grad.clone() for n, p in bundle.model.named_parameters() if p.grad is not None}

    bundle.model.zero_grad()
    plain = _plain_grpo_loss(bundle, inputs, rollouts, rewards, scfg.objective.eps_low)
    plain.backward()
    assert loss == pytest.approx(float(plain.detach()), rel=1e-4, abs=1e-6)
    assert recipe_grads, "the update produced no gradient"
    nonzero = 0
    for name, p in bundle.model.named_parameters():
        if p.grad is None:
            assert name not in recipe_grads
            continue
        torch.testing.assert_close(recipe_grads[name], p.grad, rtol=1e-4, atol=1e-6, msg=name)
        nonzero += int(p.grad.abs().sum() > 0)
    assert nonzero > 0


def test_reward_columns_follow_samples(project):
    cfg = tiny_config(project)
    samples = load_samples(cfg, "train", cfg.rl.s1.tasks)[:3]
    cols = reward_columns(samples)
    assert cols["id"] == [s.id for s in samples]
    assert cols["answer"] == [s.answer for s in samples]
    fns, weights, judge_cache = stage_rewards(cfg.rl.s1)
    assert judge_cache is None  # S1 has no judge reward
    texts = [s.reasoning for s in samples]  # the reference traces are correct and well formed
    totals, per = combine_rewards(texts, cols, weights, fns)
    assert per["format"] == [1.0] * 3 and per["accuracy"] == [1.0] * 3
    assert totals == pytest.approx([sum(weights.values())] * 3)
