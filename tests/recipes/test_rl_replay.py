"""How the RL loop feeds replayed trajectories to the objective: the baseline Rbar is read before
the step's rewards are folded in, the std follows `replay_std`, and `offpolicy_mode: authors`
swaps whole fresh groups for replayed rows instead of adding them."""

from __future__ import annotations

import json

import pytest
import torch
from recipe_helpers import tiny_config

import avatar_core.recipes.rl as rl_recipe
from avatar_core.algos.advantages import replay_std
from avatar_core.replay.buffer import HierarchicalReplayBuffer
from avatar_core.replay.difficulty import DifficultyTracker

pytestmark = pytest.mark.slow


def _replay_config(project, mode: str):
    cfg = tiny_config(project)
    s1 = cfg.rl.s1
    s1.steps, s1.prompts_per_step, s1.group_size = 4, 2, 4
    s1.objective.offpolicy_mode = mode
    s1.buffer.min_size, s1.buffer.replay_per_step = 2, 3
    s1.hints.enabled = False
    return cfg


def test_replay_baseline_uses_rbar_from_before_the_step(project, monkeypatch):
    cfg = _replay_config(project, "separate")
    step = {"n": 0}
    history: list[tuple[int, str, float | None, float]] = []  # (step, prompt, rbar before, after)
    sampled: dict[int, list[str]] = {}
    used: dict[int, tuple[list[float], list[float], float]] = {}

    from avatar_core.models import generation  # run_rl imports generate_rollouts when it starts

    def counting_generate(*args, **kwargs):
        step["n"] += 1
        return generation_generate(*args, **kwargs)

    generation_generate = generation.generate_rollouts
    monkeypatch.setattr(generation, "generate_rollouts", counting_generate)

    real_update = DifficultyTracker.update

    def recording_update(self, prompt_id, rewards, kl=None, streak_rewards=None):
        before = self.rbar(prompt_id)
        real_update(self, prompt_id, rewards, kl=kl, streak_rewards=streak_rewards)
        history.append((step["n"], prompt_id, before, self.rbar(prompt_id)))

    real_sample = HierarchicalReplayBuffer.sample

    def recording_sample(self, n):
        trajs = real_sample(self, n)
        sampled[step["n"]] = [t.prompt_id for t in trajs]
        return trajs

    real_baseline = rl_recipe.baseline_advantages

    def recording_baseline(rewards, rbar, std, eps=1e-4):
        used[step["n"]] = (rewards.tolist(), rbar.tolist(), float(std))
        return real_baseline(rewards, rbar, std, eps)

    monkeypatch.setattr(DifficultyTracker, "update", recording_update)
    monkeypatch.setattr(HierarchicalReplayBuffer, "sample", recording_sample)
    monkeypatch.setattr(rl_recipe, "baseline_advantages", recording_baseline)
    rl_recipe.run_rl(cfg, "s1", progress=False)

    assert used, "no replayed batch was built"
    for s, (rewards, rbars, std) in used.items():
        for prompt, rbar in zip(sampled[s], rbars, strict=True):
            # Rbar at the start of step s: the value before this step's update, or the value after
            # the prompt's last update in an earlier step when this step did not visit it
            this_step = [before for st, p, before, _ in history if st == s and p == prompt]
            earlier = [after for st, p, _, after in history if st < s and p == prompt]
            expected = this_step[0] if this_step else earlier[-1]
            assert rbar == pytest.approx(expected), (s, prompt)
        assert std == pytest.approx(replay_std(torch.tensor(rewards)))


def test_authors_mode_swaps_fresh_groups_for_replayed_rows(project):
    cfg = _replay_config(project, "authors")
    cfg.rl.s1.objective.authors_replay_share = 0.5
    rl_recipe.run_rl(cfg, "s1", progress=False)
    records = [json.loads(x) for x in (project / "runs" / "s1" / "log.jsonl").read_text().splitlines()]
    group = cfg.rl.s1.group_size
    swapped = [r for r in records if r["replay_rows"] > 0]
    assert swapped, "the buffer never reached min_size"
    for r in swapped:
        # half of the 2 groups (4 rows) is replaced by 4 replayed rows; augmentation rows of the
        # kept group may come on top
        assert r["replay_rows"] == group
        assert r["fresh_rows_trained"] - r["augment_rows"] <= group
    for r in records:
        if r["replay_rows"] == 0:
            assert r["fresh_rows_trained"] == 2 * group + r["augment_rows"]


def test_separate_mode_adds_replayed_rows_to_every_fresh_group(project):
    cfg = _replay_config(project, "separate")
    rl_recipe.run_rl(cfg, "s1", progress=False)
    records = [json.loads(x) for x in (project / "runs" / "s1" / "log.jsonl").read_text().splitlines()]
    assert any(r["replay_rows"] == 3 for r in records)
    assert all(r["fresh_rows_trained"] == 2 * cfg.rl.s1.group_size + r["augment_rows"] for r in records)
