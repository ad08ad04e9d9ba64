"""Pure tensor algorithms of AVATAR: advantages, TAS weights, k3 KL and the policy objectives.

Tensors and floats in, tensors and a stats dict out; no I/O, no config objects, no distributed
calls. `docs/method.md` maps each formula of the paper to the function here that implements it.
"""

from avatar_core.algos.advantages import augmented_group_advantages, baseline_advantages, group_advantages
from avatar_core.algos.kl import k3_kl
from avatar_core.algos.objectives import (
    OBJECTIVES,
    compute_objective,
    grpo_per_token_loss,
    per_token_loss,
    token_coefficients,
)
from avatar_core.algos.params import LOSS_TYPES, ObjectiveParams
from avatar_core.algos.tas import tas_weights

__all__ = [
    "LOSS_TYPES",
    "OBJECTIVES",
    "ObjectiveParams",
    "augmented_group_advantages",
    "baseline_advantages",
    "compute_objective",
    "grpo_per_token_loss",
    "group_advantages",
    "k3_kl",
    "per_token_loss",
    "tas_weights",
    "token_coefficients",
]
