"""Hierarchical replay buffer, per-prompt difficulty tracker and hint trigger (DESIGN.md section 1)."""

from avatar_core.replay.allocation import TIERS
from avatar_core.replay.buffer import HierarchicalReplayBuffer
from avatar_core.replay.difficulty import DifficultyTracker, assign_tier, tier_thresholds
from avatar_core.replay.hints import HINT_REASONS, HintStats, HintTrigger
from avatar_core.replay.trajectory import Trajectory, TrajectoryError

__all__ = [
    "HINT_REASONS",
    "TIERS",
    "DifficultyTracker",
    "HierarchicalReplayBuffer",
    "HintStats",
    "HintTrigger",
    "Trajectory",
    "TrajectoryError",
    "assign_tier",
    "tier_thresholds",
]
