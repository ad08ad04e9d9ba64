"""Shared builders for the replay tests (a uniquely named module: tests have no packages)."""

from __future__ import annotations

import torch

from avatar_core.replay import Trajectory

# thresholds under which rbar 0.0 -> hard, 0.5 -> medium, 1.0 -> easy
THRESHOLDS = (0.25, 0.75)
RBAR_OF_TIER = {"hard": 0.0, "medium": 0.5, "easy": 1.0}


def build_traj(
    prompt_id: str = "q0",
    length: int = 3,
    reward: float = 1.0,
    seed: int = 0,
    **fields: object,
) -> Trajectory:
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 1000, (length,), generator=gen)  # [L]
    logp = -torch.rand(length, generator=gen)  # [L]
    return Trajectory(prompt_id=prompt_id, completion_ids=ids, behaviour_logp=logp, reward=reward, **fields)
