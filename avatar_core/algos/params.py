"""Plain hyper-parameters of the policy objectives, frozen so that pure functions can take them.

The recipe builds one `ObjectiveParams` from the typed config (the `objective` and `tas` sections
of an RL stage); nothing in `avatar_core.algos` sees a config object. Every value is checked
here, once, so the tensor functions can trust it: an unknown loss type is rejected with the list
of valid names, and each bad number is reported with its field name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")


@dataclass(frozen=True)
class ObjectiveParams:
    """Hyper-parameters shared by the `grpo` and `avatar` objectives.

    loss_type: aggregation over tokens like TRL: grpo | bnpo | dapo | dr_grpo.
    eps_low / eps_high: the ratio is clipped to [1 - eps_low, 1 + eps_high].
    beta: k3 KL coefficient to the frozen reference; 0 lets `ref_logp` be None.
    alpha: weight of J_off, the term of replayed rows (avatar only).
    rho_max: the ratio of replayed rows is truncated at rho_max before clipping (avatar only);
        `math.inf` disables the truncation.
    tas_lambda: Temporal Advantage Shaping strength; 0 gives every token weight 1.
    max_len: dr_grpo's constant normaliser (the completion length limit); None: mask.shape[1].
    num_items: dapo's normaliser, the token count of the whole optimiser step (across
        gradient-accumulation micro-batches and processes, divided by the process count when
        DDP averages gradients, as TRL does); None: the micro-batch's own token count.
    """

    loss_type: str = "grpo"
    eps_low: float = 0.2
    eps_high: float = 0.2
    beta: float = 0.0
    alpha: float = 1.0
    rho_max: float = 2.0
    tas_lambda: float = 0.0
    max_len: int | None = None
    num_items: float | None = None

    def __post_init__(self) -> None:
        if self.loss_type not in LOSS_TYPES:
            raise ValueError(
                f"ObjectiveParams.loss_type: unknown loss type {self.loss_type!r}; "
                f"valid names: {', '.join(LOSS_TYPES)}"
            )
        _check_number("eps_low", self.eps_low, low=0.0, high=1.0, high_open=True)
        _check_number("eps_high", self.eps_high, low=0.0)
        _check_number("beta", self.beta, low=0.0)
        _check_number("alpha", self.alpha, low=0.0)
        _check_number("tas_lambda", self.tas_lambda, low=0.0)
        if math.isnan(self.rho_max) or self.rho_max <= 0:
            raise ValueError(f"ObjectiveParams.rho_max must be > 0 (inf: no truncation), got {self.rho_max}")
        if self.max_len is not None and (
            isinstance(self.max_len, bool) or int(self.max_len) != self.max_len or self.max_len <= 0
        ):
            raise ValueError(
                f"ObjectiveParams.max_len must be a positive integer or None, got {self.max_len!r}"
            )
        if self.num_items is not None and not (math.isfinite(self.num_items) and self.num_items > 0):
            raise ValueError(
                f"ObjectiveParams.num_items must be a finite number > 0 or None, got {self.num_items!r}"
            )


def _check_number(
    field: str, value: float, low: float, high: float = math.inf, high_open: bool = False
) -> None:
    ok = math.isfinite(value) and value >= low and (value < high if high_open else value <= high)
    if not ok:
        bound = f"in [{low}, {high})" if high_open else f">= {low}"
        raise ValueError(f"ObjectiveParams.{field} must be a finite number {bound}, got {value!r}")
