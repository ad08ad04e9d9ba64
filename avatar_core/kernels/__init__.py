"""Fused chunked log-prob + policy-objective kernel and its full-logits reference.

`fused_objective` computes the GRPO/AVATAR loss, its stats and the per-token log-probs without
materialising the [tokens, vocab] logits; `reference_objective` is the plain path it is tested
and benchmarked against.
"""

from avatar_core.kernels.fused_loss import BACKENDS, fused_objective, select_backend
from avatar_core.kernels.reference import full_logits_logp, reference_objective

__all__ = ["BACKENDS", "fused_objective", "full_logits_logp", "reference_objective", "select_backend"]
