"""The full-logits path: logits [B, L, V] -> log_softmax -> gather -> `compute_objective`.

This is what TRL (`selective_log_softmax` after `logits / temperature`) and ms-swift do, and the
reference the fused kernel is tested and benchmarked against. It materialises the logits, their
fp32 log_softmax and, in backward, a gradient of the same size: O(B x L x V) memory. The logits are
upcast to fp32 before the temperature division (fp64 inputs stay fp64), as the fused kernel does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from avatar_core.algos.objectives import compute_objective
from avatar_core.algos.params import ObjectiveParams
from avatar_core.kernels.checks import check_loss_inputs

__all__ = ["full_logits_logp", "reference_objective"]


def full_logits_logp(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    completion_ids: torch.Tensor,
    *,
    temperature: float = 1.0,
    lm_head_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Per-token log-probs [B, L] of completion_ids under the LM head, through the full logits."""
    logits = F.linear(hidden, lm_head_weight, lm_head_bias)  # [B, L, V]
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()  # [B, L, V]
    logits = logits / temperature  # [B, L, V]
    logp_all = torch.log_softmax(logits, dim=-1)  # [B, L, V]
    return logp_all.gather(-1, completion_ids.long().unsqueeze(-1)).squeeze(-1)  # [B, L]


def reference_objective(
    hidden: torch.Tensor,
    lm_head_weight: torch.Tensor,
    completion_ids: torch.Tensor,
    mask: torch.Tensor,
    behaviour_logp: torch.Tensor,
    advantages: torch.Tensor,
    params: ObjectiveParams,
    *,
    objective: str = "avatar",
    ref_logp: torch.Tensor | None = None,
    is_replay: torch.Tensor | None = None,
    group_ids: torch.Tensor | None = None,
    temperature: float = 1.0,
    lm_head_bias: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict, torch.Tensor]:
    """Same arguments and returns as `fused_objective` (without the chunking knobs)."""
    check_loss_inputs(
        "reference_objective",
        hidden,
        lm_head_weight,
        completion_ids,
        mask,
        behaviour_logp,
        advantages,
        ref_logp=ref_logp,
        is_replay=is_replay,
        group_ids=group_ids,
        lm_head_bias=lm_head_bias,
        temperature=temperature,
    )
    logp = full_logits_logp(
        hidden, lm_head_weight, completion_ids, temperature=temperature, lm_head_bias=lm_head_bias
    )  # [B, L]
    loss, stats = compute_objective(
        objective,
        logp,
        behaviour_logp,
        advantages,
        mask,
        params,
        ref_logp=ref_logp,
        is_replay=is_replay,
        group_ids=group_ids,
    )
    return loss, stats, logp.detach()
