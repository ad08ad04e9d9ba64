"""The k3 estimator of KL(pi_theta || pi_ref) per token, as in the paper, GRPO and TRL.

k3 = exp(ref - logp) - (ref - logp) - 1 with logp the policy's and ref the frozen reference's
log-probability of the sampled token. It is non-negative, unbiased for the KL in expectation over
tokens sampled from pi_theta, and 0 where the two agree. Pure elementwise math, so the chunked
fused kernel can call it on any slice of tokens.
"""

from __future__ import annotations

import torch
from torch import Tensor

from avatar_core.algos._checks import check_shape, check_tensor


def k3_kl(logp: Tensor, ref_logp: Tensor) -> Tensor:
    """Per-token k3 KL, same shape as logp ([B, L]); differentiable w.r.t. logp."""
    check_tensor("k3_kl", "logp", logp)
    check_shape("k3_kl", "ref_logp", ref_logp, tuple(logp.shape), "the shape of logp")
    delta = ref_logp - logp  # [B, L]
    return torch.exp(delta) - delta - 1  # [B, L]
