"""Advantages: GRPO group normalisation, the replay baseline, and collapsed-group augmentation.

- `group_advantages`: A_i = (r_i - mean_g) / (std_g + eps) within each group g of completions of
  one prompt (GRPO, TRL with scale_rewards="group"); std is the unbiased std (torch.std).
- `augmented_group_advantages`: the paper's fix for advantage collapse. A fresh group whose
  rewards are all equal has A = 0 everywhere; it is joined by replayed trajectories of the same
  prompt with other rewards and the same formula is applied over the union.
- `baseline_advantages`: replayed trajectories that have no fresh group use the prompt's moving
  average Rbar(q) as the baseline: A = (r - Rbar(q)) / (std + eps). The authors' released code
  additionally multiplies these by alpha (`objective.offpolicy_mode: authors`); the caller does
  that, here the formula stays the paper's.
- `replay_std`: the std those baseline advantages divide by: the unbiased std of the replayed
  batch's rewards, and 1 when that batch has one row (the authors' convention) or rewards that are
  all equal (our extension of it: a std of 0 would turn r - Rbar = 0.75 into A = 7,500).

One deliberate numerical difference from TRL: a group whose rewards are exactly equal (or that
has a single member) gets A = 0 exactly. TRL computes (r - mean) / (0 + 1e-4), which multiplies
the rounding error of the mean by 10^4 into a small non-zero advantage (eight float32 rewards of
0.7 get A = 6e-4); we keep the paper's definition: zero variance, zero advantage.
Means and variances are accumulated in float64 and returned in the rewards' dtype.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from avatar_core.algos._checks import check_finite, check_shape, check_tensor


def _check_rewards(where: str, name: str, rewards: Tensor) -> None:
    check_tensor(where, name, rewards)
    if rewards.dim() != 1:
        raise ValueError(f"{where}: {name} must be 1-D [B], got shape {tuple(rewards.shape)}")
    if not rewards.is_floating_point():
        raise ValueError(f"{where}: {name} must be a floating-point tensor, got {rewards.dtype}")
    check_finite(where, name, rewards)


def _check_eps(where: str, eps: float) -> None:
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"{where}: eps must be a finite number > 0, got {eps!r}")


def group_advantages(
    rewards: Tensor, group_ids: Tensor, eps: float = 1e-4
) -> tuple[Tensor, dict[str, float]]:
    """GRPO advantages per group; rewards [B] float, group_ids [B] integer (any values, any order).

    Returns (advantages [B] in the rewards' dtype, stats) with stats
    `zero_adv_group_frac` (share of groups whose rewards have zero variance, single-member groups
    included, since they get A = 0 too) and `n_groups`.
    """
    where = "group_advantages"
    _check_rewards(where, "rewards", rewards)
    check_shape(where, "group_ids", group_ids, tuple(rewards.shape), "one group id per reward")
    if group_ids.is_floating_point() or group_ids.dtype == torch.bool:
        raise ValueError(f"{where}: group_ids must be an integer tensor, got {group_ids.dtype}")
    _check_eps(where, eps)
    if rewards.numel() == 0:
        return rewards.clone(), {"zero_adv_group_frac": 0.0, "n_groups": 0.0}

    r = rewards.to(torch.float64)  # [B]
    _, group = torch.unique(group_ids, return_inverse=True)  # group: [B] in 0 .. n_groups - 1
    n_groups = int(group.max()) + 1
    count = torch.zeros(n_groups, dtype=torch.float64, device=r.device).index_add_(
        0, group, torch.ones_like(r)
    )  # [G]
    total = torch.zeros_like(count).index_add_(0, group, r)  # [G]
    mean = total / count  # [G]
    centred = r - mean[group]  # [B]
    sq = torch.zeros_like(count).index_add_(0, group, centred.square())  # [G]
    std = (sq / (count - 1).clamp(min=1)).sqrt()  # [G] unbiased, like torch.std
    r_max = torch.full_like(count, -math.inf).scatter_reduce_(0, group, r, "amax")  # [G]
    r_min = torch.full_like(count, math.inf).scatter_reduce_(0, group, r, "amin")  # [G]
    collapsed = (r_max == r_min) | (count < 2)  # [G] zero variance or a single member -> A = 0
    adv = torch.where(collapsed[group], torch.zeros_like(r), centred / (std[group] + eps))  # [B]
    stats = {"zero_adv_group_frac": collapsed.double().mean().item(), "n_groups": float(n_groups)}
    return adv.to(rewards.dtype), stats


def baseline_advantages(rewards: Tensor, rbar: Tensor, std: Tensor | float, eps: float = 1e-4) -> Tensor:
    """Replayed trajectories without a fresh group: A = (r - Rbar(q)) / (std + eps).

    rewards [R], rbar [R] (Rbar of each row's prompt), std a float or a tensor [R] or [] (e.g. the
    std of the prompt's recent rewards, or of the replayed batch); returns A [R].
    """
    where = "baseline_advantages"
    _check_rewards(where, "rewards", rewards)
    check_shape(where, "rbar", rbar, tuple(rewards.shape), "one Rbar per reward")
    check_finite(where, "rbar", rbar)
    _check_eps(where, eps)
    std_t = torch.as_tensor(std, dtype=torch.float64, device=rewards.device)  # [] or [R]
    if std_t.dim() != 0:
        check_shape(where, "std", std_t, tuple(rewards.shape), "a scalar or one std per reward")
    check_finite(where, "std", std_t)
    if bool((std_t < 0).any()):
        raise ValueError(f"{where}: std must be >= 0, got min {std_t.min().item()}")
    adv = (rewards.to(torch.float64) - rbar.to(torch.float64)) / (std_t + eps)  # [R]
    return adv.to(rewards.dtype)


def replay_std(rewards: Tensor, floor: float = 1e-6) -> float:
    """Std for `baseline_advantages` over a replayed batch's rewards [R]: unbiased std, or 1.0 when
    R = 1 or the std is below `floor` (see the module docstring)."""
    where = "replay_std"
    _check_rewards(where, "rewards", rewards)
    if rewards.numel() == 0:
        raise ValueError(f"{where}: rewards is empty; a replayed batch has at least one row")
    if rewards.numel() == 1:
        return 1.0
    std = float(rewards.to(torch.float64).std())  # unbiased, like torch.std
    return std if std >= floor else 1.0


def augmented_group_advantages(
    fresh_rewards: Tensor, replay_rewards: Tensor, eps: float = 1e-4
) -> tuple[Tensor, Tensor]:
    """GRPO advantages over the union of a fresh group [G] and same-prompt replayed rewards [R].

    Returns (fresh_adv [G], replay_adv [R]); with no replayed rewards this is plain GRPO on the
    fresh group, and a union that is still constant gives zeros.
    """
    where = "augmented_group_advantages"
    _check_rewards(where, "fresh_rewards", fresh_rewards)
    _check_rewards(where, "replay_rewards", replay_rewards)
    if fresh_rewards.numel() == 0:
        raise ValueError(f"{where}: fresh_rewards is empty; an augmented group needs its fresh completions")
    union = torch.cat([fresh_rewards.to(torch.float64), replay_rewards.to(torch.float64)])  # [G + R]
    ids = torch.zeros(union.shape[0], dtype=torch.long, device=union.device)  # [G + R] one group
    adv, _ = group_advantages(union, ids, eps)  # [G + R]
    n_fresh = fresh_rewards.shape[0]
    return adv[:n_fresh].to(fresh_rewards.dtype), adv[n_fresh:].to(replay_rewards.dtype)
