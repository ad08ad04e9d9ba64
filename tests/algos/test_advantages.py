"""Group, baseline and augmented advantages: hand-worked examples, TRL's formula, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from avatar_core.algos.advantages import (
    augmented_group_advantages,
    baseline_advantages,
    group_advantages,
    replay_std,
)

EPS = 1e-4


def test_two_groups_by_hand():
    rewards = torch.tensor([1.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.5], dtype=torch.float64)
    ids = torch.tensor([0, 0, 0, 0, 1, 1, 1])
    adv, stats = group_advantages(rewards, ids)
    # group 0: mean 0.5, unbiased std sqrt(4 * 0.25 / 3) = sqrt(1/3); A = +-0.5 / (sqrt(1/3) + 1e-4)
    a = 0.5 / (math.sqrt(1 / 3) + EPS)
    expected = torch.tensor([a, -a, a, -a, 0.0, 0.0, 0.0], dtype=torch.float64)
    assert torch.allclose(adv, expected, rtol=1e-12)
    # group 1 has zero variance: exact zeros
    assert stats == {"zero_adv_group_frac": 0.5, "n_groups": 2.0}


def test_ids_in_any_order_and_value():
    rewards = torch.tensor([3.0, 1.0, 0.0, 2.0])
    ids = torch.tensor([7, 42, 7, 42])
    adv, stats = group_advantages(rewards, ids)
    # group 7: {3, 0}: mean 1.5, unbiased std sqrt(2 * 1.5^2) = 2.1213; group 42: {1, 2}: mean 1.5, std 0.7071
    expected = torch.tensor(
        [1.5 / (math.sqrt(4.5) + EPS), -0.5 / (math.sqrt(0.5) + EPS), -1.5 / (math.sqrt(4.5) + EPS),
         0.5 / (math.sqrt(0.5) + EPS)]
    )  # fmt: skip
    assert torch.allclose(adv, expected)
    assert adv.dtype == torch.float32
    assert stats == {"zero_adv_group_frac": 0.0, "n_groups": 2.0}


def test_single_member_group_gets_zero():
    adv, stats = group_advantages(torch.tensor([0.7, 1.0, 0.0]), torch.tensor([5, 6, 6]))
    assert adv[0].item() == 0.0
    assert stats["zero_adv_group_frac"] == pytest.approx(0.5)


def test_zero_variance_is_exactly_zero_even_where_trl_rounds():
    rewards = torch.full((8,), 0.7, dtype=torch.float32)  # a group of G = 8 equal rewards
    # TRL's formula amplifies the rounding error of the mean by 1 / 1e-4 into a non-zero advantage
    trl = (rewards - rewards.mean()) / (rewards.std() + EPS)
    assert bool((trl != 0).any())
    adv, stats = group_advantages(rewards, torch.zeros(8, dtype=torch.long))
    assert torch.equal(adv, torch.zeros(8))
    assert stats["zero_adv_group_frac"] == 1.0


def test_empty_batch():
    adv, stats = group_advantages(torch.zeros(0), torch.zeros(0, dtype=torch.long))
    assert adv.shape == (0,)
    assert stats == {"zero_adv_group_frac": 0.0, "n_groups": 0.0}


@settings(max_examples=50, deadline=None)
@given(
    n_groups=st.integers(1, 6),
    group_size=st.integers(2, 8),
    seed=st.integers(0, 10_000),
    binary=st.booleans(),
)
def test_matches_trl_formula_on_contiguous_groups(n_groups, group_size, seed, binary):
    gen = torch.Generator().manual_seed(seed)
    rewards = torch.rand(n_groups * group_size, generator=gen, dtype=torch.float64)  # [B]
    if binary:
        rewards = (rewards > 0.5).double()  # [B] many collapsed groups
    grouped = rewards.view(n_groups, group_size)  # [n, G]
    mean = grouped.mean(dim=1).repeat_interleave(group_size)  # [B]
    std = grouped.std(dim=1).repeat_interleave(group_size)  # [B]
    trl = (rewards - mean) / (std + EPS)  # [B] TRL's GRPOTrainer, scale_rewards="group"
    ids = torch.arange(n_groups).repeat_interleave(group_size)  # [B]
    perm = torch.randperm(rewards.shape[0], generator=gen)  # shuffled rows: grouping is by id, not position
    adv, stats = group_advantages(rewards[perm], ids[perm])
    assert torch.allclose(adv, trl[perm], atol=1e-9)
    collapsed = (grouped.max(dim=1).values == grouped.min(dim=1).values).double().mean().item()
    assert stats["zero_adv_group_frac"] == pytest.approx(collapsed)
    assert stats["n_groups"] == n_groups


def test_baseline_by_hand():
    rewards = torch.tensor([1.0, 0.0], dtype=torch.float64)
    rbar = torch.tensor([0.25, 0.25], dtype=torch.float64)
    adv = baseline_advantages(rewards, rbar, 0.5)
    assert torch.allclose(adv, torch.tensor([0.75 / 0.5001, -0.25 / 0.5001], dtype=torch.float64))
    per_row = baseline_advantages(rewards, rbar, torch.tensor([0.5, 0.0]))
    assert torch.allclose(per_row, torch.tensor([0.75 / 0.5001, -0.25 / EPS], dtype=torch.float64))


def test_augmented_group_by_hand():
    fresh = torch.tensor([0.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    replay = torch.tensor([1.0, 1.0], dtype=torch.float64)
    fresh_adv, replay_adv = augmented_group_advantages(fresh, replay)
    # union of 6: mean 1/3; squared deviations 4 * 1/9 + 2 * 4/9 = 4/3; unbiased var 4/15
    std = math.sqrt(4 / 15)
    assert torch.allclose(fresh_adv, torch.full((4,), -(1 / 3) / (std + EPS), dtype=torch.float64))
    assert torch.allclose(replay_adv, torch.full((2,), (2 / 3) / (std + EPS), dtype=torch.float64))


def test_augmented_group_without_replays_is_grpo_and_constant_union_is_zero():
    fresh = torch.tensor([1.0, 0.0, 0.5])
    fresh_adv, replay_adv = augmented_group_advantages(fresh, torch.zeros(0))
    assert torch.equal(fresh_adv, group_advantages(fresh, torch.zeros(3, dtype=torch.long))[0])
    assert replay_adv.shape == (0,)
    fresh_adv, replay_adv = augmented_group_advantages(torch.ones(3), torch.ones(2))
    assert torch.equal(fresh_adv, torch.zeros(3)) and torch.equal(replay_adv, torch.zeros(2))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rewards_are_rejected(bad):
    rewards = torch.tensor([1.0, bad, 0.0])
    with pytest.raises(ValueError, match=r"group_advantages: rewards must be finite, got .* at index 1"):
        group_advantages(rewards, torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"baseline_advantages: rewards must be finite"):
        baseline_advantages(rewards, torch.zeros(3), 1.0)
    with pytest.raises(ValueError, match=r"baseline_advantages: rbar must be finite"):
        baseline_advantages(torch.zeros(3), rewards, 1.0)
    with pytest.raises(ValueError, match=r"augmented_group_advantages: replay_rewards must be finite"):
        augmented_group_advantages(torch.zeros(2), rewards)


def test_bad_shapes_and_types():
    with pytest.raises(ValueError, match=r"group_advantages: group_ids has shape \(2,\), expected \(3,\)"):
        group_advantages(torch.zeros(3), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="group_advantages: group_ids must be an integer tensor"):
        group_advantages(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match=r"group_advantages: rewards must be 1-D \[B\], got shape \(1, 3\)"):
        group_advantages(torch.zeros(1, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="group_advantages: rewards must be a floating-point tensor"):
        group_advantages(torch.zeros(3, dtype=torch.long), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"baseline_advantages: rbar has shape \(2,\), expected \(3,\)"):
        baseline_advantages(torch.zeros(3), torch.zeros(2), 1.0)
    with pytest.raises(ValueError, match=r"baseline_advantages: std has shape \(2,\), expected \(3,\)"):
        baseline_advantages(torch.zeros(3), torch.zeros(3), torch.ones(2))
    with pytest.raises(ValueError, match="baseline_advantages: std must be >= 0"):
        baseline_advantages(torch.zeros(3), torch.zeros(3), -1.0)
    with pytest.raises(ValueError, match="augmented_group_advantages: fresh_rewards is empty"):
        augmented_group_advantages(torch.zeros(0), torch.ones(2))
    with pytest.raises(ValueError, match="group_advantages: eps must be a finite number > 0, got 0"):
        group_advantages(torch.zeros(3), torch.zeros(3, dtype=torch.long), eps=0)


def test_replay_std_hand_worked():
    # rewards 1, 0, 0, 1: mean 0.5, unbiased variance 4 * 0.25 / 3 = 1/3
    assert replay_std(torch.tensor([1.0, 0.0, 0.0, 1.0])) == pytest.approx((1 / 3) ** 0.5)
    assert replay_std(torch.tensor([0.75])) == 1.0  # a single row: the authors' std of 1
    assert replay_std(torch.tensor([0.5, 0.5, 0.5])) == 1.0  # all equal: 1, never 0
    # the example that motivated it: r = 1, Rbar = 0.25 as a lone replayed row gives 0.75, not 7,500
    adv = baseline_advantages(torch.tensor([1.0]), torch.tensor([0.25]), replay_std(torch.tensor([1.0])))
    assert adv.item() == pytest.approx(0.75 / (1 + 1e-4))
    with pytest.raises(ValueError, match="replay_std: rewards is empty"):
        replay_std(torch.zeros(0))
    with pytest.raises(ValueError, match="replay_std: rewards must be finite"):
        replay_std(torch.tensor([float("nan"), 1.0]))
