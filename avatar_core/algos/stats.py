"""Stats of one objective evaluation, as plain floats for the metrics log.

Token fractions and means are over real (masked-in) tokens, like TRL's `masked_batch_mean`;
clip fractions use TRL's definitions (low: rho < 1 - eps_low and A < 0; high: rho > 1 + eps_high
and A > 0), on the ratio actually used (after truncation for replayed rows). A mean over nothing
is NaN rather than a made-up 0: `kl_mean` without a reference, `zero_adv_group_frac` without
group ids, and the replay stats of a batch without replayed tokens. All values are gathered
into one tensor and read back with a single device sync.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from avatar_core.algos.aggregation import part_coefficients
from avatar_core.algos.params import ObjectiveParams


def _masked_mean(values: Tensor, mask: Tensor) -> Tensor:
    """Mean of values [B, L] over mask [B, L]; NaN when the mask is empty."""
    # An empty mask gives 0 / 0 = NaN, without reading the count back to the host.
    return (values.to(mask.dtype) * mask).sum() / mask.sum()  # []


def zero_advantage_group_fraction(advantages: Tensor, group_ids: Tensor) -> Tensor:
    """Share of groups whose advantages are all exactly 0; advantages [B], group_ids [B] -> []."""
    _, group = torch.unique(group_ids, return_inverse=True)  # [B]
    n_groups = int(group.max()) + 1 if group.numel() else 0
    if n_groups == 0:
        return torch.tensor(math.nan, dtype=torch.float64)
    nonzero = torch.zeros(n_groups, dtype=torch.float64, device=advantages.device)  # [G]
    nonzero.index_add_(0, group, (advantages != 0).to(torch.float64))  # [G] non-zero count per group
    return (nonzero == 0).to(torch.float64).mean()  # []


def objective_stats(
    intermediates: dict[str, Tensor], mask: Tensor, advantages: Tensor, group_ids: Tensor | None
) -> dict[str, Tensor]:
    """Stats common to every objective, as 0-d tensors (see `to_floats`)."""
    nan = mask.new_tensor(math.nan)  # []
    zero_adv = nan if group_ids is None else zero_advantage_group_fraction(advantages, group_ids)  # []
    return {
        "tokens": mask.sum(),
        "ratio_mean": _masked_mean(intermediates["ratio"], mask),
        "clip_low_frac": _masked_mean(intermediates["is_low_clipped"], mask),
        "clip_high_frac": _masked_mean(intermediates["is_high_clipped"], mask),
        "kl_mean": _masked_mean(intermediates["kl"], mask) if "kl" in intermediates else nan,
        "tas_weight_mean": _masked_mean(intermediates["tas_w"], mask),
        "zero_adv_group_frac": zero_adv,
    }


def replay_stats(
    per_token: Tensor,
    intermediates: dict[str, Tensor],
    mask: Tensor,
    is_replay: Tensor | None,
    params: ObjectiveParams,
) -> dict[str, Tensor]:
    """avatar only: replay_ratio_mean (raw rho), replay_truncated_frac, replay_tokens, and the two
    terms J_on and J_off as losses (loss_on, loss_off; loss = loss_on + alpha * loss_off)."""
    if is_replay is None:
        is_replay = torch.zeros(mask.shape[0], dtype=torch.bool, device=mask.device)  # [B]
    replay_mask = mask * is_replay.to(mask.dtype).unsqueeze(1)  # [B, L]
    detached = per_token.detach().to(mask.dtype)  # [B, L]
    return {
        "replay_tokens": replay_mask.sum(),
        "replay_ratio_mean": _masked_mean(intermediates["ratio"], replay_mask),
        "replay_truncated_frac": _masked_mean(intermediates["is_truncated"], replay_mask),
        "loss_on": (detached * part_coefficients(mask, ~is_replay, params)).sum(),
        "loss_off": (detached * part_coefficients(mask, is_replay, params)).sum(),
    }


def to_floats(stats: dict[str, Tensor]) -> dict[str, float]:
    """0-d tensors -> floats with one device sync."""
    names = list(stats)
    values = torch.stack([stats[k].detach().to(torch.float64).cpu() for k in names]).tolist()
    return dict(zip(names, values, strict=True))
