"""Temporal Advantage Shaping (TAS): a U-shaped per-token weight over each completion.

w_t = 1 + lambda * (2 t / (L_i - 1) - 1)^2 for token t = 0 .. L_i - 1 of a completion of length
L_i (paper, Sec. 3.3): the first and last tokens (the plan and the answer) weigh 1 + lambda, the
centre weighs 1. A one-token completion gets 1 + lambda (its only token is both endpoints);
padded positions get 0. The weight multiplies the per-token surrogate (equivalently A_t = w_t A
since w_t > 0), before the KL term is added; see `objectives.per_token_loss`.

Positions are counted among the real tokens (cumulative sum of the mask), which equals the column
index for the right-padded batches we use and stays correct for left padding. The weights are
computed in float32 (float64 for a float64 mask), so positions stay exact integers up to 2^24.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from avatar_core.algos._checks import check_mask


def tas_weights(mask: Tensor, lam: float) -> Tensor:
    """mask [B, L] (1 for real completion tokens) -> TAS weights w [B, L], 0 on padding."""
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"tas_weights: lam must be a finite number >= 0, got {lam!r}")
    m = check_mask("tas_weights", mask)  # [B, L]
    position = torch.cumsum(m, dim=1) - 1  # [B, L] index t among the row's real tokens
    length = m.sum(dim=1, keepdim=True)  # [B, 1] L_i
    # L_i = 1 gives position 0 over a clamped span of 1, i.e. u = -1 and w = 1 + lam, as specified.
    span = (length - 1).clamp(min=1)  # [B, 1]
    u = 2 * position / span - 1  # [B, L] in [-1, 1] on real tokens
    return (1 + lam * u.square()) * m  # [B, L]
