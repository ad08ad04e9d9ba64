"""Loss aggregation over tokens, written as per-token coefficients c with loss = (l * c).sum().

TRL's loss types, for a part of the batch (a set of rows) with 0/1 token mask m:
- grpo: mean over each sequence's tokens, then mean over the part's sequences:
  c = m / (|o_i| * n_rows), |o_i| clamped at 1 (an empty row contributes 0 but still counts as a
  sequence, like TRL's `.mean()` over rows).
- bnpo: token mean over the part: c = m / max(sum m, 1).
- dapo: sum over the part divided by a constant normaliser N shared by all parts: `num_items`
  (the step's global token count) when given, else the micro-batch's token count (all rows).
  Sharing N keeps dapo what it is for: a normaliser that does not depend on how tokens are split.
- dr_grpo: c = m / (n_rows * max_len), with max_len the completion length limit.

Writing the aggregation as coefficients lets the fused chunked kernel compute d loss / d l_t = c_t
once, before it walks over token chunks. Coefficients carry no gradient (they depend on the mask
only) and are returned in float32 (float64 if the mask is float64).
"""

from __future__ import annotations

import torch
from torch import Tensor

from avatar_core.algos.params import ObjectiveParams


def part_coefficients(mask: Tensor, rows: Tensor | None, params: ObjectiveParams) -> Tensor:
    """Coefficients [B, L] of the part of the batch selected by `rows` ([B] bool; None: all rows).

    `mask` is a validated float 0/1 mask [B, L]; rows outside the part get 0. An empty part gives
    all zeros.
    """
    if rows is None:
        part_mask = mask  # [B, L]
        n_rows = torch.tensor(float(mask.shape[0]), dtype=mask.dtype, device=mask.device)  # []
    else:
        part_mask = mask * rows.to(mask.dtype).unsqueeze(1)  # [B, L]
        n_rows = rows.to(mask.dtype).sum()  # []
    n_rows = n_rows.clamp(min=1)  # [] an empty part has part_mask = 0, so any divisor gives 0
    loss_type = params.loss_type
    if loss_type == "grpo":
        lengths = part_mask.sum(dim=1, keepdim=True).clamp(min=1)  # [B, 1]
        return part_mask / (lengths * n_rows)  # [B, L]
    if loss_type == "bnpo":
        return part_mask / part_mask.sum().clamp(min=1)  # [B, L]
    if loss_type == "dapo":
        if params.num_items is not None:
            return part_mask / params.num_items  # [B, L]
        return part_mask / mask.sum().clamp(min=1)  # [B, L]
    if loss_type == "dr_grpo":
        max_len = params.max_len if params.max_len is not None else mask.shape[1]
        return part_mask / (n_rows * max_len)  # [B, L]
    raise AssertionError(f"loss type {loss_type!r} passed ObjectiveParams validation")  # pragma: no cover
