"""One stored completion: the unit the hierarchical replay buffer keeps and replays.

A `Trajectory` holds what the off-policy objective needs to re-score a completion under the
current policy (its token ids and the behaviour policy's per-token log-probs) plus the scalars the
buffer sorts and prioritises by (reward, advantage, KL, Rbar at insertion, policy version).

It deliberately stores no decoded media and no prompt text: the stable prompt id is the reference
the recipe re-encodes the prompt from. This departs from the authors' released code, which keys
replayed samples by the rendered prompt text; a hint changes the text but must not change the key.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch


class TrajectoryError(ValueError):
    """A trajectory that cannot be stored; the message names the prompt id and the field."""


@dataclass
class Trajectory:
    prompt_id: str
    completion_ids: torch.Tensor  # [L] long, no padding
    behaviour_logp: torch.Tensor  # [L] float32, per-token log-probs under the behaviour policy
    reward: float
    advantage: float = 0.0  # advantage at insertion (used by the priority score)
    kl: float = 0.0  # mean per-token KL to the reference at insertion
    rbar: float = 0.0  # Rbar(q) at insertion
    policy_version: int = 0  # optimiser step of the policy that generated it
    hinted: bool = False
    insert_index: int = -1  # set by the buffer: global insertion counter (FIFO order)

    def __post_init__(self) -> None:
        self.validate()

    def __len__(self) -> int:
        return int(self.completion_ids.shape[0])

    def validate(self) -> None:
        """Raise TrajectoryError naming the prompt id and the field of the first problem."""
        where = f"trajectory of prompt {self.prompt_id!r}"
        if not isinstance(self.prompt_id, str) or not self.prompt_id:
            raise TrajectoryError(
                f"trajectory: field prompt_id must be a non-empty string, got {self.prompt_id!r}"
            )
        for name in ("reward", "advantage", "kl", "rbar"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TrajectoryError(
                    f"{where}: field {name} must be a real number, got {type(value).__name__}"
                )
            if not math.isfinite(value):
                raise TrajectoryError(f"{where}: field {name} must be finite, got {value}")
        if isinstance(self.policy_version, bool) or not isinstance(self.policy_version, numbers.Integral):
            raise TrajectoryError(
                f"{where}: field policy_version must be an int, got {self.policy_version!r}"
            )
        ids, logp = self.completion_ids, self.behaviour_logp
        if not isinstance(ids, torch.Tensor) or not isinstance(logp, torch.Tensor):
            raise TrajectoryError(f"{where}: completion_ids and behaviour_logp must be torch tensors")
        if ids.dim() != 1 or logp.dim() != 1:
            raise TrajectoryError(
                f"{where}: completion_ids and behaviour_logp must be 1-D (one unpadded completion), "
                f"got shapes {tuple(ids.shape)} and {tuple(logp.shape)}"
            )
        if ids.shape[0] != logp.shape[0]:
            raise TrajectoryError(
                f"{where}: behaviour_logp has {logp.shape[0]} entries but completion_ids has "
                f"{ids.shape[0]} tokens; they must match one log-prob per token"
            )
        if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
            raise TrajectoryError(f"{where}: completion_ids must be an integer tensor, got {ids.dtype}")
        if not logp.dtype.is_floating_point:
            raise TrajectoryError(f"{where}: behaviour_logp must be a float tensor, got {logp.dtype}")
        if logp.numel() and not bool(torch.isfinite(logp).all()):
            raise TrajectoryError(f"{where}: behaviour_logp contains NaN or inf")

    def stored_copy(self, insert_index: int) -> Trajectory:
        """A copy on CPU with long ids, float32 log-probs and its own storage (a row sliced from a
        padded batch would otherwise keep the whole batch alive), carrying the insertion counter."""
        return Trajectory(
            prompt_id=self.prompt_id,
            completion_ids=self.completion_ids.detach().to(device="cpu", dtype=torch.long).clone(),  # [L]
            behaviour_logp=self.behaviour_logp.detach().to(device="cpu", dtype=torch.float32).clone(),  # [L]
            reward=float(self.reward),
            advantage=float(self.advantage),
            kl=float(self.kl),
            rbar=float(self.rbar),
            policy_version=int(self.policy_version),
            hinted=bool(self.hinted),
            insert_index=insert_index,
        )
